"""The structure of a form-js schema: component kinds, value paths, scopes and options.

A form is read the way form-js reads it. Keyed components (inputs and expression fields)
bind their value to ``key``, which may be a dotted path; a ``group`` or ``dynamiclist`` with
a ``path`` puts its children's values under that path; a dynamic list repeats its children
once per row, each row an object in a list. The same tree of *instances* (a component at a
concrete value path, a row of a dynamic list included) drives reading a submission and
rendering the page, so both always agree on names, rows and conditions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from panel_core.clock import Clock
from panel_core.feel import FeelError, evaluate, parse
from panel_core.forms.expressions import expression_of, form_expressions, form_texts
from panel_core.forms.templates import (
    TemplateError,
    parse_template,
    template_text,
    template_variables,
)

INPUT_TYPES = frozenset(
    {
        "textfield",
        "textarea",
        "number",
        "checkbox",
        "checklist",
        "radio",
        "select",
        "taglist",
        "datetime",
        "filepicker",
    }
)
# Their answers are the ids of uploaded documents, filled in by the upload code.
FILE_TYPES = frozenset({"filepicker"})
# Computed on the server with FEEL, never typed by the participant.
EXPRESSION_TYPES = frozenset({"expression"})
KEYED_TYPES = INPUT_TYPES | EXPRESSION_TYPES
OPTION_TYPES = frozenset({"select", "radio", "checklist", "taglist"})
MULTIPLE_TYPES = frozenset({"checklist", "taglist"})
CONTAINER_TYPES = frozenset({"group", "dynamiclist"})
DISPLAY_TYPES = frozenset({"text", "html", "image", "separator", "spacer", "table", "button"})
SUPPORTED_TYPES = KEYED_TYPES | CONTAINER_TYPES | DISPLAY_TYPES

# The panel shows times as a person in Poland reads them; form-js uses the browser's zone.
FORM_ZONE = ZoneInfo("Europe/Warsaw")
# Rows of one dynamic list a page may hold: enough for any real list, bounded for the server.
MAX_ROWS = 50
# The hidden field through which a page tells how many rows a dynamic list had.
ROWS_SUFFIX = ":rows"
# The time part of a ``datetime`` field with both a date and a time.
TIME_SUFFIX = "-time"

Path: TypeAlias = tuple[str | int, ...]
RowCount: TypeAlias = Callable[[Mapping[str, Any], Path], int]

# The scope names form-js adds to every expression context.
SCOPE_NAMES = frozenset({"this", "parent", "i", "_this_", "_parent_", "_i_"})


def variable_names(schema: Mapping[str, Any]) -> frozenset[str]:
    """The process variables a form reads: its answers' names (prefilled from variables of
    the same name), ``valuesKey`` option lists, table data sources and every name its
    expressions use. A form is given these and nothing else of the case's data."""
    names = set(answer_names(schema))
    stack = list(_components(schema))
    while stack:
        component = stack.pop()
        for attribute in ("valuesKey", "dataSource"):
            value = component.get(attribute)
            if isinstance(value, str) and value and not value.startswith("="):
                names.add(value.split(".")[0])
        stack.extend(_components(component))
    for _component, _path, text in form_expressions(schema):
        try:
            names.update(parse(text).variables)
        except FeelError:
            continue
    for _holder, _where, template in form_texts(schema):
        try:
            names.update(template_variables(parse_template(template)))
        except TemplateError:
            continue
    return frozenset(names - SCOPE_NAMES)


def form_today(clock: Clock) -> date:
    """Today's date where the participants are, for ``disallowPassedDates``."""
    return datetime.fromtimestamp(clock.now(), tz=FORM_ZONE).date()


def key_path(component: Mapping[str, Any]) -> Path:
    return tuple(str(component["key"]).split("."))


def is_repeating(component: Mapping[str, Any]) -> bool:
    """A dynamic list repeats only with ``isRepeating`` and a path, as in form-js."""
    return (
        component.get("type") == "dynamiclist"
        and bool(component.get("isRepeating"))
        and bool(container_path(component))
    )


def container_path(component: Mapping[str, Any]) -> Path:
    path = component.get("path")
    if not path and component.get("type") == "dynamiclist":
        path = component.get("key")
    return tuple(str(path).split(".")) if path else ()


def html_name(path: Path) -> str:
    """A value path as a page field name: ``people[0].name``, ``address.street``."""
    name = ""
    for segment in path:
        if isinstance(segment, int):
            name += f"[{segment}]"
        else:
            name += f".{segment}" if name else segment
    return name


def get_path(data: Any, path: Path) -> Any:
    for segment in path:
        if isinstance(segment, int):
            if not isinstance(data, list) or segment >= len(data):
                return None
            data = data[segment]
        else:
            if not isinstance(data, Mapping):
                return None
            data = data.get(segment)
    return data


def set_path(data: dict[str, Any], path: Path, value: Any) -> None:
    """Set a value, making the objects on the way; rows of lists must already exist."""
    target: Any = data
    for segment, following in pairwise(path):
        if isinstance(segment, int):
            target = target[segment]
            continue
        if not isinstance(target.get(segment), dict | list):
            target[segment] = [] if isinstance(following, int) else {}
        target = target[segment]
    target[path[-1]] = value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def default_repetitions(component: Mapping[str, Any]) -> int:
    value = component.get("defaultRepetitions", 1)
    try:
        return max(0, min(int(value), MAX_ROWS))
    except (TypeError, ValueError):
        return 1


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an expression is evaluated: the form itself or one row of a dynamic list."""

    row: Path | None = None
    indexes: tuple[int, ...] = ()
    parent: Scope | None = None


@dataclass(slots=True)
class Instance:
    """A component at a concrete place in the data: its value path and its scope."""

    component: Mapping[str, Any]
    type: str
    path: Path
    scope: Scope
    # Unique within one tree: the component's position, rows included ("2/0[1]/3").
    uid: str
    children: list[Instance] = field(default_factory=list)
    rows: list[list[Instance]] = field(default_factory=list)
    repeating: bool = False

    @property
    def name(self) -> str:
        return html_name(self.path)

    @property
    def keyed(self) -> bool:
        return self.type in KEYED_TYPES

    def descendants(self) -> Iterator[Instance]:
        for child in self.children:
            yield child
            yield from child.descendants()
        for row in self.rows:
            for child in row:
                yield child
                yield from child.descendants()


def instances(schema: Mapping[str, Any], row_count: RowCount) -> list[Instance]:
    """The form's component instances in reading order; ``row_count`` sizes dynamic lists."""
    return _build(_components(schema), (), Scope(), row_count, "")


def _components(container: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    components = container.get("components")
    if not isinstance(components, list):
        return []
    return [c for c in components if isinstance(c, Mapping)]


def _build(
    components: list[Mapping[str, Any]],
    base: Path,
    scope: Scope,
    row_count: RowCount,
    position: str,
) -> list[Instance]:
    built: list[Instance] = []
    for number, component in enumerate(components):
        kind = str(component.get("type", ""))
        uid = f"{position}/{number}"
        if kind in KEYED_TYPES:
            if component.get("key"):
                path = base + key_path(component)
                built.append(Instance(component, kind, path, scope, uid))
        elif is_repeating(component):
            path = base + container_path(component)
            rows = []
            for index in range(max(0, min(row_count(component, path), MAX_ROWS))):
                row_path = (*path, index)
                row_scope = Scope(row=row_path, indexes=(*scope.indexes, index + 1), parent=scope)
                rows.append(
                    _build(
                        _components(component), row_path, row_scope, row_count, f"{uid}[{index}]"
                    )
                )
            built.append(Instance(component, kind, path, scope, uid, rows=rows, repeating=True))
        elif kind in CONTAINER_TYPES:
            path = base + container_path(component)
            children = _build(_components(component), path, scope, row_count, uid)
            built.append(Instance(component, kind, path, scope, uid, children=children))
        else:
            built.append(Instance(component, kind, base, scope, uid))
    return built


def walk(tree: list[Instance]) -> Iterator[Instance]:
    """Every instance, depth-first in reading order."""
    for instance in tree:
        yield instance
        yield from instance.descendants()


def input_components(schema: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every input component of the form, groups flattened, in reading order.

    File pickers are among them: their answers come from the upload code, not from here.
    """
    stack = list(reversed(_components(schema)))
    while stack:
        component = stack.pop()
        if component.get("type") in INPUT_TYPES and component.get("key"):
            yield dict(component)
        stack.extend(reversed(_components(component)))


def answer_names(schema: Mapping[str, Any]) -> frozenset[str]:
    """The top-level names the form's answers use: what an expression may read of them."""
    names = set(SCOPE_NAMES)
    stack: list[tuple[Mapping[str, Any], bool]] = [(c, False) for c in _components(schema)]
    while stack:
        component, nested = stack.pop()
        kind = component.get("type")
        path = container_path(component) if kind in CONTAINER_TYPES else ()
        if kind in KEYED_TYPES and component.get("key") and not nested:
            names.add(str(key_path(component)[0]))
        elif path and not nested:
            names.add(str(path[0]))
        # Below a container with a path, every name is inside that path.
        stack.extend((child, nested or bool(path)) for child in _components(component))
    return frozenset(names)


# Expressions.


def expression_context(root: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """The FEEL context form-js builds: the data, plus ``this``, ``parent`` and ``i``."""
    this = root if scope.row is None else get_path(root, scope.row)
    if scope.parent is None:
        parent = None
    elif scope.parent.row is None:
        parent = root
    else:
        parent = get_path(root, scope.parent.row)
    special: dict[str, Any] = {"this": this, "i": list(scope.indexes), "parent": parent}
    return {
        **special,
        **root,
        **{f"_{name}_": value for name, value in special.items()},
    }


def is_true(value: Any, context: Mapping[str, Any]) -> bool:
    """A boolean property that may be FEEL (``readonly``, ``conditional.hide``).

    An expression that fails to evaluate counts as false, as form-js does (feelin's
    error becomes null there); expressions the server cannot evaluate at all are refused
    when the form is checked (panel_core.forms.checks.check_form), not here.
    """
    text = expression_of(value)
    if text is None:
        return value is True
    try:
        return evaluate(text, context) is True
    except FeelError:
        return False


def hide_condition(component: Mapping[str, Any]) -> Any:
    conditional = component.get("conditional")
    return conditional.get("hide") if isinstance(conditional, Mapping) else None


def depends_on(value: Any, names: frozenset[str]) -> bool:
    """Whether an expression reads any of these names."""
    text = expression_of(value)
    if text is None:
        return False
    try:
        return bool(parse(text).variables & names)
    except FeelError:
        return False


def feel_value(value: Any, context: Mapping[str, Any]) -> Any:
    """A property's value: evaluated when it is an expression, None where that fails."""
    text = expression_of(value)
    if text is None:
        return value
    try:
        return evaluate(text, context)
    except FeelError:
        return None


def shown_text(
    value: Any,
    context: Mapping[str, Any],
    *,
    single_line: bool = True,
    strict: bool = False,
    escape: Callable[[str], str] | None = None,
) -> str:
    """A text property as form-js shows it: a template (``{{ … }}`` or ``=…``) evaluated
    with feelers' rules, and only its first line where form-js shows one line (labels,
    descriptions, adorners, image sources and alternative texts)."""
    if isinstance(value, str):
        return (
            template_text(value, context, single_line=single_line, strict=strict, escape=escape)
            or ""
        )
    text = display_text(value)
    return text.split("\n")[0] if single_line else text


def feel_number(value: Any, context: Mapping[str, Any]) -> Decimal | None:
    """A number property (``validate.min`` and the like) that may be FEEL."""
    value = feel_value(value, context)
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def evaluate_expression(expression: Any, context: Mapping[str, Any]) -> Any:
    """An expression field's or option list's FEEL (with or without the leading ``=``)."""
    if not isinstance(expression, str) or not expression.strip():
        return None
    try:
        return evaluate(expression, context)
    except FeelError:
        return None


def display_text(value: Any) -> str:
    """A value as JavaScript would show it in a label or a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return js_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def js_number(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value != 0 else "0"
    return str(value)


# Options of selects, radios, checklists and tag lists.


@dataclass(frozen=True, slots=True)
class Option:
    value: Any
    label: str
    # What the page sends for this option.
    token: str


def token_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | Decimal):
        return display_text(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def options_of(
    component: Mapping[str, Any], variables: Mapping[str, Any], context: Mapping[str, Any]
) -> list[Option]:
    """The options as form-js finds them: a variable, the static list, or an expression."""
    if component.get("valuesKey") is not None:
        raw = variables.get(str(component["valuesKey"]))
    elif component.get("values") is not None:
        raw = component["values"]
    elif component.get("valuesExpression"):
        raw = evaluate_expression(component["valuesExpression"], context)
    else:
        raw = None
    if not isinstance(raw, list):
        return []
    options = []
    for item in raw:
        normalised = _option(item)
        if normalised is not None:
            options.append(normalised)
    return options


def _allowed_primitive(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float | Decimal):
        return True
    return isinstance(value, str) and value != ""


def _option(item: Any) -> Option | None:
    if _allowed_primitive(item):
        return Option(item, display_text(item), token_of(item))
    if isinstance(item, Mapping):
        value, label = item.get("value"), item.get("label")
        if not (isinstance(label, str) and label) and _allowed_primitive(value):
            return Option(value, display_text(value), token_of(value))
        allowed = (isinstance(value, Mapping) and bool(value)) or _allowed_primitive(value)
        if isinstance(label, str) and label and allowed:
            return Option(value, label, token_of(value))
    return None


def find_option(options: list[Option], raw: Any) -> Option | None:
    """The option a page token (or, from the API, a value itself) names."""
    if not isinstance(raw, str):
        for option in options:
            if option.value == raw and type(option.value) is type(raw):
                return option
        raw = token_of(raw)
    for option in options:
        if option.token == raw:
            return option
    return None
