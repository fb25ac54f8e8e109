"""What the task page shows of a form: one node per component, ready for the templates.

The nodes carry everything a template needs (names, ids, the value to show, which options
are chosen, the error) so the templates stay free of form logic. A condition that depends
only on the task's variables hides its component here already. One that depends on the
answers cannot be settled before they are typed: its component is shown and marked
(``live_uid``); with JavaScript the page asks :func:`hidden_now` as they change, without it
the server applies the condition when the page is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeAlias

from panel_core.constants import FORM_PROPERTY_CONSENT, FORM_PROPERTY_SIGNATURE
from panel_core.forms.markup import safe_image_source, sanitise_html, spacer_size, text_html
from panel_core.forms.schema import (
    INPUT_TYPES,
    MAX_ROWS,
    MULTIPLE_TYPES,
    ROWS_SUFFIX,
    TIME_SUFFIX,
    Instance,
    answer_names,
    deep_merge,
    depends_on,
    display_text,
    expression_context,
    feel_value,
    get_path,
    hide_condition,
    html_name,
    instances,
    is_true,
    options_of,
    set_path,
    shown_text,
    walk,
)
from panel_core.forms.submission import (
    FOCUS_KEY,
    hidden_uids,
    read,
    rows_in_data,
)
from panel_core.forms.templates import escape_html
from panel_core.forms.values import page_value
from panel_core.i18n import gettext as _


@dataclass(slots=True)
class OptionNode:
    token: str
    label: str
    id: str
    selected: bool = False


@dataclass(slots=True)
class FieldNode:
    """An input. ``kind`` names its macro: input, textarea, checkbox, choices, select,
    datetime or file."""

    kind: str
    type: str
    # The field's name in the page; its ids are field-, hint- and error-<key>.
    key: str
    label: str
    component: Mapping[str, Any]
    description: str = ""
    error: str | None = None
    readonly: bool = False
    disabled: bool = False
    value: str = ""
    time_value: str = ""
    checked: bool = False
    options: list[OptionNode] = field(default_factory=list)
    input_type: str = "text"
    inputmode: str = ""
    prefix: str = ""
    suffix: str = ""
    date_label: str = ""
    time_label: str = ""
    min_date: str = ""
    time_step: str = ""
    autofocus: bool = False

    # Set when a condition on the answers may hide this: the page asks again as they change.
    live_uid: str = ""

    @property
    def time_key(self) -> str:
        return self.key + TIME_SUFFIX

    @property
    def required(self) -> bool:
        """Marked on the page (``*``, ``aria-required``) as form-js marks it."""
        validate = self.component.get("validate")
        return isinstance(validate, Mapping) and validate.get("required") is True

    @property
    def describers(self) -> list[str]:
        """Ids of what describes the input, before any error: hint and adorners."""
        ids = []
        if self.description:
            ids.append(f"hint-{self.key}")
        if self.prefix:
            ids.append(f"prefix-{self.key}")
        if self.suffix:
            ids.append(f"suffix-{self.key}")
        return ids


@dataclass(slots=True)
class GroupNode:
    label: str
    children: list[Node]
    outlined: bool = False
    kind: str = "group"
    # Set when a condition on the answers may hide this: the page asks again as they change.
    live_uid: str = ""


@dataclass(slots=True)
class RowNode:
    number: int
    children: list[Node]


@dataclass(slots=True)
class ListNode:
    key: str
    label: str
    rows: list[RowNode]
    can_add: bool
    can_remove: bool
    outlined: bool = False
    add_autofocus: bool = False
    kind: str = "list"

    # Set when a condition on the answers may hide this: the page asks again as they change.
    live_uid: str = ""

    @property
    def rows_key(self) -> str:
        return self.key + ROWS_SUFFIX


@dataclass(slots=True)
class ContentNode:
    """Text, HTML, an image, a separator or a spacer."""

    kind: str
    html: str = ""
    source: str = ""
    alt: str = ""
    size: int = 0
    # Set when a condition on the answers may hide this: the page asks again as they change.
    live_uid: str = ""


@dataclass(slots=True)
class TableNode:
    id: str
    label: str
    columns: list[str]
    rows: list[list[str]]
    kind: str = "table"
    # Set when a condition on the answers may hide this: the page asks again as they change.
    live_uid: str = ""


Node: TypeAlias = FieldNode | GroupNode | ListNode | ContentNode | TableNode


def page_fields(
    schema: Mapping[str, Any],
    *,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    variables: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> list[Node]:
    """The page's nodes for these values (as typed, or a draft; empty for a fresh page).

    A fresh page shows each field's value from the task's variables, else its default;
    after a post it shows what was typed. Read-only and disabled fields always show the
    variables' value or the default, never what a page sent.
    """
    typed = {k: v for k, v in values.items() if k != FOCUS_KEY}
    focus = values.get(FOCUS_KEY)
    variables = variables or {}
    if typed:
        reading = read(schema, typed, variables, today)
        tree, root, locked = reading.tree, reading.root(), reading.locked
    else:
        tree = instances(schema, rows_in_data(variables))
        root = _initial_data(tree, variables)
        locked = {
            i.name
            for i in walk(tree)
            if i.type in INPUT_TYPES
            and (
                i.type == "filepicker"
                or i.component.get("disabled")
                or is_true(i.component.get("readonly"), expression_context(root, i.scope))
            )
        }
    live = live_uids(schema, tree)
    hidden = hidden_uids(tree, root, counts=lambda instance: instance.uid not in live)
    builder = _Builder(
        typed=typed,
        fresh=not typed,
        errors=errors,
        variables=variables,
        root=root,
        locked=locked,
        hidden=hidden,
        live=live,
        today=today,
        focus=focus if isinstance(focus, str) else None,
    )
    return builder.nodes(tree)


def live_uids(schema: Mapping[str, Any], tree: list[Instance]) -> set[str]:
    """Components whose condition reads the answers: only the page's values can settle it."""
    names = answer_names(schema)
    return {i.uid for i in walk(tree) if depends_on(hide_condition(i.component), names)}


def hidden_now(
    schema: Mapping[str, Any],
    values: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> list[str]:
    """Of the components a condition on the answers may hide, those hidden by these values
    (what a page with JavaScript hides while the participant types)."""
    reading = read(schema, values, variables or {}, today)
    live = live_uids(schema, reading.tree)
    return sorted(reading.hidden & live)


def _initial_data(tree: list[Instance], variables: Mapping[str, Any]) -> dict[str, Any]:
    """form-js' data when a form opens: the variables, with defaults for what they lack."""
    data: dict[str, Any] = {}
    for instance in walk(tree):
        if instance.repeating:
            rows = get_path(variables, instance.path)
            rows = rows if isinstance(rows, list) else []
            set_path(
                data,
                instance.path,
                [
                    dict(rows[n]) if n < len(rows) and isinstance(rows[n], Mapping) else {}
                    for n in range(len(instance.rows))
                ],
            )
        elif instance.keyed:
            value = get_path(variables, instance.path)
            if value is None:
                value = instance.component.get("defaultValue")
            if value is not None:
                set_path(data, instance.path, value)
    return deep_merge(variables, data)


_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(slots=True)
class _Builder:
    typed: Mapping[str, Any]
    fresh: bool
    errors: Mapping[str, str]
    variables: Mapping[str, Any]
    root: dict[str, Any]
    locked: set[str]
    hidden: set[str]
    live: set[str]
    today: date | None
    focus: str | None

    def nodes(self, items: list[Instance]) -> list[Node]:
        built = []
        for instance in items:
            if instance.uid in self.hidden:
                continue
            node = self.node(instance)
            if node is not None:
                if instance.uid in self.live:
                    node.live_uid = instance.uid
                built.append(node)
        return built

    def node(self, instance: Instance) -> Node | None:
        component = instance.component
        context = expression_context(self.root, instance.scope)
        kind = instance.type
        label = shown_text(component.get("label"), context)
        if instance.repeating:
            allowed = component.get("allowAddRemove") is not False
            return ListNode(
                key=instance.name,
                label=label,
                rows=[
                    RowNode(number=index + 1, children=self.nodes(row))
                    for index, row in enumerate(instance.rows)
                ],
                can_add=allowed and len(instance.rows) < MAX_ROWS,
                can_remove=allowed,
                outlined=bool(component.get("showOutline")),
                add_autofocus=self.focus == f"add:{instance.name}",
            )
        if kind in {"group", "dynamiclist"}:
            return GroupNode(
                label=label,
                children=self.nodes(instance.children),
                outlined=bool(component.get("showOutline")),
            )
        if kind in INPUT_TYPES:
            return self.field(instance, context, label)
        return self.content(instance, context, label)

    def content(self, instance: Instance, context: dict[str, Any], label: str) -> Node | None:
        component = instance.component
        kind = instance.type
        strict = component.get("strict") is True
        if kind == "text":
            text = shown_text(component.get("text"), context, single_line=False, strict=strict)
            return ContentNode("text", html=text_html(text)) if text.strip() else None
        if kind == "html":
            content = shown_text(
                component.get("content"),
                context,
                single_line=False,
                strict=strict,
                escape=escape_html,
            )
            return ContentNode("html", html=sanitise_html(content)) if content.strip() else None
        if kind == "image":
            source = safe_image_source(shown_text(component.get("source"), context))
            if source is None:
                return None
            return ContentNode(
                "image", source=source, alt=shown_text(component.get("alt"), context)
            )
        if kind == "separator":
            return ContentNode("separator")
        if kind == "spacer":
            return ContentNode("spacer", size=spacer_size(component.get("height", 60)))
        if kind == "table":
            return self.table(instance, context, label)
        # Buttons (the page has its own), expression fields (computed when the page is
        # sent) and what the form check refuses show nothing.
        return None

    def table(self, instance: Instance, context: dict[str, Any], label: str) -> TableNode:
        component = instance.component
        columns = feel_value(component.get("columnsExpression"), context)
        if not (
            isinstance(columns, list)
            and columns
            and all(
                isinstance(c, Mapping)
                and isinstance(c.get("key"), str)
                and isinstance(c.get("label"), str)
                for c in columns
            )
        ):
            columns = component.get("columns")
        columns = [c for c in columns or [] if isinstance(c, Mapping) and c.get("key")]
        source = component.get("dataSource")
        if isinstance(source, str) and source.startswith("="):
            data = feel_value(source, context)
        elif isinstance(source, str) and source:
            data = get_path(context, tuple(source.split(".")))
        else:
            data = None
        rows = [
            [display_text(row.get(str(c["key"]))) for c in columns]
            for row in (data if isinstance(data, list) else [])
            if isinstance(row, Mapping)
        ]
        slug = _SLUG.sub("-", str(component.get("id") or instance.uid)).strip("-")
        if instance.scope.row is not None:
            slug += "-" + _SLUG.sub("-", html_name(instance.scope.row)).strip("-")
        return TableNode(
            id=f"table-{slug}",
            label=label,
            columns=[str(c.get("label") or c["key"]) for c in columns],
            rows=rows,
        )

    def field(self, instance: Instance, context: dict[str, Any], label: str) -> FieldNode:
        component = instance.component
        kind = instance.type
        name = instance.name
        locked = name in self.locked
        main, clock = self.shown(instance, locked)
        node = FieldNode(
            kind="input",
            type=kind,
            key=name,
            label=label,
            component=component,
            description=shown_text(component.get("description"), context),
            error=self.errors.get(name),
            readonly=locked and not component.get("disabled"),
            disabled=bool(component.get("disabled")),
            autofocus=self.focus == name,
        )
        if kind == "filepicker":
            node.kind, node.readonly = "file", False
            return node
        if kind == "checkbox":
            node.kind = "checkbox"
            items = main if isinstance(main, list) else [main]
            node.checked = any(item in ("true", "on", True) for item in items)
            return node
        if kind in {"select", "radio", "checklist", "taglist"}:
            node.kind = "select" if kind == "select" else "choices"
            chosen = main if isinstance(main, list) else [main]
            if kind not in MULTIPLE_TYPES:
                chosen = chosen[:1]
            chosen_tokens = {str(item) for item in chosen if item is not None}
            node.options = [
                OptionNode(
                    token=option.token,
                    label=option.label,
                    id=f"field-{name}" if number == 0 else f"field-{name}-{number + 1}",
                    selected=option.token in chosen_tokens,
                )
                for number, option in enumerate(options_of(component, self.variables, context))
            ]
            return node
        node.value = _text(main)
        if kind == "datetime":
            node.kind = "datetime"
            subtype = component.get("subtype") or "date"
            node.input_type = subtype if subtype in {"date", "time"} else "datetime"
            node.date_label = shown_text(component.get("dateLabel"), context) or _("Date")
            node.time_label = shown_text(component.get("timeLabel"), context) or _("Time")
            node.label = node.time_label if subtype == "time" else node.date_label
            node.time_value = _text(clock)
            if component.get("disallowPassedDates") and self.today is not None:
                node.min_date = self.today.isoformat()
            interval = component.get("timeInterval")
            if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
                node.time_step = str(interval * 60)
            return node
        if kind == "textarea":
            node.kind = "textarea"
            return node
        appearance = component.get("appearance")
        if isinstance(appearance, Mapping):
            node.prefix = shown_text(appearance.get("prefixAdorner"), context)
            node.suffix = shown_text(appearance.get("suffixAdorner"), context)
        if kind == "number":
            node.inputmode = "numeric" if component.get("decimalDigits") == 0 else "decimal"
        else:
            rules = component.get("validate")
            validation = rules.get("validationType") if isinstance(rules, Mapping) else None
            node.input_type = {"email": "email", "phone": "tel"}.get(str(validation), "text")
        return node

    def shown(self, instance: Instance, locked: bool) -> tuple[Any, Any]:
        """What the field shows: typed text after a post, else the stored or default value."""
        if not locked and not self.fresh:
            return self.typed.get(instance.name), self.typed.get(instance.name + TIME_SUFFIX)
        if given_actively(instance.component):
            return None, None
        stored = get_path(self.variables, instance.path)
        if stored is None:
            stored = instance.component.get("defaultValue")
        shown = page_value(instance.component, stored, self.today)
        return shown if shown is not None else (None, None)


def given_actively(component: Mapping[str, Any]) -> bool:
    """A consent or a signature is never ticked in advance, by a variable or a default:
    it counts only as the participant's own act."""
    properties = component.get("properties")
    if not isinstance(properties, Mapping):
        return False
    consent = str(properties.get(FORM_PROPERTY_CONSENT, "")).lower() == "true"
    return consent or bool(properties.get(FORM_PROPERTY_SIGNATURE))


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, str)), "")
    return value if isinstance(value, str) else ""


def page_components(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The form's text blocks and inputs in reading order, groups flattened.

    Text blocks carry ``html``: their markdown rendered to escaped HTML, so nothing from a
    form can inject markup into the page. Consents are worded from this list.
    """
    shown: list[dict[str, Any]] = []
    stack = list(reversed(schema.get("components", [])))
    while stack:
        component = stack.pop()
        if not isinstance(component, Mapping):
            continue
        kind = component.get("type")
        if kind == "text" and component.get("text"):
            shown.append({**component, "html": text_html(str(component["text"]))})
        elif kind in INPUT_TYPES and component.get("key"):
            shown.append(dict(component))
        components = component.get("components")
        if isinstance(components, list):
            stack.extend(reversed(components))
    return shown


def any_required(nodes: Iterable[Any]) -> bool:
    """Whether a page's fields include a required one: the page then says what ``*`` means."""
    for node in nodes:
        if isinstance(node, FieldNode) and node.required and not (node.readonly or node.disabled):
            return True
        children = [*getattr(node, "children", []), *getattr(node, "rows", [])]
        if children and any_required(c for c in children if not isinstance(c, list)):
            return True
    return False
