"""Evaluating a parsed expression exactly as feelin 6.1.1 (form-js' FEEL engine) does.

Where feelin departs from the DMN specification the evaluator follows feelin, because the
browser is where a form is shown and the server must agree with it. The departures that
matter in practice:

* numbers are IEEE doubles, as in JavaScript: ``0.1 + 0.2 = 0.3`` is false;
* ``<``, ``<=``, ``>``, ``>=`` compare with JavaScript's operators, so mismatched types
  are converted rather than giving null (``"3" < 5`` is true, ``5 < "a"`` false), and a
  boolean, list or context on the right makes feelin throw;
* ``!=`` is ``not(=)``, so ``1 != "a"`` is true where ``=`` gives null;
* ``=`` treats a one-item list as its item (``[1] = 1`` is true);
* ``if`` takes any value but false and null as true;
* ``list contains`` compares lists and contexts by identity, as JavaScript's ``===``.

Where feelin throws, :func:`evaluate` raises :class:`FeelError`; form-js catches the
exception and uses null instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeAlias

from panel_core.feel import _js
from panel_core.feel import nodes as n
from panel_core.feel._fdlibm import js_pow
from panel_core.feel._js import Value
from panel_core.feel.builtins import SUPPORTED_FUNCTIONS
from panel_core.feel.errors import FeelError
from panel_core.feel.parser import Expression, key_conflict, parse
from panel_core.feel.values import Missing, equals, lookup_entry, value_of

_MAX_SAFE_INTEGER: Final = 2**53
_SINGLE_LETTERS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

Includes: TypeAlias = "Callable[[Value], bool | None]"


def evaluate(expression: str | Expression, context: Mapping[str, Any]) -> Any:
    """Evaluate ``expression`` over the variables in ``context``.

    The context holds JSON-like data: None, bool, int, float, Decimal, str, lists (or
    tuples) and mappings with string keys; numbers become doubles on the way in, as they
    do when form data reaches the browser. The result is None, bool, str, list, dict or a
    number: an ``int`` when the double is a whole number of magnitude up to 2**53, a
    ``float`` otherwise (including nan and ±inf, which feelin can produce).

    Raises :class:`FeelError` when the expression is outside the supported subset, when the
    context cannot be represented or would make feelin read the expression differently
    (a key such as ``"a-b"`` joins the words ``a - b`` into one name), and where feelin
    throws during evaluation.
    """
    parsed = expression if isinstance(expression, Expression) else parse(expression)
    scope = _import_mapping(context)
    _check_keys(parsed, scope)
    return _export(_Evaluator(parsed.source).evaluate(parsed.root, scope))


def _import(value: Any) -> Value:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if any(0xD800 <= ord(char) <= 0xDFFF for char in value):
            raise FeelError(f"the string {value!r} in the context is not valid Unicode text")
        return value
    if isinstance(value, int | float | Decimal):
        try:
            return float(value)
        except OverflowError:
            raise FeelError(f"the number {value} in the context is too large") from None
    if isinstance(value, Mapping):
        return _import_mapping(value)
    if isinstance(value, list | tuple):
        return [_import(item) for item in value]
    raise FeelError(f"values of type {type(value).__name__} are not supported in the context")


def _import_mapping(mapping: Mapping[Any, Any]) -> dict[str, Value]:
    imported: dict[str, Value] = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise FeelError(f"context keys must be strings, not {type(key).__name__}")
        imported[key] = _import(item)
    return imported


def _export(value: Value) -> Any:
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, list):
        return [_export(item) for item in value]
    if isinstance(value, dict):
        return {key: _export(item) for key, item in value.items()}
    return value


def _check_keys(expression: Expression, scope: dict[str, Value]) -> None:
    stack: list[Value] = [scope]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key == "?" and expression.uses_in:
                    # feelin compares a boolean 'in' list with the value of a "?" key.
                    raise FeelError("the context key '?' is not supported with 'in'")
                problem = key_conflict(key, expression.words)
                if problem:
                    raise FeelError(problem + "; rename the key")
                stack.append(item)


def _truthy(value: Value) -> bool:
    """feelin's ``isTruthy``: everything except false and null."""
    return value is not False and value is not None


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, reason: str, node: n.Node | n.Interval) -> FeelError:
        return FeelError(reason, position=node.pos, expression=self.source)

    def evaluate(self, node: n.Node, scope: dict[str, Value]) -> Value:
        if isinstance(node, n.Constant):
            return node.value
        if isinstance(node, n.Name):
            return value_of(node.name, scope)
        if isinstance(node, n.Path):
            target = self.evaluate(node.target, scope)
            if isinstance(target, list):
                return [value_of(node.name, item) for item in target]
            return value_of(node.name, target)
        if isinstance(node, n.Filter):
            return self.filter(node, scope)
        if isinstance(node, n.Call):
            if not isinstance(lookup_entry(node.function, scope), Missing):
                # A variable of that name shadows the function; feelin cannot call data.
                return None
            args = [self.evaluate(arg, scope) for arg in node.args]
            return SUPPORTED_FUNCTIONS[node.function].invoke(args)
        if isinstance(node, n.Unary):
            return _arithmetic(node.operator, 0.0, self.evaluate(node.operand, scope))
        if isinstance(node, n.Arithmetic):
            left = self.evaluate(node.left, scope)
            return _arithmetic(node.operator, left, self.evaluate(node.right, scope))
        if isinstance(node, n.Comparison):
            return self.comparison(node, scope)
        if isinstance(node, n.Between):
            low = self.evaluate(node.low, scope)
            high = self.evaluate(node.high, scope)
            if low is None or high is None:
                return None
            includes = self.range(low, high, True, True, node)
            return includes(self.evaluate(node.value, scope))
        if isinstance(node, n.In):
            return self.membership(node, scope)
        if isinstance(node, n.Logical):
            return _logical(
                node.operator, self.evaluate(node.left, scope), self.evaluate(node.right, scope)
            )
        if isinstance(node, n.If):
            if _truthy(self.evaluate(node.condition, scope)):
                return self.evaluate(node.then, scope)
            return self.evaluate(node.otherwise, scope)
        if isinstance(node, n.ListLiteral):
            return [self.evaluate(item, scope) for item in node.items]
        if isinstance(node, n.ContextLiteral):
            built: dict[str, Value] = {}
            for key, value in node.entries:
                built[key] = self.evaluate(value, {**scope, **built})
            return built
        if isinstance(node, n.For):
            source = self.evaluate(node.source, scope)
            if not isinstance(source, list):
                return None
            return [self.evaluate(node.body, {**scope, node.variable: item}) for item in source]
        source = self.evaluate(node.source, scope)
        if not isinstance(source, list):
            return None
        outcomes = (
            _truthy(self.evaluate(node.condition, {**scope, node.variable: item}))
            for item in source
        )
        return any(outcomes) if node.quantifier == "some" else all(outcomes)

    def filter(self, node: n.Filter, scope: dict[str, Value]) -> Value:
        target = self.evaluate(node.target, scope)
        if target is None:
            return None
        items = target if isinstance(target, list) else [target]
        kind = n.static_type(node.predicate)
        if kind in {"number", "boolean", "any"}:
            index = self.evaluate(node.predicate, scope)
            if isinstance(index, bool):
                return target if index else []
            if not isinstance(index, float):
                return []
            position = len(items) + index if index < 0 else index - 1
            if position.is_integer() and 0 <= position < len(items):
                return items[int(position)]
            return None
        if kind == "string":
            wanted = self.evaluate(node.predicate, scope)
            return [item for item in items if _js.strict_equals(item, wanted)]
        if kind == "test":
            kept: list[Value] = []
            for item in items:
                inner = {**scope, "item": item}
                if isinstance(item, dict):
                    inner.update(item)
                # feelin drops matching items that are themselves false or null.
                if self.evaluate(node.predicate, inner) is True and _truthy(item):
                    kept.append(item)
            return kept
        return None

    def comparison(self, node: n.Comparison, scope: dict[str, Value]) -> Value:
        left = self.evaluate(node.left, scope)
        right = self.evaluate(node.right, scope)
        if node.operator == "=":
            return equals(left, right)
        if node.operator == "!=":
            return equals(left, right) is not True
        # feelin turns "a < b" into the test "a in the range (null..b)".
        if node.operator == ">":
            includes = self.range(right, None, False, False, node)
        elif node.operator == ">=":
            includes = self.range(right, None, True, False, node)
        elif node.operator == "<":
            includes = self.range(None, right, False, False, node)
        else:
            includes = self.range(None, right, False, True, node)
        return includes(left)

    def membership(self, node: n.In, scope: dict[str, Value]) -> Value:
        value = self.evaluate(node.value, scope)
        target = node.target
        if isinstance(target, n.Interval):
            low = self.evaluate(target.low, scope)
            high = self.evaluate(target.high, scope)
            includes = self.range(
                low,
                high,
                low is not None and target.low_closed,
                high is not None and target.high_closed,
                target,
            )
            return includes(value) is True
        candidates = self.evaluate(target, scope)
        if candidates is None:
            return None
        if not isinstance(candidates, list):
            candidates = [candidates]
        return any(equals(candidate, value) is True for candidate in candidates)

    def range(
        self,
        start: Value,
        end: Value,
        start_included: bool,
        end_included: bool,
        node: n.Node | n.Interval,
    ) -> Includes:
        """feelin's ``createRange(...).includes``."""
        if _typed(str, start, end):
            if (
                isinstance(start, str)
                and isinstance(end, str)
                and len(start) == 1
                and len(end) == 1
                and start in _SINGLE_LETTERS
                and end in _SINGLE_LETTERS
            ):
                return _letter_range(start, end, start_included, end_included)
            return _ordered_range(start, end, start_included, end_included)
        if _typed(float, start, end):
            return _ordered_range(start, end, start_included, end_included)
        if start is None and end is None:
            return lambda value: None
        if isinstance(node, n.Comparison):
            culprit = end if start is None else start
            reason = f"feelin cannot use {node.operator!r} with {_describe(culprit)} on its right"
        else:
            reason = f"feelin cannot form a range from {_describe(start)} to {_describe(end)}"
        raise self.fail(
            reason + " and throws (form-js then uses null)",
            node,
        )


def _typed(kind: type, start: Value, end: Value) -> bool:
    """feelin's ``isTyped``: one bound of the type, the other of it too or null."""
    bounds = (start, end)
    return any(type(b) is kind for b in bounds) and all(
        b is None or type(b) is kind for b in bounds
    )


def _describe(value: Value) -> str:
    if value is None:
        return "null"
    return f"a {_js.type_of(value)}"


def _letter_range(start: str, end: str, start_included: bool, end_included: bool) -> Includes:
    """A range between two single letters is the list of letters between them."""
    first = _SINGLE_LETTERS.index(start)
    last = _SINGLE_LETTERS.index(end)
    direction = -1 if first > last else 1
    if not start_included:
        first += direction
    if not end_included:
        last -= direction
    low, high = _js.slice_bounds(len(_SINGLE_LETTERS), first, last + 1)
    letters = frozenset(_SINGLE_LETTERS[low:high])
    return lambda value: isinstance(value, str) and value in letters


def _ordered_range(start: Value, end: Value, start_included: bool, end_included: bool) -> Includes:
    """feelin's ``anyIncludes``, on JavaScript's relational operators."""
    tests: list[Callable[[Value], bool]] = []

    def above(bound: Value, included: bool) -> Callable[[Value], bool]:
        return lambda value: _js.compare("<=" if included else "<", bound, value)

    def below(bound: Value, included: bool) -> Callable[[Value], bool]:
        return lambda value: _js.compare(">=" if included else ">", bound, value)

    if start is not None and end is not None:
        if _js.compare(">", start, end):
            tests = [above(end, end_included), below(start, start_included)]
        else:
            tests = [above(start, start_included), below(end, end_included)]
    elif end is not None:
        tests = [below(end, end_included)]
    elif start is not None:
        tests = [above(start, start_included)]

    def includes(value: Value) -> bool | None:
        if value is None:
            return None
        return all(test(value) for test in tests)

    return includes


def _arithmetic(operator: str, left: Value, right: Value) -> Value:
    """feelin's arithmetic: both sides numbers (or, for +, both strings), else null."""
    if isinstance(left, float) and isinstance(right, float):
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if operator == "/":
            return None if right == 0 or math.isnan(right) else left / right
        return js_pow(left, right)
    if operator == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    return None


def _logical(operator: str, left: Value, right: Value) -> bool | None:
    """Three-valued ``and``/``or``; values other than booleans count as null."""
    a = left if isinstance(left, bool) else None
    b = right if isinstance(right, bool) else None
    if operator == "and":
        if a is False or b is False:
            return False
        return True if a is True and b is True else None
    if a is True or b is True:
        return True
    return False if a is False and b is False else None
