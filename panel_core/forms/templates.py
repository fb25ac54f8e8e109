"""Templating in form texts (``{{ … }}``), as form-js evaluates it with feelers.

form-js treats a text as a template when it starts with ``=`` or holds ``{{…}}`` on one
line (``FeelersTemplating.isTemplate``), and evaluates it with feelers: ``{{expr}}``
inserts ``string(expr)``, ``{{#if cond}}…{{/if}}`` keeps its part when ``cond`` is truthy
in JavaScript's sense, and ``{{#loop list}}…{{/loop}}`` repeats its part for each item,
inside which the item's entries are the variables (``this`` is the item, ``parent`` the
context outside the loop). A text starting with ``=`` is one expression, inserted as
``string(expr)``. Labels, descriptions and adorners show the first line of the result.

The parser follows feelers' grammar (``lezer-feelers``): an opening tag swallows the line
break right after it, a closing tag the one after it, and the expression of a tag runs to
the first ``}}``. What feelers would only read through its error recovery (an unclosed
``{{``, a ``{{/if}}`` closing nothing) raises :class:`TemplateError`, and so does an
expression outside the panel's FEEL subset: :func:`~panel_core.forms.checks.check_form`
refuses such a form before anyone sees it.

Where feelin fails while evaluating, form-js shows its debug marker ``{{⚠}}``; the panel
shows nothing in its place, so that no template syntax ever reaches a page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias

from panel_core.feel import Expression, FeelError, evaluate, parse
from panel_core.feel import nodes as n

# form-js' test, with JavaScript's ".", which stops at line terminators.
_TEMPLATE = re.compile(r"\{\{[^\n\r\u2028\u2029]*?\}\}")
_OPEN_IF = "{{#if "
_OPEN_LOOP = "{{#loop "
_CLOSE_IF = "{{/if}}"
_CLOSE_LOOP = "{{/loop}}"
# The special names feelers and form-js put in a template's context.
_SCOPE_WORDS = frozenset({"this", "parent", "_this_", "_parent_"})
_PARENT = frozenset({"parent", "_parent_"})


# form-js' escapeHTML, applied to what a template inserts into an HTML component.
_HTML_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#039;",
    "{": "&#123;",
    "}": "&#125;",
    ":": "&#58;",
    ";": "&#59;",
}
_HTML_SPECIAL = re.compile("[&<>\"'{};:]")


def escape_html(text: str) -> str:
    """form-js' ``escapeHTML``: a value inserted into HTML as text, never markup."""
    return _HTML_SPECIAL.sub(lambda match: _HTML_ESCAPES[match[0]], text)


class TemplateError(ValueError):
    """A template the panel cannot evaluate as form-js would."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Insert:
    """``{{expr}}``: the expression wrapped in ``string(…)``, as feelers evaluates it; None
    for an empty insert."""

    expression: Expression | None
    source: str


@dataclass(frozen=True, slots=True)
class Section:
    """``{{#if …}}`` or ``{{#loop …}}`` with the parts inside; ``newline`` when the closing
    tag swallowed the line break after it."""

    kind: str
    expression: Expression
    source: str
    children: tuple[Part, ...]
    newline: bool


Part: TypeAlias = Text | Insert | Section


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[Part, ...]


def is_template(value: Any) -> bool:
    """Whether form-js evaluates this text as a template (``isTemplate``)."""
    return isinstance(value, str) and (value.startswith("=") or bool(_TEMPLATE.search(value)))


def parse_template(text: str) -> Template:
    """The template's parts, or :class:`TemplateError` saying what the panel cannot read."""
    return _parse(text)


@lru_cache(maxsize=1024)
def _parse(text: str) -> Template:
    if text.startswith("="):
        return Template((_insert(text[1:], whole=True),))
    parser = _Parser(text)
    parts = parser.block(closing=None)
    return Template(tuple(parts))


def _insert(feel: str, *, whole: bool = False) -> Insert:
    if not feel.strip():
        if whole:
            raise TemplateError("the expression after '=' is empty")
        return Insert(None, feel)
    try:
        # feelers evaluates every insert as string(<expression>): the same text is parsed.
        expression = parse(f"string({feel})")
    except FeelError as error:
        raise TemplateError(f"{{{{{feel}}}}}: {error.reason}") from None
    return Insert(expression, feel)


@dataclass(slots=True)
class _Parser:
    text: str
    position: int = 0

    def at(self, token: str) -> bool:
        return self.text.startswith(token, self.position)

    def block(self, closing: str | None) -> list[Part]:
        parts: list[Part] = []
        while self.position < len(self.text):
            start = self.text.find("{{", self.position)
            if start < 0:
                parts.append(Text(self.text[self.position :]))
                self.position = len(self.text)
                break
            if start > self.position:
                parts.append(Text(self.text[self.position : start]))
                self.position = start
            if self.at(_CLOSE_IF) or self.at(_CLOSE_LOOP):
                tag = _CLOSE_IF if self.at(_CLOSE_IF) else _CLOSE_LOOP
                if tag != closing:
                    raise TemplateError(f"{tag} at offset {start} closes no open section")
                return parts
            if self.at(_OPEN_IF) or self.at(_OPEN_LOOP):
                parts.append(self.section())
                continue
            parts.append(self.insert())
        if closing is not None:
            raise TemplateError(f"a section is not closed: {closing} is missing")
        return parts

    def feel_until_close(self, start: int) -> str:
        end = self.text.find("}}", self.position)
        if end < 0:
            raise TemplateError(f"the '{{{{' at offset {start} is never closed with '}}}}'")
        feel = self.text[self.position : end]
        self.position = end + 2
        return feel

    def insert(self) -> Insert:
        start = self.position
        self.position += 2
        if self.at("="):
            self.position += 1
        return _insert(self.feel_until_close(start))

    def section(self) -> Section:
        start = self.position
        loop = self.at(_OPEN_LOOP)
        self.position += len(_OPEN_LOOP if loop else _OPEN_IF)
        feel = self.feel_until_close(start)
        if self.at("\n"):
            self.position += 1
        kind = "loop" if loop else "if"
        try:
            expression = parse(feel)
        except FeelError as error:
            raise TemplateError(f"{{{{#{kind} {feel}}}}}: {error.reason}") from None
        closing = _CLOSE_LOOP if loop else _CLOSE_IF
        children = self.block(closing)
        self.position += len(closing)
        newline = self.at("\n")
        if newline:
            self.position += 1
        return Section(kind, expression, feel, tuple(children), newline)


# Evaluating.


def template_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """feelers' ``enhanceContext`` of a form-js expression context at the top level."""
    return {"this": context, "parent": None, **context, "_this_": context, "_parent_": None}


def _item_context(item: Any, parent: Mapping[str, Any]) -> dict[str, Any]:
    """The context of one loop item: its entries, with ``this`` and ``parent``."""
    entries: dict[str, Any] = {}
    if isinstance(item, Mapping):
        entries = {str(key): value for key, value in item.items()}
    elif isinstance(item, list):
        entries = {str(index): value for index, value in enumerate(item)}
    return {"this": item, "parent": parent, **entries, "_this_": item, "_parent_": parent}


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness, with which feelers decides an ``{{#if}}``."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


class _Failed(Exception):
    pass


def render(
    template: Template,
    context: Mapping[str, Any],
    *,
    strict: bool = False,
    escape: Callable[[str], str] | None = None,
) -> str:
    """The template's text for this form-js expression context.

    ``strict`` is a text or HTML component's ``strict``: a condition must then be a
    boolean and a loop's value a list. ``escape`` is applied to each inserted value (an
    HTML component escapes them, so a variable cannot add markup).
    """
    return "".join(_render(template.parts, template_context(context), strict, escape))


def _render(
    parts: tuple[Part, ...],
    context: Mapping[str, Any],
    strict: bool,
    escape: Callable[[str], str] | None,
) -> Iterator[str]:
    for part in parts:
        if isinstance(part, Text):
            yield part.text
            continue
        try:
            yield _part(part, context, strict, escape)
        except _Failed:
            # form-js shows its debug marker here; the page shows nothing.
            continue


def _part(
    part: Insert | Section,
    context: Mapping[str, Any],
    strict: bool,
    escape: Callable[[str], str] | None,
) -> str:
    if isinstance(part, Insert):
        if part.expression is None:
            return ""
        value = _evaluate(part.expression, context)
        if not isinstance(value, str):
            # string(null) is null, which the joined text leaves out (and form-js' HTML
            # escaping fails on, showing its marker).
            return ""
        return escape(value) if escape is not None else value
    value = _evaluate(part.expression, context)
    if part.kind == "if":
        if strict and not isinstance(value, bool):
            raise _Failed
        if not _truthy(value):
            return ""
        inner = "".join(_render(part.children, context, strict, escape))
    else:
        if not isinstance(value, list):
            if strict:
                raise _Failed
            value = [] if value is None else [value]
        inner = "".join(
            "".join(_render(part.children, _item_context(item, context), strict, escape))
            for item in value
        )
    return inner + ("\n" if part.newline and not inner.endswith("\n") else "")


def _evaluate(expression: Expression, context: Mapping[str, Any]) -> Any:
    try:
        return evaluate(expression, context)
    except FeelError:
        raise _Failed from None


def template_text(
    value: Any,
    context: Mapping[str, Any],
    *,
    single_line: bool = False,
    strict: bool = False,
    escape: Callable[[str], str] | None = None,
) -> str | None:
    """A text property as form-js shows it: evaluated if it is a template, else as written;
    only its first line where form-js shows one line. None when it is a template the panel
    cannot read (the form check refuses it)."""
    if not isinstance(value, str):
        return None
    text = value
    if is_template(value):
        try:
            text = render(parse_template(value), context, strict=strict, escape=escape)
        except TemplateError:
            return None
    return text.split("\n")[0] if single_line else text


# What a template reads.


@dataclass(slots=True)
class _Names:
    found: set[str] = field(default_factory=set)


def template_variables(template: Template) -> frozenset[str]:
    """The form variables a template reads: the names its top-level expressions use, and
    those a loop's body reaches through ``parent`` (its own names are the items')."""
    names = _Names()
    _collect(template.parts, 0, names)
    return frozenset(names.found - _SCOPE_WORDS)


def _collect(parts: tuple[Part, ...], depth: int, names: _Names) -> None:
    for part in parts:
        if isinstance(part, Text):
            continue
        if part.expression is not None:
            names.found.update(_reached(part.expression, depth))
        if isinstance(part, Section):
            _collect(part.children, depth + 1 if part.kind == "loop" else depth, names)


def _reached(expression: Expression, depth: int) -> set[str]:
    if depth == 0:
        return set(expression.variables)
    found: set[str] = set()
    for node in expression.nodes():
        chain = _chain(node)
        if len(chain) > depth and all(name in _PARENT for name in chain[:depth]):
            found.add(chain[depth])
    return found


def _chain(node: n.Node | n.Interval) -> list[str]:
    """``parent.parent.x`` as ``["parent", "parent", "x"]``; empty for other nodes."""
    names: list[str] = []
    while isinstance(node, n.Path):
        names.append(node.name)
        node = node.target
    if not isinstance(node, n.Name):
        return []
    return [node.name, *reversed(names)]
