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

from panel_core.feel import _js
from panel_core.feel._js import Value

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


_SCALE_NOTE = "the scale argument is not supported"

SUPPORTED_FUNCTIONS: Final[dict[str, Function]] = {
    "not": Function(1, 1, _not),
    "substring": Function(2, 3, _substring),
    "string length": Function(1, 1, _string_length),
    "upper case": Function(1, 1, _upper_case),
    "lower case": Function(1, 1, _lower_case),
    "contains": Function(2, 2, _contains),
    "starts with": Function(2, 2, _starts_with),
    "ends with": Function(2, 2, _ends_with),
    "string": Function(1, 1, _string),
    "number": Function(1, 3, _number),
    "count": Function(1, 1, _count),
    "min": Function(1, 1000, _numbers(_js.math_min)),
    "max": Function(1, 1000, _numbers(_js.math_max)),
    "sum": Function(1, 1000, _numbers(_js.add)),
    "list contains": Function(2, 2, _list_contains),
    "abs": Function(1, 1, _abs),
    "floor": Function(1, 1, _floor, _SCALE_NOTE),
    "ceiling": Function(1, 1, _ceiling, _SCALE_NOTE),
}
