"""The JavaScript semantics feelin inherits from the language it is written in.

feelin does not implement FEEL's comparison, addition or number formatting itself; it leaves
them to JavaScript's ``<``, ``+`` and ``String(number)``, which convert their operands on the
way (``"3" < 5`` is true, ``[5]`` adds like the string ``"5"``). To evaluate as the browser
does, the evaluator calls these functions wherever feelin relies on such an operator. Values
are the evaluator's: ``None``, ``bool``, ``float``, ``str``, ``list`` and ``dict``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import TypeAlias

Value: TypeAlias = "bool | float | str | list[Value] | dict[str, Value] | None"

# ECMAScript's WhiteSpace and LineTerminator, which String.prototype.trim and the regular
# expression class \s both use.
JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_SPACE_CLASS = "[" + re.escape(JS_SPACE) + "]"
_DECIMAL_LITERAL = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX_LITERAL = re.compile(
    r"0(?:[xX](?P<hex>[0-9a-fA-F]+)|[oO](?P<oct>[0-7]+)|[bB](?P<bin>[01]+))"
)
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_MAX_ARRAY_INDEX = 2**32 - 2


def type_of(value: Value) -> str:
    """feelin's name for the type of a value (its ``getType``)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "context"


def number_to_string(number: float) -> str:
    """ECMAScript ``Number::toString``: the shortest digits that round-trip, JS layout."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr() yields the same shortest round-tripping digits as ECMAScript; only the layout
    # of those digits differs between the two languages.
    digits_tuple, exponent = Decimal(repr(abs(number))).as_tuple()[1:]
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digits_tuple).rstrip("0")
    exponent += len("".join(str(d) for d in digits_tuple)) - len(digits)
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    power = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"


def to_string(value: Value) -> str:
    """ECMAScript ``ToString`` of a value after ``ToPrimitive``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_to_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


def to_primitive(value: Value) -> bool | float | str | None:
    """ECMAScript ``ToPrimitive``: arrays become their joined text, objects a fixed string."""
    if isinstance(value, list | dict):
        return to_string(value)
    return value


def string_to_number(text: str) -> float:
    """ECMAScript ``StringToNumber``, which ``Number("…")`` and ``+"…"`` use."""
    text = text.strip(JS_SPACE)
    if not text:
        return 0.0
    if text in {"Infinity", "+Infinity"}:
        return math.inf
    if text == "-Infinity":
        return -math.inf
    radix = _RADIX_LITERAL.fullmatch(text)
    if radix:
        if radix["hex"]:
            whole = int(radix["hex"], 16)
        elif radix["oct"]:
            whole = int(radix["oct"], 8)
        else:
            whole = int(radix["bin"], 2)
        try:
            return float(whole)
        except OverflowError:
            return math.inf
    if _DECIMAL_LITERAL.fullmatch(text):
        return float(text)
    return math.nan


def to_number(value: Value) -> float:
    """ECMAScript ``ToNumber`` after ``ToPrimitive``."""
    primitive = to_primitive(value)
    if primitive is None:
        return 0.0
    if isinstance(primitive, bool):
        return 1.0 if primitive else 0.0
    if isinstance(primitive, float):
        return primitive
    return string_to_number(primitive)


def _utf16(text: str) -> bytes:
    # Big-endian code units compare bytewise in the order ECMAScript compares strings.
    return text.encode("utf-16-be", "surrogatepass")


def _less_than(left: Value, right: Value) -> bool | None:
    """ECMAScript ``IsLessThan``; None is its ``undefined`` (a NaN was involved)."""
    left_primitive = to_primitive(left)
    right_primitive = to_primitive(right)
    if isinstance(left_primitive, str) and isinstance(right_primitive, str):
        return _utf16(left_primitive) < _utf16(right_primitive)
    left_number = to_number(left_primitive)
    right_number = to_number(right_primitive)
    if math.isnan(left_number) or math.isnan(right_number):
        return None
    return left_number < right_number


def compare(operator: str, left: Value, right: Value) -> bool:
    """The JavaScript relational operators ``<``, ``<=``, ``>``, ``>=`` on any two values."""
    if operator == "<":
        return _less_than(left, right) is True
    if operator == ">":
        return _less_than(right, left) is True
    if operator == "<=":
        return _less_than(right, left) is False
    if operator == ">=":
        return _less_than(left, right) is False
    raise ValueError(operator)


def add(left: Value, right: Value) -> float | str:
    """The JavaScript ``+`` operator: text if either side is text once made primitive."""
    left_primitive = to_primitive(left)
    right_primitive = to_primitive(right)
    if isinstance(left_primitive, str) or isinstance(right_primitive, str):
        return to_string(left_primitive) + to_string(right_primitive)
    return to_number(left_primitive) + to_number(right_primitive)


def strict_equals(left: Value, right: Value) -> bool:
    """The JavaScript ``===``: same type and value, and the same object for lists and dicts."""
    if left is None or right is None:
        return left is right
    if type(left) is not type(right):
        return False
    if isinstance(left, list | dict):
        return left is right
    return left == right


def math_min(left: Value, right: Value) -> float:
    """``Math.min`` of two values."""
    a, b = to_number(left), to_number(right)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return -0.0 if math.copysign(1, a) < 0 or math.copysign(1, b) < 0 else 0.0
    return min(a, b)


def math_max(left: Value, right: Value) -> float:
    """``Math.max`` of two values."""
    a, b = to_number(left), to_number(right)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return 0.0 if math.copysign(1, a) > 0 or math.copysign(1, b) > 0 else -0.0
    return max(a, b)


def floor(number: float) -> float:
    """``Math.floor``, keeping the sign of zero."""
    if not math.isfinite(number) or number == 0:
        return number
    return float(math.floor(number))


def ceil(number: float) -> float:
    """``Math.ceil``, keeping the sign of zero (``Math.ceil(-0.5)`` is ``-0``)."""
    if not math.isfinite(number) or number == 0:
        return number
    result = float(math.ceil(number))
    return -0.0 if result == 0 and number < 0 else result


def _to_integer_or_infinity(number: float) -> float:
    if math.isnan(number):
        return 0.0
    if math.isinf(number):
        return number
    return float(math.trunc(number))


def slice_bounds(length: int, start: float, end: float | None = None) -> tuple[int, int]:
    """The indices ``Array.prototype.slice(start, end)`` keeps; ``end`` None is omitted."""

    def clamp(position: float) -> int:
        relative = _to_integer_or_infinity(position)
        if relative < 0:
            return int(max(length + relative, 0))
        return int(min(relative, length))

    first = clamp(start)
    last = length if end is None else clamp(end)
    return first, max(first, last)


def utf16_length(text: str) -> int:
    """``String.prototype.length``: UTF-16 code units, not code points."""
    return len(_utf16(text)) // 2


def own_keys(context: dict[str, Value]) -> list[str]:
    """The keys of a JavaScript object in its own order: array indices first, ascending."""
    indices = sorted(
        (key for key in context if _ARRAY_INDEX.fullmatch(key) and int(key) <= _MAX_ARRAY_INDEX),
        key=int,
    )
    index_set = set(indices)
    return indices + [key for key in context if key not in index_set]


_SYMBOL_WITH_SPACE = re.compile(_SPACE_CLASS + r"*([./\-'+]|\*\*?)" + _SPACE_CLASS + "*")
_SPACE_RUN = re.compile(_SPACE_CLASS + "{2,}")


def normalize_context_key(name: str) -> str:
    """lezer-feel's ``normalizeContextKey``, with which feelin matches names to keys."""
    spaced = _SYMBOL_WITH_SPACE.sub(r" \1 ", name)
    return _SPACE_RUN.sub(" ", spaced).strip(JS_SPACE)


def subtract(left: Value, right: Value) -> float:
    """The JavaScript ``-`` operator."""
    return to_number(left) - to_number(right)


def multiply(left: Value, right: Value) -> float:
    """The JavaScript ``*`` operator."""
    return to_number(left) * to_number(right)


def divide(left: Value, right: Value) -> float:
    """The JavaScript ``/`` operator, with IEEE results for a zero divisor."""
    a, b = to_number(left), to_number(right)
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        negative = (a < 0) != (math.copysign(1, b) < 0)
        return -math.inf if negative else math.inf
    return a / b


def utf16_key(text: str) -> bytes:
    """A sort key ordering texts as JavaScript compares them: by UTF-16 code units."""
    return _utf16(text)
