"""How feelin finds a name in a context and compares two values, shared by the evaluator
and the built-in functions (``get value``, ``distinct values``, ``union``, ``is``)."""

from __future__ import annotations

from typing import Final

from panel_core.feel import _js
from panel_core.feel._js import Value


class Missing:
    """No such entry: feelin's ``undefined``, which most places turn into null."""


MISSING: Final = Missing()


def lookup_entry(name: str, target: Value) -> Value | Missing:
    """feelin's ``getFromContext``: own key, then the key as lezer-feel normalises names."""
    if isinstance(target, list):
        # An array's only own property with a name is its length.
        return float(len(target)) if name == "length" else MISSING
    if not isinstance(target, dict):
        return MISSING
    if name in target:
        return target[name]
    normalized = _js.normalize_context_key(name)
    if normalized in target:
        return target[normalized]
    for key in _js.own_keys(target):
        if _js.normalize_context_key(key) == normalized:
            return target[key]
    return MISSING


def value_of(name: str, target: Value) -> Value:
    found = lookup_entry(name, target)
    return None if isinstance(found, Missing) else found


def equals(left: Value, right: Value) -> bool | None:
    """feelin's ``equals``: null only equals null, other type mismatches give null."""
    if (left is None) != (right is None):
        return False
    if isinstance(left, list) and len(left) < 2:
        left = left[0] if left else None
    if isinstance(right, list) and len(right) < 2:
        right = right[0] if right else None
    kind = _js.type_of(left)
    if kind != _js.type_of(right):
        return None
    if kind == "nil":
        return True
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return False
        return all(equals(a, b) is True for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        if len(left) != len(right):
            return False
        return all(key in right and equals(item, right[key]) is True for key, item in left.items())
    return left == right
