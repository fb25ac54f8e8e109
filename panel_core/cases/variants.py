"""Form variants: other views of one user task, per channel and per staff group.

The form a model links to a user task (``zeebe:formDefinition formId``) is the task's own: the
participant fills it in the panel, a member of staff in the dashboard, as Camunda Tasklist
would show it. A case type's descriptor may give the same step other forms where the bank's
staff work on it (``formVariants``, by element id):

* ``"mode": "assisted"``: a participant's task completed by a member of staff with the
  participant on the phone (``panel_core/tasks/assisted.py``), e.g. a shorter questionnaire
  worded for the call centre;
* ``"mode": "staff"``: a bank task completed in the dashboard.

``groups`` narrows a variant to members of those groups of the identity provider (as its
``groups`` claim names them); without it, everyone working in that mode gets it. The first
variant that fits is used, the task's own form when none does.

A variant is the same step with the same effect: it sends the process exactly the fields the
task's own form sends (``sendToProcess``), and asks only questions of the task's own form, of
the same kind, so that every answer reads the same on the case page and in the signed
application. ``customer-panel deploy`` refuses a variant that does not, naming the element and
the forms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from panel_core import constants as c
from panel_core.forms.schema import FILE_TYPES, input_components
from panel_core.forms.submission import sent_names

# Where a variant is used: a participant's task on the phone, or a bank task.
Mode = Literal["assisted", "staff"]
ASSISTED: Mode = "assisted"
STAFF: Mode = "staff"

# A group as the identity provider's ``groups`` claim names it: no path ("/call-centre-agents"
# is the admin console's way of writing it), no spaces.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class FormVariant(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    # The form's id (its top-level "id"), a form of the case type's forms/ folder.
    form: str
    mode: Mode
    # Groups whose members get this variant; everyone working in the mode when empty.
    groups: tuple[str, ...] = ()

    def fits(self, mode: str, groups: frozenset[str]) -> bool:
        return self.mode == mode and (not self.groups or bool(groups & set(self.groups)))


class AssistedRules(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """What staff may do for a participant in assisted mode (``assisted``)."""

    # Whether a participant may give consents through a member of staff on the phone. By
    # default a consent is given only by the participant, in the panel, where they read it.
    consents: bool = False


def choose(
    variants: Sequence[FormVariant], mode: str, groups: frozenset[str]
) -> FormVariant | None:
    """The first variant of a task that fits the mode and the person's groups, if any."""
    return next((variant for variant in variants if variant.fits(mode, groups)), None)


@dataclass(frozen=True, slots=True)
class ModelTask:
    """A user task as the model has it: its own form, and whether it is a participant's."""

    form_id: str
    participant: bool


def _marked(component: Mapping[str, Any], name: str) -> bool:
    properties = component.get("properties")
    if not isinstance(properties, Mapping):
        return False
    value = str(properties.get(name, "")).strip()
    return value.lower() == "true" if name == c.FORM_PROPERTY_CONSENT else bool(value)


def consent_keys(schema: Mapping[str, Any]) -> list[str]:
    return [
        str(component["key"])
        for component in input_components(schema)
        if component.get("type") == "checkbox" and _marked(component, c.FORM_PROPERTY_CONSENT)
    ]


def signature_keys(schema: Mapping[str, Any]) -> list[str]:
    return [
        str(component["key"])
        for component in input_components(schema)
        if component.get("type") == "checkbox" and _marked(component, c.FORM_PROPERTY_SIGNATURE)
    ]


def file_keys(schema: Mapping[str, Any]) -> list[str]:
    return [
        str(component["key"])
        for component in input_components(schema)
        if component.get("type") in FILE_TYPES
    ]


def _kinds(schema: Mapping[str, Any]) -> dict[str, str]:
    return {str(c_["key"]): str(c_.get("type")) for c_ in input_components(schema)}


def _names(names: frozenset[str]) -> str:
    return ", ".join(repr(name) for name in sorted(names)) or "nothing"


def variant_problems(
    variants: Mapping[str, Sequence[FormVariant]],
    assisted: AssistedRules,
    tasks: Mapping[str, ModelTask],
    forms: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Why the descriptor's ``formVariants`` would not be the same step, each named.

    ``tasks`` are the model's user tasks by element id, ``forms`` the forms deployed with it
    by form id.
    """
    problems: list[str] = []
    for element, entries in sorted(variants.items()):
        where = f"formVariants.{element}"
        task = tasks.get(element)
        if task is None:
            problems.append(f"{where}: {element!r} is not a user task of the model")
            continue
        if not entries:
            problems.append(f"{where}: no variants (leave the task out instead)")
        own = forms.get(task.form_id)
        for index, variant in enumerate(entries):
            at = f"{where}[{index}]"
            problems.extend(
                f"{at}: group {group!r} is not a group name as the identity provider's "
                "'groups' claim gives it (letters, digits, '.', '_', '-'; no path, no spaces)"
                for group in variant.groups
                if not GROUP_NAME.fullmatch(group)
            )
            if variant.mode == ASSISTED and not task.participant:
                problems.append(
                    f"{at}: mode 'assisted' is for a participant's task, and {element!r} "
                    "is the bank's (use mode 'staff')"
                )
            if variant.mode == STAFF and task.participant:
                problems.append(
                    f"{at}: mode 'staff' is for a bank task, and {element!r} is a "
                    "participant's (use mode 'assisted')"
                )
            earlier = next(
                (
                    before
                    for before in entries[:index]
                    if before.mode == variant.mode
                    and (
                        not before.groups
                        or (bool(variant.groups) and set(variant.groups) <= set(before.groups))
                    )
                ),
                None,
            )
            if earlier is not None:
                problems.append(
                    f"{at}: never used: the earlier variant {earlier.form!r} fits everyone "
                    "this one is for"
                )
            schema = forms.get(variant.form)
            if schema is None:
                problems.append(
                    f"{at}: form {variant.form!r} is not one of the case type's forms "
                    "(forms/<form-id>.form, deployed with the model)"
                )
                continue
            if own is None:
                # The model's own problem (a task without its form) is reported for the model.
                continue
            problems.extend(_same_step(element, task.form_id, own, variant.form, schema, at))
            if variant.mode == ASSISTED:
                problems.extend(_assisted_problems(variant.form, schema, assisted, at))
    return problems


def _same_step(
    element: str,
    own_id: str,
    own: Mapping[str, Any],
    form_id: str,
    schema: Mapping[str, Any],
    at: str,
) -> list[str]:
    problems = []
    ours, theirs = sent_names(own), sent_names(schema)
    if ours != theirs:
        problems.append(
            f"{at}: user task {element!r}: form {form_id!r} sends {_names(theirs)} to the "
            f"process, but the task's own form {own_id!r} sends {_names(ours)} "
            "(sendToProcess): a variant must complete the step with the same effect"
        )
    own_kinds, kinds = _kinds(own), _kinds(schema)
    for key, kind in sorted(kinds.items()):
        if key not in own_kinds:
            problems.append(
                f"{at}: user task {element!r}: form {form_id!r} asks {key!r}, which the "
                f"task's own form {own_id!r} does not: its answer would be shown nowhere"
            )
        elif own_kinds[key] != kind:
            problems.append(
                f"{at}: user task {element!r}: {key!r} is a {kind} in form {form_id!r} but a "
                f"{own_kinds[key]} in the task's own form {own_id!r}"
            )
    return problems


def _assisted_problems(
    form_id: str, schema: Mapping[str, Any], assisted: AssistedRules, at: str
) -> list[str]:
    problems = []
    if signature_keys(schema):
        problems.append(
            f"{at}: form {form_id!r} has a signature, and a signature is never given in "
            "assisted mode (the participant signs in the panel)"
        )
    if consent_keys(schema) and not assisted.consents:
        problems.append(
            f"{at}: form {form_id!r} asks for consents, which the case type does not let "
            'staff take in assisted mode (set "assisted": {"consents": true} to allow it)'
        )
    if file_keys(schema):
        problems.append(
            f"{at}: form {form_id!r} has a file picker; in assisted mode documents cannot "
            "be sent (the participant sends them in the panel)"
        )
    return problems
