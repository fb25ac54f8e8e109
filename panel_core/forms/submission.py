"""Reading a participant's answers against the Camunda Form pinned to their task.

Only the fields of the form are read, each converted to the type its component declares;
anything else in the request is dropped, and so are read-only, disabled and hidden fields.
Answers come either from the task page (flat field names: ``key``, ``address.street``,
``people[0].name``) or from the API as form-js data (nested objects and lists); both are
read through the same instances. Of those answers, only the fields the model marks with
the ``sendToProcess`` property become process variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Any

from panel_core.constants import FORM_PROPERTY_SEND_TO_PROCESS
from panel_core.forms.schema import (
    FILE_TYPES,
    INPUT_TYPES,
    MAX_ROWS,
    MULTIPLE_TYPES,
    ROWS_SUFFIX,
    TIME_SUFFIX,
    Instance,
    Path,
    RowCount,
    container_path,
    deep_merge,
    default_repetitions,
    evaluate_expression,
    expression_context,
    get_path,
    hide_condition,
    html_name,
    instances,
    is_true,
    set_path,
    walk,
)
from panel_core.forms.values import convert, file_answer, page_value

# What an empty field holds in form-js, and so what expressions see for it.
EMPTY_VALUES: Mapping[str, Any] = {"textfield": "", "textarea": "", "checkbox": False}


def empty_value(kind: str) -> Any:
    if kind in MULTIPLE_TYPES:
        return []
    return EMPTY_VALUES.get(kind)


def rows_in_values(values: Mapping[str, Any]) -> RowCount:
    """How many rows each dynamic list has in a submission (page fields or form-js data)."""

    def count(component: Mapping[str, Any], path: Path) -> int:
        nested = get_path(values, path)
        if isinstance(nested, list):
            return min(len(nested), MAX_ROWS)
        name = html_name(path)
        declared: int | None = None
        raw = values.get(name + ROWS_SUFFIX)
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if isinstance(raw, str) and raw.strip().isdigit():
            declared = int(raw)
        seen = -1
        prefix = name + "["
        for key in values:
            if isinstance(key, str) and key.startswith(prefix):
                index = key[len(prefix) :].partition("]")[0]
                if index.isdigit():
                    seen = max(seen, int(index))
        if declared is None and seen < 0:
            return default_repetitions(component)
        return min(max(declared or 0, seen + 1), MAX_ROWS)

    return count


def rows_in_data(data: Mapping[str, Any]) -> RowCount:
    """How many rows each dynamic list shows first: the variables' list, else the default."""

    def count(component: Mapping[str, Any], path: Path) -> int:
        nested = get_path(data, path)
        if isinstance(nested, list):
            return min(len(nested), MAX_ROWS)
        return default_repetitions(component)

    return count


def raw_value(values: Mapping[str, Any], instance: Instance) -> Any:
    """What was sent for a field: its page field(s), else its place in form-js data."""
    name = instance.name
    raw = values[name] if name in values else get_path(values, instance.path)
    component = instance.component
    if component.get("type") == "datetime" and component.get("subtype") == "datetime":
        clock = values.get(name + TIME_SUFFIX)
        if isinstance(clock, list):
            clock = clock[0] if clock else None
        if isinstance(clock, str):
            day = raw[0] if isinstance(raw, list) and raw else raw
            day = day if isinstance(day, str) else ""
            return f"{day.strip()}T{clock.strip()}" if clock.strip() else day
    return raw


@dataclass(slots=True)
class Reading:
    """A submission read against the form, before hidden and locked fields are dropped."""

    tree: list[Instance]
    variables: Mapping[str, Any]
    # Converted values by field name; None where the field was left empty.
    converted: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Read-only, disabled and file fields: shown, never taken from the page.
    locked: set[str] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)
    # The answers as form-js data, empty fields included, for expressions.
    data: dict[str, Any] = field(default_factory=dict)

    def root(self) -> dict[str, Any]:
        return deep_merge(self.variables, self.data)


def read(
    schema: Mapping[str, Any],
    submitted: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> Reading:
    variables = variables or {}
    reading = Reading(instances(schema, rows_in_values(submitted)), variables)
    _make_rows(reading.tree, reading.data)
    fields = [
        i
        for i in walk(reading.tree)
        if i.type in INPUT_TYPES and i.type not in FILE_TYPES and not i.component.get("disabled")
    ]
    open_fields = {i.uid for i in fields}
    reading.locked = {
        i.name for i in walk(reading.tree) if i.type in INPUT_TYPES and i.uid not in open_fields
    }
    # Twice: rules and option lists may be FEEL over other answers, so the second pass
    # judges each field with the whole page's values, as form-js does with its live data.
    for _pass in range(2):
        root = reading.root()
        reading.converted.clear()
        reading.errors.clear()
        for instance in fields:
            value, error = convert(
                instance.component,
                raw_value(submitted, instance),
                context=expression_context(root, instance.scope),
                variables=variables,
                today=today,
            )
            reading.converted[instance.name] = value
            set_path(
                reading.data, instance.path, empty_value(instance.type) if value is None else value
            )
            if error:
                reading.errors[instance.name] = error
    root = reading.root()
    for instance in fields:
        readonly = instance.component.get("readonly")
        if is_true(readonly, expression_context(root, instance.scope)):
            reading.locked.add(instance.name)
            reading.converted.pop(instance.name, None)
            reading.errors.pop(instance.name, None)
            set_path(reading.data, instance.path, get_path(variables, instance.path))
    root = reading.root()
    for instance in walk(reading.tree):
        if instance.type == "expression":
            context = expression_context(root, instance.scope)
            value = evaluate_expression(instance.component.get("expression"), context)
            reading.converted[instance.name] = value
            set_path(reading.data, instance.path, value)
            set_path(root, instance.path, value)
    reading.hidden = hidden_uids(reading.tree, reading.root())
    return reading


def _make_rows(tree: list[Instance], data: dict[str, Any]) -> None:
    for instance in walk(tree):
        if instance.repeating:
            set_path(data, instance.path, [{} for _ in instance.rows])


def hidden_uids(
    tree: list[Instance],
    root: Mapping[str, Any],
    counts: Callable[[Instance], bool] | None = None,
) -> set[str]:
    """Every instance hidden by its own condition or by a container's.

    ``counts`` decides which conditions apply (all of them unless told otherwise).
    """
    hidden: set[str] = set()

    def visit(items: list[Instance], hide_all: bool) -> None:
        for instance in items:
            condition = hide_condition(instance.component)
            gone = hide_all or (
                condition is not None
                and (counts is None or counts(instance))
                and is_true(condition, expression_context(root, instance.scope))
            )
            if gone:
                hidden.add(instance.uid)
            visit(instance.children, gone)
            for row in instance.rows:
                visit(row, gone)

    visit(tree, False)
    return hidden


def read_submission(
    schema: Mapping[str, Any],
    submitted: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    today: date | None = None,
    files: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert submitted values; returns (answers, errors by field name).

    Fields hidden by their condition (evaluated on the task's variables and these answers,
    as form-js does), read-only and disabled fields are neither required nor kept.
    Expression fields are computed here. ``files`` holds the ids of the documents uploaded
    to each file picker (by its key): a file picker's answer is those ids, and a required
    one without any is an error. Without ``files`` file pickers are left out.
    ``today`` is needed by forms with ``disallowPassedDates`` or zoned times.
    """
    reading = read(schema, submitted, variables, today)
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    root = reading.root()

    def collect(items: list[Instance]) -> None:
        for instance in items:
            if instance.uid in reading.hidden:
                continue
            if instance.repeating:
                set_path(answers, instance.path, [{} for _ in instance.rows])
                for row in instance.rows:
                    collect(row)
                continue
            collect(instance.children)
            name = instance.name
            if instance.type in FILE_TYPES:
                if files is not None:
                    answer, error = file_answer(
                        instance.component,
                        files.get(name, ()),
                        context=expression_context(root, instance.scope),
                    )
                    if error:
                        errors[name] = error
                    elif answer is not None:
                        set_path(answers, instance.path, answer)
                continue
            if not instance.keyed or name in reading.locked:
                continue
            if name in reading.errors:
                errors[name] = reading.errors[name]
                continue
            value = reading.converted.get(name)
            if value is not None:
                set_path(answers, instance.path, value)

    collect(reading.tree)
    return answers, errors


def hidden_keys(schema: Mapping[str, Any], context: Mapping[str, Any]) -> set[str]:
    """Field names whose ``conditional.hide`` (their own or a container's) is true here."""
    tree = instances(schema, rows_in_data(context))
    hidden = hidden_uids(tree, context)
    return {i.name for i in walk(tree) if i.keyed and i.uid in hidden}


def process_variables(schema: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers the process needs: fields marked with the ``sendToProcess`` property.

    A marked group (with a path) or dynamic list sends everything under its path; a marked
    field inside a dynamic list sends its value in every row.
    """
    tree = instances(schema, rows_in_data(answers))
    chosen: dict[str, Any] = {}

    def take(items: list[Instance]) -> None:
        for instance in items:
            owns_path = instance.keyed or bool(container_path(instance.component))
            if owns_path and _marked(instance.component):
                value = get_path(answers, instance.path)
                if value is not None:
                    _put(chosen, instance.path, value)
                continue
            for row in instance.rows:
                take(row)
            take(instance.children)

    take(tree)
    return chosen


def sent_names(schema: Mapping[str, Any]) -> frozenset[str]:
    """The top-level process variables the form's marked fields set when it is completed."""
    names: set[str] = set()

    def visit(items: list[Instance]) -> None:
        for instance in items:
            owns_path = instance.keyed or bool(container_path(instance.component))
            if owns_path and _marked(instance.component) and instance.path:
                names.add(str(instance.path[0]))
                continue
            for row in instance.rows:
                visit(row)
            visit(instance.children)

    visit(instances(schema, rows_in_data({})))
    return frozenset(names)


def _marked(component: Mapping[str, Any]) -> bool:
    properties = component.get("properties")
    if not isinstance(properties, Mapping):
        return False
    return str(properties.get(FORM_PROPERTY_SEND_TO_PROCESS, "")).lower() == "true"


def _put(target: dict[str, Any], path: Path, value: Any) -> None:
    """Set a value at a path, making the rows of lists on the way as needed."""
    node: Any = target
    for segment, following in pairwise(path):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(segment, int):
            while len(node) <= segment:
                node.append({})
            node = node[segment]
        else:
            if not isinstance(node.get(segment), dict | list):
                node[segment] = empty
            node = node[segment]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append({})
    node[last] = value


# Adding and removing rows of a dynamic list without JavaScript.

_ACTION = re.compile(r"(add|remove):(.+?)(?::(\d+))?")
# Where the page should put focus after a row is added or removed.
FOCUS_KEY = ":focus"


def list_action(action: str) -> tuple[str, str, int | None] | None:
    """("add" | "remove", list name, row index) of a page's list button, or None."""
    match = _ACTION.fullmatch(action)
    if not match:
        return None
    kind, name, index = match[1], match[2], match[3]
    if kind == "remove" and index is None:
        return None
    return kind, name, int(index) if index is not None else None


def apply_list_action(
    schema: Mapping[str, Any], values: Mapping[str, Any], action: str
) -> dict[str, Any]:
    """The page's values with a row added to, or removed from, the list the action names.

    Everything typed stays: rows after a removed one move up, keeping their values. An
    action for a list the form does not have, or that may not change, changes nothing.
    """
    parsed = list_action(action)
    updated = {k: v for k, v in values.items() if k != FOCUS_KEY}
    if parsed is None:
        return updated
    kind, name, index = parsed
    tree = instances(schema, rows_in_values(values))
    target = next(
        (i for i in walk(tree) if i.repeating and i.name == name),
        None,
    )
    if target is None or target.component.get("allowAddRemove") is False:
        return updated
    count = len(target.rows)
    if kind == "add":
        if count >= MAX_ROWS:
            return updated
        updated[name + ROWS_SUFFIX] = str(count + 1)
        row = instances(schema, _with_rows(rows_in_values(values), name, count + 1))
        new = next(i for i in walk(row) if i.repeating and i.name == name).rows[count]
        updated.update(_defaults(new))
        first = next((i for i in walk(new) if i.type in INPUT_TYPES), None)
        updated[FOCUS_KEY] = first.name if first is not None else f"add:{name}"
        return updated
    if index is None or not 0 <= index < count:
        return updated
    moved: dict[str, Any] = {}
    for key, value in updated.items():
        position = _row_of(key, name)
        if position is None:
            moved[key] = value
        elif position > index:
            moved[f"{name}[{position - 1}]{key[len(f'{name}[{position}]') :]}"] = value
        elif position < index:
            moved[key] = value
    moved[name + ROWS_SUFFIX] = str(count - 1)
    moved[FOCUS_KEY] = f"add:{name}"
    return moved


def _with_rows(count: RowCount, name: str, rows: int) -> RowCount:
    def sized(component: Mapping[str, Any], path: Path) -> int:
        return rows if html_name(path) == name else count(component, path)

    return sized


def _row_of(key: str, name: str) -> int | None:
    prefix = name + "["
    if not key.startswith(prefix):
        return None
    index, bracket, _rest = key[len(prefix) :].partition("]")
    return int(index) if bracket and index.isdigit() else None


def _defaults(row: list[Instance]) -> dict[str, Any]:
    """A new row's fields as the page shows them first: their default values."""
    defaults: dict[str, Any] = {}
    for instance in walk(row):
        if instance.type in INPUT_TYPES and "defaultValue" in instance.component:
            shown = page_value(instance.component, instance.component["defaultValue"], None)
            if shown is not None:
                defaults[instance.name] = shown[0]
                if shown[1]:
                    defaults[instance.name + TIME_SUFFIX] = shown[1]
    return defaults


def submitted_fields(schema: Mapping[str, Any], submitted: Mapping[str, Any]) -> dict[str, Any]:
    """Only the page fields that belong to the form (for keeping a draft as typed)."""
    tree = instances(schema, rows_in_values(submitted))
    names: set[str] = set()
    for instance in walk(tree):
        if instance.type in INPUT_TYPES:
            names.update({instance.name, instance.name + TIME_SUFFIX})
        elif instance.repeating:
            names.add(instance.name + ROWS_SUFFIX)
    return {key: value for key, value in submitted.items() if key in names}
