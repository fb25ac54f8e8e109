"""The syntax tree of a parsed expression. Every node records its offset in the source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from panel_core.feel._js import Value


@dataclass(frozen=True, slots=True)
class Constant:
    """A literal: a number (always a float), a string, a boolean or null."""

    value: Value
    pos: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    target: Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Filter:
    target: Node
    predicate: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    operator: Literal["-", "+"]
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Arithmetic:
    operator: Literal["+", "-", "*", "/", "**"]
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Comparison:
    operator: Literal["=", "!=", "<", "<=", ">", ">="]
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Between:
    value: Node
    low: Node
    high: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Interval:
    """``[a..b]``, ``(a..b)``, ``]a..b[`` and mixtures, only ever as the list of ``in``."""

    low: Node
    high: Node
    low_closed: bool
    high_closed: bool
    pos: int


@dataclass(frozen=True, slots=True)
class In:
    value: Node
    target: Node | Interval
    pos: int


@dataclass(frozen=True, slots=True)
class Logical:
    operator: Literal["and", "or"]
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class If:
    condition: Node
    then: Node
    otherwise: Node
    pos: int


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class ContextLiteral:
    entries: tuple[tuple[str, Node], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class For:
    variable: str
    source: Node
    body: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Quantified:
    quantifier: Literal["some", "every"]
    variable: str
    source: Node
    condition: Node
    pos: int


Node: TypeAlias = (
    Constant
    | Name
    | Path
    | Filter
    | Call
    | Unary
    | Arithmetic
    | Comparison
    | Between
    | In
    | Logical
    | If
    | ListLiteral
    | ContextLiteral
    | For
    | Quantified
)


def static_type(node: Node) -> str | None:
    """The type feelin tags a node with while building it (None where it tags none).

    feelin decides what ``list[x]`` means from this tag of ``x`` rather than from its
    value: a number tag indexes, a test tag filters, a string tag selects equal items, no
    tag gives null, and an ``any`` tag decides by the value.
    """
    if isinstance(node, Constant):
        value = node.value
        if value is None:
            return "nil"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, float):
            return "number"
        return "string"
    if isinstance(node, Name | Path | Filter | Call):
        return "any"
    if isinstance(node, Comparison | Between | In | Logical | Quantified):
        return "test"
    if isinstance(node, Arithmetic):
        return _coalesce(static_type(node.left), static_type(node.right))
    if isinstance(node, Unary):
        return static_type(node.operand)
    if isinstance(node, If):
        return _coalesce(static_type(node.then), static_type(node.otherwise))
    return None


def _coalesce(left: str | None, right: str | None) -> str | None:
    return left if left == right else "any"
