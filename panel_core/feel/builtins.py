"""The built-in functions the evaluator supports, with feelin's argument conversions.

feelin checks each argument against a declared type before calling a function and answers
null when one does not fit; on the way it unwraps a one-item list given for a single value
(``upper case(["a"])`` is ``"A"``) and wraps a single value given for a list
(``count(5)`` is 1). The functions then run on JavaScript semantics, reproduced via
:mod:`panel_core.feel._js`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from panel_core.feel import _js, jsregex
from panel_core.feel._fdlibm import js_pow
from panel_core.feel._js import Value
from panel_core.feel.errors import FeelError
from panel_core.feel.values import equals, value_of

# Every built-in of feelin 6.1.1. A single-word one doubles as a variable name in feelin
# (an unknown variable with such a name is the function), so the parser refuses those names.
FEELIN_BUILTINS: Final = frozenset(
    {
        "number", "string", "date", "date and time", "time", "duration",
        "years and months duration", "@", "now", "today", "not", "substring",
        "string length", "upper case", "lower case", "substring before", "substring after",
        "replace", "contains", "matches", "starts with", "ends with", "split", "string join",
        "list contains", "list replace", "count", "min", "max", "sum", "mean", "all", "any",
        "sublist", "append", "concatenate", "insert before", "remove", "reverse", "index of",
        "union", "distinct values", "flatten", "product", "median", "stddev", "mode",
        "decimal", "floor", "ceiling", "abs", "round up", "round down", "round half up",
        "round half down", "modulo", "sqrt", "log", "exp", "odd", "even", "is", "before",
        "after", "meets", "met by", "overlaps", "overlaps before", "overlaps after",
        "finishes", "finished by", "includes", "during", "starts", "started by", "coincides",
        "day of year", "day of week", "month of year", "week of year", "sort", "get value",
        "get entries", "context", "context merge", "context put",
    }
)  # fmt: skip

TEMPORAL_FUNCTIONS: Final = frozenset(
    {
        "date", "date and time", "time", "duration", "years and months duration", "now",
        "today", "day of year", "day of week", "month of year", "week of year",
    }
)  # fmt: skip


class _Undefined:
    """JavaScript's ``undefined``: an optional argument that was not given."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = _Undefined()
Arg: TypeAlias = "Value | _Undefined"


class _Mismatch:
    pass


_MISMATCH: Final = _Mismatch()


@dataclass(frozen=True, slots=True)
class Function:
    min_args: int
    max_args: int
    invoke: Callable[[list[Value]], Value]
    note: str = ""


def _check(spec: str, value: Arg) -> Arg | _Mismatch:
    """feelin's ``createArgTester``: the argument as the function receives it, or a mismatch."""
    optional = spec.endswith("?")
    kind = spec.rstrip("?")
    if kind == "list":
        if isinstance(value, list) or (optional and value is UNDEFINED):
            return value
        if value is None or isinstance(value, _Undefined):
            return _MISMATCH
        return [value]
    if kind != "any" and isinstance(value, list) and len(value) == 1:
        value = value[0]
    actual = "nil" if isinstance(value, _Undefined) else _js.type_of(value)
    if kind in {"any", actual}:
        return value if optional or value is not UNDEFINED else _MISMATCH
    if actual == "nil":
        return value if optional else _MISMATCH
    return _MISMATCH


def _typed(*specs: str) -> Callable[[Callable[..., Value]], Callable[[list[Value]], Value]]:
    """feelin's ``fn``: check and convert each argument, or answer null."""

    def decorate(implementation: Callable[..., Value]) -> Callable[[list[Value]], Value]:
        def invoke(args: list[Value]) -> Value:
            padded: list[Arg] = [*args, *([UNDEFINED] * (len(specs) - len(args)))]
            converted: list[Arg] = []
            for spec, arg in zip(specs, padded, strict=True):
                checked = _check(spec, arg)
                if isinstance(checked, _Mismatch):
                    return None
                converted.append(checked)
            return implementation(*converted)

        return invoke

    return decorate


def _numbers(pair: Callable[[Value, Value], Value]) -> Callable[[list[Value]], Value]:
    """feelin's ``listFn`` over numbers: one list argument, or the arguments as the list."""

    def invoke(args: list[Value]) -> Value:
        if not args:
            return None
        first = args[0]
        items = first if len(args) == 1 and isinstance(first, list) else args
        if not items or any(isinstance(_check("number", item), _Mismatch) for item in items):
            return None
        # The checks unwrapped one-item lists only for themselves: the items reach the
        # JavaScript operators unconverted, so sum([[5], 1]) is the text "51" in feelin.
        result = items[0]
        for item in items[1:]:
            result = pair(result, item)
        return result

    return invoke


def feel_string(value: Value, quoted: bool = False) -> str:
    """feelin's ``toString``, which ``string(…)`` uses."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + re.sub(r'(["\\])', r"\\\1", value) + '"' if quoted else value
    if isinstance(value, bool | float):
        return _js.to_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(feel_string(item, True) for item in value) + "]"
    entries = (
        (_quote_key(key) if re.search(r"[^A-Za-z0-9_]", key) else key)
        + ": "
        + feel_string(value[key], True)
        for key in _js.own_keys(value)
    )
    return "{" + ", ".join(entries) + "}"


def _quote_key(key: str) -> str:
    return feel_string(key, True)


@_typed("any")
def _not(negand: Arg) -> Value:
    return (not negand) if isinstance(negand, bool) else None


@_typed("string", "number", "number?")
def _substring(string: Arg, start: Arg, length: Arg) -> Value:
    assert isinstance(string, str)
    assert isinstance(start, float)
    # feelin counts a negative start in UTF-16 units but slices code points.
    begin = _js.utf16_length(string) + start if start < 0 else start - 1
    characters = list(string)
    if isinstance(length, _Undefined):
        first, last = _js.slice_bounds(len(characters), begin)
    else:
        span = length if isinstance(length, float) else 0.0
        first, last = _js.slice_bounds(len(characters), begin, begin + span)
    return "".join(characters[first:last])


@_typed("string")
def _string_length(string: Arg) -> Value:
    assert isinstance(string, str)
    return float(len(string))


@_typed("string")
def _upper_case(string: Arg) -> Value:
    assert isinstance(string, str)
    return string.upper()


@_typed("string")
def _lower_case(string: Arg) -> Value:
    assert isinstance(string, str)
    return string.lower()


@_typed("string", "string")
def _contains(string: Arg, match: Arg) -> Value:
    assert isinstance(string, str)
    assert isinstance(match, str)
    return match in string


@_typed("string", "string")
def _starts_with(string: Arg, match: Arg) -> Value:
    assert isinstance(string, str)
    assert isinstance(match, str)
    return string.startswith(match)


@_typed("string", "string")
def _ends_with(string: Arg, match: Arg) -> Value:
    assert isinstance(string, str)
    assert isinstance(match, str)
    return string.endswith(match)


@_typed("any")
def _string(value: Arg) -> Value:
    if value is None or isinstance(value, _Undefined):
        return None
    return feel_string(value)


@_typed("string", "string?", "string?")
def _number(text: Arg, grouping: Arg, decimal: Arg) -> Value:
    assert isinstance(text, str)
    if isinstance(grouping, str) and grouping:
        text = text.replace(grouping, "")
    if isinstance(decimal, str) and decimal and decimal != ".":
        text = text.replace(".", "#").replace(decimal, ".")
    number = _js.string_to_number(text)
    return None if math.isnan(number) else number


@_typed("list")
def _count(items: Arg) -> Value:
    assert isinstance(items, list)
    return float(len(items))


@_typed("list", "any?")
def _list_contains(items: Arg, element: Arg) -> Value:
    assert isinstance(items, list)
    if isinstance(element, _Undefined):
        return False
    return any(_js.strict_equals(item, element) for item in items)


@_typed("number")
def _abs(number: Arg) -> Value:
    assert isinstance(number, float)
    return abs(number)


@_typed("number", "number?")
def _floor(number: Arg, scale: Arg) -> Value:
    assert isinstance(number, float)
    return _js.floor(number)


@_typed("number", "number?")
def _ceiling(number: Arg, scale: Arg) -> Value:
    assert isinstance(number, float)
    return _js.ceil(number)


# String functions on regular expressions: feelin builds them with ``new RegExp(pattern,
# "u" + flags)``, see panel_core.feel.jsregex.


def _regex(pattern: str, flags: str, default: str) -> jsregex.JsRegex | None:
    """feelin's ``createRegexp``: None where JavaScript refuses the pattern or flags."""
    unknown = re.sub("[smix]", "", flags)
    if unknown:
        return None
    if "x" in flags:
        raise FeelError("the regular expression flag 'x' is not implemented by feelin")
    try:
        return jsregex.compile_js(pattern, "u" + flags + default)
    except jsregex.JsSyntaxError:
        return None
    except jsregex.JsUnsupportedError as error:
        raise FeelError(f"the regular expression {pattern!r} is not supported: {error}") from None


@_typed("string", "string", "string?")
def _matches(text: Arg, pattern: Arg, flags: Arg) -> Value:
    assert isinstance(text, str)
    assert isinstance(pattern, str)
    regex = _regex(pattern, flags if isinstance(flags, str) else "", "")
    return None if regex is None else regex.test(text)


@_typed("string", "string", "string", "string?")
def _replace(text: Arg, pattern: Arg, replacement: Arg, flags: Arg) -> Value:
    assert isinstance(text, str)
    assert isinstance(pattern, str)
    assert isinstance(replacement, str)
    regex = _regex(pattern, flags if isinstance(flags, str) else "", "g")
    if regex is None:
        return None
    # feelin lets $0 stand for the whole match, as XPath does.
    return jsregex.replace_all(regex, text, replacement.replace("$0", "$&"))


@_typed("string", "string")
def _split(text: Arg, delimiter: Arg) -> Value:
    assert isinstance(text, str)
    assert isinstance(delimiter, str)
    regex = _regex(delimiter, "", "")
    return None if regex is None else list(jsregex.split(regex, text))


@_typed("string", "string")
def _substring_before(text: Arg, match: Arg) -> Value:
    assert isinstance(text, str)
    assert isinstance(match, str)
    index = text.find(match)
    return "" if index < 0 else text[:index]


@_typed("string", "string")
def _substring_after(text: Arg, match: Arg) -> Value:
    assert isinstance(text, str)
    assert isinstance(match, str)
    index = text.find(match)
    return "" if index < 0 else text[index + len(match) :]


@_typed("list", "string?")
def _string_join(items: Arg, delimiter: Arg) -> Value:
    assert isinstance(items, list)
    if any(item is not None and not isinstance(item, str) for item in items):
        return None
    separator = delimiter if isinstance(delimiter, str) else ""
    return separator.join(item for item in items if isinstance(item, str))


# List functions.


def _js_slice(items: list[Value], start: float, end: float | None = None) -> list[Value]:
    first, last = _js.slice_bounds(len(items), start, end)
    return items[first:last]


@_typed("list", "number", "number?")
def _sublist(items: Arg, start: Arg, length: Arg) -> Value:
    assert isinstance(items, list)
    assert isinstance(start, float)
    begin = len(items) + start if start < 0 else start - 1
    if isinstance(length, _Undefined):
        return _js_slice(items, begin)
    # feelin adds a null length as JavaScript does: as 0.
    return _js_slice(items, begin, begin + (length if isinstance(length, float) else 0.0))


def _append(args: list[Value]) -> Value:
    """feelin's ``append``: only the list and the first item are checked, the rest join."""
    first = _check("list", args[0])
    second = _check("any?", args[1])
    if isinstance(first, _Mismatch) or isinstance(second, _Mismatch):
        return None
    assert isinstance(first, list)
    return [*first, *args[1:]]


def _concatenate(args: list[Value]) -> Value:
    """``[].concat(...)``: list arguments are spread one level, anything else is an item."""
    result: list[Value] = []
    for arg in args:
        if isinstance(arg, list):
            result.extend(arg)
        else:
            result.append(arg)
    return result


@_typed("list", "number", "any?")
def _insert_before(items: Arg, position: Arg, item: Arg) -> Value:
    assert isinstance(items, list)
    assert isinstance(position, float)
    inserted = None if isinstance(item, _Undefined) else item
    return [*_js_slice(items, 0, position - 1), inserted, *_js_slice(items, position - 1)]


@_typed("list", "number")
def _remove(items: Arg, position: Arg) -> Value:
    assert isinstance(items, list)
    assert isinstance(position, float)
    return [*_js_slice(items, 0, position - 1), *_js_slice(items, position)]


@_typed("list", "any?", "any")
def _list_replace(items: Arg, position: Arg, item: Arg) -> Value:
    assert isinstance(items, list)
    assert not isinstance(item, _Undefined)
    # feelin takes ``position || match``: a position of 0 (or null) leaves no matcher.
    if not isinstance(position, float) or position == 0 or math.isnan(position):
        return None
    return [*_js_slice(items, 0, position - 1), item, *_js_slice(items, position)]


@_typed("list")
def _reverse(items: Arg) -> Value:
    assert isinstance(items, list)
    return items[::-1]


@_typed("list", "any")
def _index_of(items: Arg, match: Arg) -> Value:
    assert isinstance(items, list)
    assert not isinstance(match, _Undefined)
    return [float(index + 1) for index, item in enumerate(items) if _js.strict_equals(item, match)]


def _distinct(items: list[Value]) -> list[Value]:
    kept: list[Value] = []
    for item in items:
        if not any(equals(item, seen) is True for seen in kept):
            kept.append(item)
    return kept


@_typed("list")
def _distinct_values(items: Arg) -> Value:
    assert isinstance(items, list)
    return _distinct(items)


@_typed("list")
def _flatten(items: Arg) -> Value:
    assert isinstance(items, list)
    flat: list[Value] = []
    stack: list[list[Value]] = [items]
    positions = [0]
    while stack:
        current, index = stack[-1], positions[-1]
        if index == len(current):
            stack.pop()
            positions.pop()
            continue
        positions[-1] += 1
        item = current[index]
        if isinstance(item, list):
            stack.append(item)
            positions.append(0)
        else:
            flat.append(item)
    return flat


def _list_fn(
    spec: str, implementation: Callable[[list[Value]], Value]
) -> Callable[[list[Value]], Value]:
    """feelin's ``listFn``: one list argument, or the arguments as the list, each checked
    against ``spec`` but passed on as it was given (a one-item list stays a list)."""

    def invoke(args: list[Value]) -> Value:
        if not args:
            return None
        first = args[0]
        items = first if len(args) == 1 and isinstance(first, list) else args
        if any(isinstance(_check(spec, item), _Mismatch) for item in items):
            return None
        return implementation(items)

    return invoke


def _union(lists: list[Value]) -> Value:
    for item in lists:
        if not isinstance(item, list):
            # feelin calls the array method reduce on it and throws a TypeError.
            raise FeelError("feelin throws on 'union' of an item that is not a list")
    return _distinct([item for items in lists if isinstance(items, list) for item in items])


def _fold(items: list[Value], pair: Callable[[Value, Value], Value]) -> Value:
    result = items[0]
    for item in items[1:]:
        result = pair(result, item)
    return result


def _mean(items: list[Value]) -> Value:
    if not items:
        return None
    return _js.divide(_fold(items, _js.add), float(len(items)))


def _product(items: list[Value]) -> Value:
    if not items:
        return None
    result: Value = 1.0
    for item in items:
        result = _js.multiply(result, item)
    return result


def _median(items: list[Value]) -> Value:
    if not items:
        return None
    # Array.prototype.sort without a comparator orders the items as text.
    ordered = sorted(items, key=lambda item: _js.utf16_key(_js.to_string(item)))
    middle = len(ordered) / 2 - 1
    index = math.ceil(middle)
    if middle == index:
        return _js.divide(_js.add(ordered[index], ordered[index + 1]), 2.0)
    return ordered[index]


def _stddev(items: list[Value]) -> Value:
    if len(items) < 2:
        return None
    count = float(len(items))
    mean = _js.divide(_fold(items, _js.add), count)
    squares = [js_pow(_js.to_number(_js.subtract(item, mean)), 2.0) for item in items]
    total = _fold(list(squares), _js.add)
    return math.sqrt(_js.to_number(_js.divide(total, count - 1)))


def _mode(items: list[Value]) -> Value:
    if len(items) < 2:
        return list(items)
    counts: dict[str, float] = {}
    for item in items:
        key = _js.to_string(item)
        counts[key] = counts.get(key, 0.0) + 1
    ordered = sorted(
        ((key, counts[key]) for key in _js.own_keys(counts)),  # type: ignore[arg-type]
        key=lambda entry: -entry[1],
    )
    top = ordered[0][1]
    return [_js.string_to_number(key) for key, count in ordered if count == top]


def _all(items: list[Value]) -> Value:
    mixed = False
    for item in items:
        if item is False:
            return False
        if not isinstance(item, bool):
            mixed = True
    return None if mixed else True


def _any(items: list[Value]) -> Value:
    mixed = False
    for item in items:
        if item is True:
            return True
        if not isinstance(item, bool):
            mixed = True
    return None if mixed else False


@_typed("any?", "any?")
def _is(first: Arg, second: Arg) -> Value:
    if isinstance(first, _Undefined) or isinstance(second, _Undefined):
        return False
    return equals(first, second)


# Context functions.

# Keys every JavaScript object has through its prototype: feelin would find these where
# the data has nothing, so the panel does not guess what it would do with them.
_PROTOTYPE_KEYS: Final = frozenset(
    {
        "__proto__", "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
        "toLocaleString", "toString", "valueOf", "__defineGetter__", "__defineSetter__",
        "__lookupGetter__", "__lookupSetter__",
    }
)  # fmt: skip


def _property_key(value: Value) -> str:
    key = _js.to_string(value)
    if key == "__proto__":
        # Object.assign would set the prototype instead of an entry.
        raise FeelError("the context key '__proto__' is not supported")
    return key


def _own_entries(value: Value) -> list[tuple[str, Value]]:
    """What ``Object.assign`` copies from a value: an object's entries, a list's items by
    index, a text's characters; nothing from a number or a boolean."""
    if isinstance(value, dict):
        return [(key, value[key]) for key in _js.own_keys(value)]
    if isinstance(value, list):
        return [(str(index), item) for index, item in enumerate(value)]
    if isinstance(value, str):
        if _js.utf16_length(value) != len(value):
            raise FeelError("copying the characters of a text beyond the BMP is not supported")
        return [(str(index), char) for index, char in enumerate(value)]
    return []


@_typed("context", "string")
def _get_value(context: Arg, key: Arg) -> Value:
    assert isinstance(context, dict)
    assert isinstance(key, str)
    return value_of(key, context)


@_typed("context")
def _get_entries(context: Arg) -> Value:
    assert isinstance(context, dict)
    return [{"key": key, "value": value} for key, value in _own_entries(context)]


def _context(entries: list[Value]) -> Value:
    built: dict[str, Value] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
            return None
        if entry["key"] is None:
            return None
        key = _property_key(entry["key"])
        if key in built:
            return None
        built[key] = entry["value"]
    return built


def _context_merge(contexts: list[Value]) -> Value:
    merged: dict[str, Value] = {}
    for context in contexts:
        for key, value in _own_entries(context):
            merged[_property_key(key)] = value
    return merged


@_typed("context", "list?", "any")
def _context_put(context: Arg, keys: Arg, value: Arg) -> Value:
    assert isinstance(keys, list)
    assert not isinstance(value, _Undefined)
    return _put(context, keys, value)


def _put(context: Arg, keys: list[Value], value: Value) -> Value:
    if not keys or not isinstance(keys[0], str):
        return None
    if context is None or isinstance(context, _Undefined):
        return None
    key = _property_key(keys[0])
    if len(keys) > 1:
        own = dict(_own_entries(context))
        if key not in own and (key in _PROTOTYPE_KEYS or key == "length"):
            # feelin reads the key as a plain JavaScript property, inherited ones included.
            raise FeelError(f"the context key {key!r} is not supported")
        inner: Arg = own.get(key, UNDEFINED)
        value = _put(inner, keys[1:], value)
        if value is None:
            return None
    return {**dict(_own_entries(context)), key: value}


_SCALE_NOTE = "the scale argument is not supported"
_FUNCTION_NOTE = "a matching function (the fourth argument) is not supported"
_KEYS_NOTE = "give the key or the list of keys as the second argument"

SUPPORTED_FUNCTIONS: Final[dict[str, Function]] = {
    "not": Function(1, 1, _not),
    "substring": Function(2, 3, _substring),
    "string length": Function(1, 1, _string_length),
    "upper case": Function(1, 1, _upper_case),
    "lower case": Function(1, 1, _lower_case),
    "substring before": Function(2, 2, _substring_before),
    "substring after": Function(2, 2, _substring_after),
    "replace": Function(3, 4, _replace),
    "contains": Function(2, 2, _contains),
    "matches": Function(2, 3, _matches),
    "starts with": Function(2, 2, _starts_with),
    "ends with": Function(2, 2, _ends_with),
    "split": Function(2, 2, _split),
    "string join": Function(1, 2, _string_join),
    "string": Function(1, 1, _string),
    "number": Function(1, 3, _number),
    "list contains": Function(2, 2, _list_contains),
    "count": Function(1, 1, _count),
    "min": Function(1, 1000, _numbers(_js.math_min)),
    "max": Function(1, 1000, _numbers(_js.math_max)),
    "sum": Function(1, 1000, _numbers(_js.add)),
    "mean": Function(1, 1000, _list_fn("number", _mean)),
    "all": Function(1, 1000, _list_fn("any?", _all)),
    "any": Function(1, 1000, _list_fn("any?", _any)),
    "sublist": Function(2, 3, _sublist),
    "append": Function(2, 1000, _append),
    "concatenate": Function(1, 1000, _concatenate),
    "insert before": Function(3, 3, _insert_before),
    "remove": Function(2, 2, _remove),
    "list replace": Function(3, 3, _list_replace, _FUNCTION_NOTE),
    "reverse": Function(1, 1, _reverse),
    "index of": Function(2, 2, _index_of),
    "union": Function(1, 1000, _list_fn("list", _union)),
    "distinct values": Function(1, 1, _distinct_values),
    "flatten": Function(1, 1, _flatten),
    "product": Function(1, 1000, _list_fn("number", _product)),
    "median": Function(1, 1000, _list_fn("number", _median)),
    "stddev": Function(1, 1000, _list_fn("number", _stddev)),
    "mode": Function(1, 1000, _list_fn("number", _mode)),
    "is": Function(2, 2, _is),
    "abs": Function(1, 1, _abs),
    "floor": Function(1, 1, _floor, _SCALE_NOTE),
    "ceiling": Function(1, 1, _ceiling, _SCALE_NOTE),
    "get value": Function(2, 2, _get_value),
    "get entries": Function(1, 1, _get_entries),
    "context": Function(1, 1000, _list_fn("context", _context)),
    "context merge": Function(1, 1000, _list_fn("context", _context_merge)),
    "context put": Function(3, 3, _context_put, _KEYS_NOTE),
}
