// The reference for panel_core.feel: evaluates FEEL expressions with feelin, the
// interpreter form-js uses, for the differential tests in test_feel.py.
//
// Reads JSON lines {"expression": "...", "context": {...}} on stdin and answers each with a
// JSON line {"result": ..., "error": null | "..."}. Results that JSON cannot carry are
// tagged so the Python side can compare strictly: contexts as {"$context": {...}} (so a
// context can never be mistaken for a tag), NaN and infinities as {"$number": "NaN"},
// and anything else (undefined, ranges, functions, dates) as {"$other": "<description>"}.
// In the input, {"$number": "..."} stands for a non-finite number too.

import { createInterface } from 'node:readline';
import { evaluate } from '@bpmn-io/feelin';

function decode(value) {
  if (Array.isArray(value)) {
    return value.map(decode);
  }
  if (value !== null && typeof value === 'object') {
    if (Object.keys(value).length === 1 && typeof value.$number === 'string') {
      return Number(value.$number);
    }
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decode(item)]));
  }
  return value;
}

function encode(value) {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : { $number: String(value) };
  }
  if (Array.isArray(value)) {
    return value.map(encode);
  }
  if (value !== undefined && Object.getPrototypeOf(value) === Object.prototype) {
    return {
      $context: Object.fromEntries(Object.entries(value).map(([key, item]) => [key, encode(item)])),
    };
  }
  const description = value === undefined ? 'undefined' : Object.prototype.toString.call(value);
  return { $other: description + (value && value.constructor ? ' ' + value.constructor.name : '') };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });

for await (const line of lines) {
  if (!line.trim()) {
    continue;
  }
  let answer;
  try {
    const { expression, context } = JSON.parse(line);
    const { value } = evaluate(expression, decode(context || {}));
    answer = { result: encode(value), error: null };
  } catch (error) {
    // feelin's own SyntaxError keeps the name "Error"; its class tells it apart.
    const kind = error && error.constructor ? error.constructor.name : 'Error';
    answer = { result: null, error: `${kind}: ${error.message}` };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
