"""The appointment forms' fields, as the form macros (templates/macros/fields.html.j2) draw
them: each with its label, hint and error tied to it, required ones marked."""

from __future__ import annotations

from collections.abc import Mapping

from panel_core.appointments.service import (
    DURATIONS,
    KIND_LABELS,
    MAX_MESSAGE,
    MAX_PREFERRED,
    AppointmentForm,
    MoveForm,
)
from panel_core.forms.view import FieldNode, OptionNode
from panel_core.i18n import gettext

_REQUIRED = {"validate": {"required": True}}


def _field(
    kind: str,
    key: str,
    label: str,
    errors: Mapping[str, str],
    *,
    value: str = "",
    hint: str = "",
    required: bool = False,
    input_type: str = "text",
    options: list[OptionNode] | None = None,
    kind_type: str = "",
) -> FieldNode:
    return FieldNode(
        kind=kind,
        type=kind_type or kind,
        key=key,
        label=label,
        component=_REQUIRED if required else {},
        description=hint,
        error=errors.get(key),
        value=value,
        input_type=input_type,
        options=options or [],
    )


def _options(key: str, choices: list[tuple[str, str]], chosen: str) -> list[OptionNode]:
    # The first option carries the field's own id: the error summary links there.
    return [
        OptionNode(
            token=token,
            label=label,
            id=f"field-{key}" if n == 0 else f"field-{key}-{n}",
            selected=token == chosen,
        )
        for n, (token, label) in enumerate(choices)
    ]


def appointment_fields(
    form: AppointmentForm,
    errors: Mapping[str, str],
    *,
    participants: list[tuple[str, str]] | None,
    holders: Mapping[str, str] | None,
    own_number: str = "",
    moving: bool = False,
) -> list[FieldNode]:
    """The booking form (``participants`` given) or the form that moves an appointment.
    ``holders`` is offered to team managers only."""
    fields = []
    if participants is not None:
        fields.append(
            _field(
                "select",
                "participant",
                gettext("With"),
                errors,
                required=True,
                options=_options("participant", participants, form.participant),
            )
        )
        fields.append(
            _field(
                "choices",
                "kind",
                gettext("Kind of appointment"),
                errors,
                required=True,
                kind_type="radio",
                options=_options(
                    "kind",
                    [(kind.value, gettext(label)) for kind, label in KIND_LABELS.items()],
                    form.kind,
                ),
            )
        )
    fields += [
        _field(
            "datetime",
            "date",
            gettext("Date"),
            errors,
            value=form.date,
            required=True,
            input_type="date",
        ),
        _field(
            "datetime",
            "time",
            gettext("Time"),
            errors,
            value=form.time,
            required=True,
            input_type="time",
            hint=gettext("Polish time (Europe/Warsaw), for example 14:30."),
        ),
        _field(
            "select",
            "duration",
            gettext("How long"),
            errors,
            required=True,
            options=_options(
                "duration",
                [(str(m), gettext("%(minutes)s min", minutes=m)) for m in DURATIONS],
                form.duration,
            ),
        ),
    ]
    if not moving or form.kind == "branch":
        fields.append(
            _field(
                "input",
                "place",
                gettext("Branch address"),
                errors,
                value=form.place,
                kind_type="textfield",
                hint=gettext("For a branch visit: where the participant comes."),
            )
        )
    if not moving or form.kind == "phone":
        hint = gettext("For a phone call: the number the bank calls.")
        if own_number:
            hint += " " + gettext(
                "Leave it empty to call the participant's own number (%(phone)s).",
                phone=own_number,
            )
        fields.append(
            _field(
                "input",
                "phone",
                gettext("Phone number to call"),
                errors,
                value=form.phone,
                kind_type="textfield",
                input_type="tel",
                hint=hint,
            )
        )
    fields.append(
        _field(
            "input",
            "subject",
            gettext("Subject"),
            errors,
            value=form.subject,
            required=True,
            kind_type="textfield",
            hint=gettext("The participant reads it in the panel and their calendar."),
        )
    )
    if holders is not None:
        fields.append(
            _field(
                "select",
                "holder",
                gettext("Held by"),
                errors,
                required=True,
                options=_options(
                    "holder", sorted(holders.items(), key=lambda h: h[1]), form.holder
                ),
                hint=gettext("Whose calendar it goes in: yours or someone's of your team."),
            )
        )
    return fields


def move_fields(form: MoveForm, errors: Mapping[str, str]) -> list[FieldNode]:
    """The participant's request to move an appointment."""
    return [
        _field(
            "textarea",
            "message",
            gettext("Why does the time not suit you?"),
            errors,
            value=form.message,
            required=True,
            hint=gettext("At most %(max)s characters.", max=MAX_MESSAGE),
        ),
        _field(
            "textarea",
            "preferred",
            gettext("When could you come instead? (optional)"),
            errors,
            value=form.preferred,
            hint=gettext(
                "For example: weekdays after 16:00, or Friday morning. At most %(max)s characters.",
                max=MAX_PREFERRED,
            ),
        ),
    ]
