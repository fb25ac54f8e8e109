"""Every form-js component type and rule, read and rendered on the server."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from devtools.form_preview import render_form_page
from panel_core.clock import FakeClock
from panel_core.forms import (
    FOCUS_KEY,
    MAX_ROWS,
    ContentNode,
    FieldNode,
    ListNode,
    _convert,
    apply_list_action,
    form_today,
    hidden_keys,
    hidden_now,
    input_components,
    localise,
    page_fields,
    process_variables,
    read_submission,
    safe_image_source,
    sanitise_html,
    submitted_fields,
    text_html,
    variable_names,
)
from panel_core.forms import texts as form_texts
from panel_core.forms.checks import check_form
from panel_core.forms.markup import spacer_size
from panel_core.i18n import use_locale
from panel_core.tasks.consents import consent_texts

HERE = Path(__file__).resolve().parent
EVERY = HERE.parent / "docs" / "forms" / "every-component.form"
SHIPPED = sorted((HERE.parent / "bpmn").glob("*/forms/*.form"))
TODAY = date(2026, 11, 22)  # winter: Warsaw is UTC+1
SUMMER = date(2026, 7, 1)  # summer: UTC+2
VARIABLES: dict[str, Any] = {
    "branches": [{"label": "Warszawa", "value": "waw"}, {"label": "Kraków", "value": "krk"}],
    "currencies": ["PLN", "EUR"],
    "history": [{"date": "2026-10-01", "amount": 120}, {"date": "2026-11-01", "amount": 80}],
    "caseNumber": "KR-2026-00000001",
    "isVip": False,
}


def every_form() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(EVERY.read_text())
    return schema


def form(*components: dict[str, Any]) -> dict[str, Any]:
    return {"id": "test-form", "components": list(components)}


def read(
    schema: Mapping[str, Any],
    submitted: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    today: date | None = TODAY,
) -> tuple[dict[str, Any], dict[str, str]]:
    return read_submission(schema, submitted, variables, today)


def one(component: dict[str, Any], raw: Any, **variables: Any) -> tuple[Any, str | None]:
    """(answer, error) of a single-field form."""
    values, errors = read(form(component), {component["key"]: raw}, variables)
    return values.get(component["key"]), errors.get(component["key"])


# Text fields and text areas.


def test_text_is_trimmed_and_a_one_line_field_has_no_line_breaks() -> None:
    assert one({"type": "textfield", "key": "a"}, "  two\nlines\t ") == ("two lines", None)
    assert one({"type": "textarea", "key": "a"}, " two\r\nlines ") == ("two\nlines", None)
    assert one({"type": "textfield", "key": "a"}, "   ") == (None, None)


@pytest.mark.parametrize(
    ("rules", "raw", "fine"),
    [
        ({"required": True}, "", False),
        ({"minLength": 3}, "ab", False),
        ({"minLength": 3}, " abc ", True),
        ({"maxLength": 3}, "abcd", False),
        ({"validationType": "email"}, "jan.kowalski@example.com", True),
        ({"validationType": "email"}, "jan@", False),
        ({"validationType": "email"}, "jan kowalski@example.com", False),
        ({"validationType": "phone"}, "+4930664040900", True),
        ({"validationType": "phone"}, "0048601234567", True),
        ({"validationType": "phone"}, "+48 601 234 567", False),
        ({"validationType": "phone"}, "601234567", False),
        ({"pattern": r"^\d{2}-\d{3}$"}, "00-950", True),
        ({"pattern": r"^\d{2}-\d{3}$"}, "00-9500", False),
        # As in form-js (RegExp.test), a pattern without anchors may match inside the text.
        ({"pattern": r"\d{3}"}, "abc123def", True),
        # JavaScript's \d is ASCII only.
        ({"pattern": r"^\d+$"}, "١٢٣", False),
    ],
)
def test_text_rules(rules: dict[str, Any], raw: str, fine: bool) -> None:
    _value, error = one({"type": "textfield", "key": "a", "label": "A", "validate": rules}, raw)
    assert (error is None) is fine, error


def test_the_forms_own_pattern_message_is_shown() -> None:
    component = {
        "type": "textfield",
        "key": "postcode",
        "validate": {"pattern": r"^\d{2}-\d{3}$", "patternErrorMessage": "Wpisz kod 00-000."},
    }
    assert one(component, "12345") == (None, "Wpisz kod 00-000.")


def test_length_limits_may_be_feel_over_the_variables() -> None:
    component = {"type": "textfield", "key": "a", "validate": {"maxLength": "=limit"}}
    assert one(component, "abcd", limit=3)[1]
    assert one(component, "abc", limit=3) == ("abc", None)


def test_messages_name_the_field_in_the_participants_language() -> None:
    component = {
        "type": "textfield",
        "key": "name",
        "label": "Imię",
        "validate": {"required": True},
    }
    with use_locale("en"):
        assert one(component, "")[1] == "Enter “Imię”."
    assert "Imię" in str(one(component, "")[1])


# Numbers.


@pytest.mark.parametrize(
    ("component", "raw", "expected"),
    [
        ({}, "8500,50", 8500.5),
        ({}, "8 500", 8500),
        ({}, "-3", -3),
        ({"decimalDigits": 2}, "1.50", 1.5),
        ({"serializeToString": True}, "12,50", "12.50"),
        ({"serializeToString": True}, "7", "7"),
        ({"increment": 0.25}, "1.75", 1.75),
        ({"validate": {"min": 0, "max": 10}}, "10", 10),
    ],
)
def test_numbers_are_converted(component: dict[str, Any], raw: str, expected: Any) -> None:
    value, error = one({"type": "number", "key": "n", **component}, raw)
    assert error is None
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("component", "raw", "words"),
    [
        ({}, "lots", "number"),
        ({}, "NaN", "number"),
        ({}, "1e3", "number"),
        ({"decimalDigits": 0}, "2.5", "whole"),
        ({"decimalDigits": 2}, "1.234", "2 decimal places"),
        ({"decimalDigits": 1}, "1.25", "1 decimal place"),
        ({"increment": "100"}, "5050", "5000 and 5100"),
        ({"increment": "0.5"}, "-0.2", "-0.5 and 0"),
        ({"validate": {"min": 1}}, "0", "at least 1"),
        ({"validate": {"max": "=top"}}, "11", "at most 10"),
    ],
)
def test_number_rules(component: dict[str, Any], raw: str, words: str) -> None:
    with use_locale("en"):
        value, error = one({"type": "number", "key": "n", "label": "N", **component}, raw, top=10)
    assert error is not None and words in error, error
    assert value is None  # nothing wrong reaches the answers


# Choices.


def test_a_checkbox_is_true_only_when_ticked() -> None:
    box = {"type": "checkbox", "key": "ok", "label": "OK"}
    assert one(box, "true") == (True, None)
    assert one(box, None) == (False, None)
    assert one({**box, "validate": {"required": True}}, None)[1]


STATIC = [{"label": "One", "value": "one"}, {"label": "Two", "value": "two"}]


@pytest.mark.parametrize("kind", ["select", "radio"])
def test_a_single_choice_must_be_one_of_the_options(kind: str) -> None:
    component = {"type": kind, "key": "c", "label": "C", "values": STATIC}
    assert one(component, "two") == ("two", None)
    assert one(component, "three")[1]
    assert one(component, "") == (None, None)
    assert one({**component, "validate": {"required": True}}, "")[1]


@pytest.mark.parametrize("kind", ["checklist", "taglist"])
def test_a_multiple_choice_is_a_list_of_option_values(kind: str) -> None:
    component = {"type": kind, "key": "c", "label": "C", "values": STATIC}
    assert one(component, ["one", "two"]) == (["one", "two"], None)
    assert one(component, "two") == (["two"], None)
    assert one(component, None) == ([], None)
    assert one(component, ["one", "four"])[1]
    assert one({**component, "validate": {"required": True}}, None)[1]


def test_option_values_keep_their_types() -> None:
    component = {"type": "checklist", "key": "c", "values": [{"label": "1", "value": 1}, True]}
    assert one(component, ["1", "true"]) == ([1, True], None)


def test_options_come_from_a_variable_as_objects_or_plain_strings() -> None:
    select = {"type": "select", "key": "branch", "valuesKey": "branches"}
    assert one(select, "krk", branches=VARIABLES["branches"]) == ("krk", None)
    assert one(select, "gda", branches=VARIABLES["branches"])[1]
    assert one(select, "EUR", branches=["PLN", "EUR"]) == ("EUR", None)
    assert one(select, "EUR")[1]  # no such variable: no options


def test_options_come_from_a_feel_expression_on_the_variables() -> None:
    radio = {
        "type": "radio",
        "key": "c",
        "valuesExpression": "=for c in codes return upper case(c)",
    }
    assert one(radio, "PLN", codes=["pln", "eur"]) == ("PLN", None)
    assert one(radio, "pln", codes=["pln", "eur"])[1]


# Dates and times.


def date_field(**extra: Any) -> dict[str, Any]:
    return {"type": "datetime", "key": "d", "dateLabel": "Kiedy", "subtype": "date", **extra}


def test_dates_and_times_are_iso_strings_as_form_js_sends_them() -> None:
    assert one(date_field(), "2026-12-01") == ("2026-12-01", None)
    assert one(date_field(subtype="time"), "9:05") == ("09:05", None)
    values, errors = read(
        form(date_field(subtype="datetime")), {"d": "2026-12-01", "d-time": "10:30"}
    )
    assert values == {"d": "2026-12-01T10:30"} and errors == {}
    # Through the API, a date and time comes whole.
    assert one(date_field(subtype="datetime"), "2026-12-01T10:30") == ("2026-12-01T10:30", None)


@pytest.mark.parametrize(
    ("extra", "raw"),
    [
        ({}, "2026-02-30"),
        ({}, "01.12.2026"),
        ({"subtype": "time"}, "25:00"),
        ({"subtype": "time"}, "noon"),
        ({"subtype": "datetime"}, "2026-12-01"),
        ({"disallowPassedDates": True}, "2026-11-21"),
    ],
)
def test_wrong_dates_and_times_are_refused(extra: dict[str, Any], raw: str) -> None:
    assert one(date_field(**extra), raw)[1]


def test_passed_dates_are_judged_against_the_given_day_not_the_clock() -> None:
    field = date_field(disallowPassedDates=True)
    assert one(field, "2026-11-22") == ("2026-11-22", None)
    _values, errors = read(form(field), {"d": "2026-11-22"}, today=date(2026, 11, 23))
    assert list(errors) == ["d"]
    with pytest.raises(ValueError, match="today"):
        read(form(field), {"d": "2026-11-22"}, today=None)


@pytest.mark.parametrize(
    ("style", "today", "expected"),
    [
        ("utc_offset", TODAY, "09:05+01:00"),
        ("utc_offset", SUMMER, "09:05+02:00"),
        ("utc_normalized", TODAY, "08:05Z"),
        ("no_timezone", TODAY, "09:05"),
    ],
)
def test_times_follow_the_fields_serializing_format(style: str, today: date, expected: str) -> None:
    field = date_field(subtype="time", timeSerializingFormat=style)
    values, errors = read(form(field), {"d": "09:05"}, today=today)
    assert values == {"d": expected} and errors == {}


def test_date_times_in_utc_move_to_the_right_day() -> None:
    field = date_field(subtype="datetime", timeSerializingFormat="utc_normalized")
    values, _ = read(form(field), {"d": "2026-12-01", "d-time": "00:30"})
    assert values == {"d": "2026-11-30T23:30Z"}
    field = date_field(subtype="datetime", timeSerializingFormat="utc_offset")
    values, _ = read(form(field), {"d": "2026-07-01", "d-time": "10:00"})
    assert values == {"d": "2026-07-01T10:00+02:00"}


# What never reaches the process.


def test_keys_outside_the_form_readonly_disabled_and_file_fields_are_dropped() -> None:
    schema = form(
        {"type": "textfield", "key": "name"},
        {"type": "textfield", "key": "locked", "readonly": True, "validate": {"required": True}},
        {"type": "number", "key": "off", "disabled": True},
        {"type": "textfield", "key": "maybe", "readonly": "=frozen"},
        {"type": "filepicker", "key": "proof", "validate": {"required": True}},
        {"type": "button", "action": "submit", "label": "Send"},
    )
    sent = {"name": "Jan", "locked": "x", "off": "5", "maybe": "y", "proof": "id", "role": "admin"}
    values, errors = read(schema, sent, {"frozen": True})
    assert values == {"name": "Jan"} and errors == {}
    values, _ = read(schema, sent, {"frozen": False})
    assert values == {"name": "Jan", "maybe": "y"}


def test_file_pickers_are_inputs_answered_by_the_upload_code() -> None:
    picker = {"type": "filepicker", "key": "proof", "validate": {"required": True}}
    assert [c["key"] for c in input_components(form(picker))] == ["proof"]
    assert _convert(picker, "anything") == (None, None)


def test_expression_fields_are_computed_on_the_server() -> None:
    schema = form(
        {"type": "number", "key": "amount"},
        {"type": "expression", "key": "monthly", "expression": "=amount / 4"},
        {"type": "expression", "key": "label", "expression": '="Case " + caseNumber'},
        {"type": "expression", "key": "broken", "expression": "=1 + true"},
    )
    values, errors = read(schema, {"amount": "100", "monthly": "1"}, {"caseNumber": "7"})
    assert values == {"amount": 100, "monthly": 25, "label": "Case 7"} and errors == {}


# Groups, paths and conditions.


def test_a_group_with_a_path_nests_its_childrens_answers() -> None:
    schema = form(
        {
            "type": "group",
            "path": "address",
            "components": [
                {"type": "textfield", "key": "street", "validate": {"required": True}},
                {"type": "textfield", "key": "geo.city"},
            ],
        },
        {"type": "group", "components": [{"type": "textfield", "key": "flat"}]},
    )
    values, errors = read(schema, {"address.street": "Prosta", "address.geo.city": "Łódź"})
    assert values == {"address": {"street": "Prosta", "geo": {"city": "Łódź"}}}
    assert errors == {}
    # From the API, as form-js data.
    values, _ = read(schema, {"address": {"street": "Prosta"}, "flat": "3"})
    assert values == {"address": {"street": "Prosta"}, "flat": "3"}
    _, errors = read(schema, {})
    assert list(errors) == ["address.street"]


def test_hiding_a_group_hides_and_strips_everything_inside() -> None:
    schema = form(
        {"type": "checkbox", "key": "company"},
        {
            "type": "group",
            "path": "firm",
            "conditional": {"hide": "=company != true"},
            "components": [
                {"type": "textfield", "key": "name", "validate": {"required": True}},
                {"type": "group", "components": [{"type": "textfield", "key": "nip"}]},
            ],
        },
    )
    values, errors = read(schema, {"firm.name": "", "firm.nip": "123"})
    assert values == {"company": False} and errors == {}
    values, errors = read(schema, {"company": "true", "firm.nip": "123"})
    assert list(errors) == ["firm.name"]
    assert hidden_keys(schema, {"company": False}) == {"firm.name", "firm.nip"}


def test_conditions_see_the_variables_and_the_answers() -> None:
    schema = form(
        {"type": "text", "text": "VIP", "conditional": {"hide": "=not(vip)"}},
        {"type": "textfield", "key": "extra", "conditional": {"hide": "=not(vip)"}},
    )
    assert read(schema, {"extra": "x"}, {"vip": False})[0] == {}
    assert read(schema, {"extra": "x"}, {"vip": True})[0] == {"extra": "x"}


# Dynamic lists.

OWNERS: dict[str, Any] = {
    "type": "dynamiclist",
    "label": "Owners",
    "path": "owners",
    "isRepeating": True,
    "defaultRepetitions": 2,
    "allowAddRemove": True,
    "components": [
        {"type": "textfield", "key": "name", "label": "Name", "validate": {"required": True}},
        {"type": "number", "key": "share", "label": "Share", "defaultValue": 50},
        {
            "type": "textfield",
            "key": "why",
            "label": "Why",
            "validate": {"required": True},
            "conditional": {"hide": "=this.share = null or this.share >= 10"},
        },
        {"type": "expression", "key": "number", "expression": "=i[1]"},
    ],
}


def test_a_dynamic_list_answers_a_list_of_objects() -> None:
    sent = {
        "owners:rows": "2",
        "owners[0].name": "Ala",
        "owners[0].share": "5",
        "owners[0].why": "small",
        "owners[1].name": "Ola",
        "owners[1].share": "95",
        "owners[1].why": "dropped: hidden in this row",
    }
    values, errors = read(form(OWNERS), sent)
    assert errors == {}
    assert values == {
        "owners": [
            {"name": "Ala", "share": 5, "why": "small", "number": 1},
            {"name": "Ola", "share": 95, "number": 2},
        ]
    }


def test_row_errors_are_keyed_by_row() -> None:
    sent = {"owners:rows": "3", "owners[1].name": "Ola", "owners[2].share": "1"}
    _, errors = read(form(OWNERS), sent)
    assert list(errors) == ["owners[0].name", "owners[2].name", "owners[2].why"]


def test_rows_come_from_the_count_the_indexes_or_the_default() -> None:
    assert len(read(form(OWNERS), {"owners:rows": "0"})[0]["owners"]) == 0
    assert len(read(form(OWNERS), {"owners[3].name": "Z"})[0]["owners"]) == 4
    assert len(read(form(OWNERS), {})[0]["owners"]) == 2
    assert len(read(form(OWNERS), {"owners:rows": "9999"})[0]["owners"]) == MAX_ROWS
    api = {"owners": [{"name": "Ala", "share": 20}]}
    assert read(form(OWNERS), api)[0] == {"owners": [{"name": "Ala", "share": 20, "number": 1}]}


def test_a_hidden_dynamic_list_sends_nothing() -> None:
    schema = form({**OWNERS, "conditional": {"hide": "=true"}})
    assert read(schema, {"owners:rows": "1"}) == ({}, {})


def test_adding_a_row_keeps_everything_typed_and_fills_the_new_rows_defaults() -> None:
    sent = {"owners:rows": "1", "owners[0].name": "Ala", "other": "kept"}
    added = apply_list_action(form(OWNERS), sent, "add:owners")
    assert added["owners:rows"] == "2"
    assert added["owners[0].name"] == "Ala" and added["other"] == "kept"
    assert added["owners[1].share"] == "50"
    assert added[FOCUS_KEY] == "owners[1].name"


def test_removing_a_row_moves_the_later_rows_up() -> None:
    sent = {
        "owners:rows": "3",
        "owners[0].name": "Ala",
        "owners[1].name": "Ola",
        "owners[2].name": "Ela",
        "owners[2].share": "7",
    }
    removed = apply_list_action(form(OWNERS), sent, "remove:owners:1")
    assert removed == {
        "owners:rows": "2",
        "owners[0].name": "Ala",
        "owners[1].name": "Ela",
        "owners[1].share": "7",
        FOCUS_KEY: "add:owners",
    }


@pytest.mark.parametrize(
    "action", ["add:nobody", "remove:owners:7", "remove:owners", "upload", "add:owners[0].name"]
)
def test_list_actions_for_no_such_list_or_row_change_nothing(action: str) -> None:
    sent = {"owners:rows": "1", "owners[0].name": "Ala"}
    assert apply_list_action(form(OWNERS), sent, action) == sent


def test_a_list_that_may_not_change_ignores_add_and_remove() -> None:
    fixed = form({**OWNERS, "allowAddRemove": False})
    sent = {"owners:rows": "1"}
    assert apply_list_action(fixed, sent, "add:owners") == sent
    nodes = page_fields(fixed, values={}, errors={})
    assert isinstance(nodes[0], ListNode) and not nodes[0].can_add and not nodes[0].can_remove


def test_nested_lists_keep_their_rows_apart() -> None:
    schema = form(
        {
            **OWNERS,
            "components": [
                {
                    "type": "dynamiclist",
                    "path": "kids",
                    "isRepeating": True,
                    "components": [{"type": "textfield", "key": "n"}],
                }
            ],
        }
    )
    sent = {
        "owners:rows": "2",
        "owners[0].kids:rows": "2",
        "owners[0].kids[0].n": "a",
        "owners[0].kids[1].n": "b",
        "owners[1].kids:rows": "0",
    }
    values, _ = read(schema, sent)
    assert values == {"owners": [{"kids": [{"n": "a"}, {"n": "b"}]}, {"kids": []}]}
    removed = apply_list_action(schema, sent, "remove:owners[0].kids:0")
    assert removed["owners[0].kids[0].n"] == "b" and "owners[0].kids[1].n" not in removed


def test_a_draft_keeps_only_the_forms_own_page_fields() -> None:
    sent = {"owners:rows": "1", "owners[0].name": "Ala", "owners[5x].name": "?", "evil": "1"}
    assert submitted_fields(form(OWNERS), sent) == {"owners:rows": "1", "owners[0].name": "Ala"}


def test_only_marked_fields_become_process_variables() -> None:
    schema = form(
        {"type": "textfield", "key": "a", "properties": {"sendToProcess": "true"}},
        {"type": "textfield", "key": "b"},
        {
            "type": "group",
            "path": "address",
            "properties": {"sendToProcess": "true"},
            "components": [{"type": "textfield", "key": "street"}],
        },
        {
            **OWNERS,
            "components": [
                {"type": "textfield", "key": "name", "properties": {"sendToProcess": "true"}},
                {"type": "number", "key": "share"},
            ],
        },
    )
    answers = {
        "a": "1",
        "b": "2",
        "address": {"street": "Prosta"},
        "owners": [{"name": "Ala", "share": 1}, {"name": "Ola", "share": 2}],
    }
    assert process_variables(schema, answers) == {
        "a": "1",
        "address": {"street": "Prosta"},
        "owners": [{"name": "Ala"}, {"name": "Ola"}],
    }


# The form check.


def problems_of(*components: dict[str, Any]) -> list[str]:
    return check_form({"id": "checked", "components": list(components)})


def test_the_test_form_and_the_shipped_forms_pass_the_check() -> None:
    assert check_form(every_form()) == []
    for path in SHIPPED:
        assert check_form(json.loads(path.read_text())) == [], path.name


@pytest.mark.parametrize(
    ("component", "words"),
    [
        ({"type": "iframe", "id": "Frame_1", "url": "https://example.com"}, "security policy"),
        ({"type": "documentPreview", "id": "Preview_1"}, "not shown"),
        ({"type": "signaturepad", "key": "sig"}, "not supported"),
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"(?P<y>\d)"}}, "pattern"),
        # Python's anchors are the letters A and Z in JavaScript.
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"\A\d+\Z"}}, "letter"),
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"\d*+"}}, "JavaScript"),
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"(?>\d)"}}, "atomic"),
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"(?<=\d+)x"}}, "lookbehind"),
        ({"type": "textfield", "key": "p", "validate": {"pattern": r"\u{1F600}"}}, "u flag"),
        ({"type": "textfield", "key": "d", "disabled": "=locked"}, "does not evaluate"),
        (
            {"type": "select", "key": "s", "values": [{"label": "=x", "value": "x"}]},
            "does not evaluate",
        ),
        ({"type": "select", "key": "s", "valuesExpression": "=today()"}, "today"),
        ({"type": "expression", "key": "e", "expression": "date(x)"}, "date"),
        ({"type": "textfield", "key": "l", "label": "=x instance of number"}, "instance of"),
        ({"type": "text", "id": "Text_1", "text": "Hello {{date(x)}}"}, "date"),
        ({"type": "text", "id": "Text_1", "text": "Hello {{name"}, "closing '}}'"),
        ({"type": "text", "id": "Text_1", "text": "{{#if a}}Hello"}, "not closed"),
        ({"type": "text", "id": "Text_1", "text": "Hello{{/if}}"}, "closes no"),
        ({"type": "textfield", "key": "l", "label": "Hello {{name"}, "closing '}}'"),
        ({"type": "textfield", "key": "l", "description": "{{1 +}}"}, "description"),
        (
            {
                "type": "number",
                "key": "n",
                "appearance": {"suffixAdorner": "{{a in [1, 2] and b}}"},
            },
            "appearance.suffixAdorner",
        ),
        (
            {"type": "radio", "key": "r", "values": [{"label": "{{x}}", "value": "x"}]},
            "option labels",
        ),
        (
            {"type": "text", "id": "Text_1", "text": "![logo](https://example.com/logo.png)"},
            "content security policy",
        ),
        ({"type": "filepicker", "key": "f", "accept": ".docx,text/plain"}, "every upload"),
        ({"type": "filepicker", "key": "f", "accept": "{{types}}"}, "accept"),
        ({"type": "image", "id": "Image_1", "source": "http://example.com/a.png"}, "https"),
        ({"type": "button", "id": "Button_1", "action": "open"}, "action"),
        ({"type": "datetime", "key": "w", "subtype": "week"}, "subtype"),
    ],
)
def test_what_the_panel_cannot_show_or_judge_is_refused(
    component: dict[str, Any], words: str
) -> None:
    problems = problems_of(component)
    assert len(problems) == 1, problems
    name = component.get("key") or component.get("id")
    assert "'checked'" in problems[0] and f"'{name}'" in problems[0]
    assert words in problems[0]


def test_python_only_syntax_is_refused_when_the_form_is_checked() -> None:
    """JavaScript reads ``\\A`` and ``\\Z`` as the letters A and Z, where Python reads
    anchors; possessive quantifiers, atomic groups and ``(?P<…>)`` are errors in JS."""
    for pattern, words in [
        (r"\A\d+\Z", "letter"),
        (r"\d++", "nothing to repeat"),
        (r"(?>\d)", "atomic"),
        (r"(?P<year>\d{4})", "Python syntax"),
    ]:
        problems = check_form(
            {
                "id": "p",
                "components": [{"type": "textfield", "key": "a", "validate": {"pattern": pattern}}],
            }
        )
        assert len(problems) == 1 and words in problems[0], (pattern, problems)


def test_an_image_the_page_would_block_shows_its_words_and_is_refused() -> None:
    """form-js shows any image a text block's markdown names; the page's content security
    policy lets only inline data through, so the panel refuses the form at deployment and,
    for a source that comes from a variable, shows the image's words instead."""
    schema = {
        "id": "md",
        "components": [
            {"type": "text", "id": "Text_1", "text": "![Our logo](https://example.com/l.png)"}
        ],
    }
    (problem,) = check_form(schema)
    assert "Text_1" in problem and "content security policy" in problem
    templated = {
        "id": "md",
        "components": [{"type": "text", "id": "Text_1", "text": "![Our logo]({{logo}})"}],
    }
    assert check_form(templated) == []
    (node,) = page_fields(
        templated, values={}, errors={}, variables={"logo": "https://example.com/l.png"}
    )
    assert isinstance(node, ContentNode)
    assert node.html == "<p>Our logo</p>"


@pytest.mark.parametrize(
    "container",
    [
        {"type": "group", "path": "applicant"},
        {"type": "dynamiclist", "path": "people", "isRepeating": True},
    ],
)
def test_a_file_picker_inside_a_path_is_refused(container: dict[str, Any]) -> None:
    """Documents are requested by the field's own key, so it cannot be one of many rows."""
    nested = {**container, "components": [{"type": "filepicker", "key": "proof", "id": "F_1"}]}
    assert ["a file picker cannot sit" in p for p in problems_of(nested)] == [True]
    assert problems_of({"type": "group", "components": nested["components"]}) == []


def test_the_same_answer_bound_twice_is_refused() -> None:
    problems = problems_of(
        {"type": "textfield", "key": "a"},
        {"type": "group", "components": [{"type": "number", "key": "a"}]},
        {"type": "group", "path": "g", "components": [{"type": "number", "key": "a"}]},
    )
    assert len(problems) == 1 and "binds the same answer" in problems[0]


def test_feel_the_panel_evaluates_is_accepted_and_custom_properties_are_plain_text() -> None:
    assert (
        problems_of(
            {
                "type": "number",
                "key": "n",
                "label": '="Amount in " + currency',
                "readonly": "=locked",
                "validate": {"min": "=minimum", "max": 10},
                "properties": {"label:en": '="Amount"', "note": "=not feel at all ("},
                "conditional": {"hide": "=hidden"},
            },
            {"type": "select", "key": "s", "valuesExpression": "options"},
            {"type": "expression", "key": "e", "expression": "=n * 2"},
            {"type": "table", "id": "T", "dataSource": "=rows", "columnsExpression": "=cols"},
        )
        == []
    )


# Translations.


def test_localise_applies_every_translated_text_and_leaves_the_rest() -> None:
    schema = every_form()
    original = json.dumps(schema, sort_keys=True)
    english = localise(schema, "en")
    assert json.dumps(schema, sort_keys=True) == original  # pure
    by_id = {c["id"]: c for c in _all(english["components"])}
    assert by_id["Field_fullName"]["label"] == "Full name"
    assert by_id["Field_fullName"]["description"] == "As on your ID card."
    assert by_id["Text_intro"]["text"].startswith("# Card application")
    assert "privacy policy" in by_id["Html_privacy"]["content"]
    assert by_id["Image_logo"]["alt"] == "Bank logo"
    assert by_id["Field_startDate"]["dateLabel"] == "Start date"
    assert by_id["Field_amount"]["appearance"]["suffixAdorner"] == "PLN"
    assert by_id["Field_postalCode"]["validate"]["patternErrorMessage"].startswith("Enter")
    assert [o["label"] for o in by_id["Field_channels"]["values"]] == ["SMS", "Email", "Letter"]
    assert [o["value"] for o in by_id["Field_channels"]["values"]] == ["sms", "email", "post"]
    assert [c["label"] for c in by_id["Table_history"]["columns"]] == ["Date", "Amount"]
    assert by_id["Field_street"]["label"] == "Street"  # inside a group
    assert by_id["Field_ownerName"]["label"] == "Name"  # inside a dynamic list
    assert by_id["Field_installments"]["appearance"]["prefixAdorner"] == "nr"  # untranslated
    assert localise(schema, "pl") == schema


def test_consents_read_the_same_in_both_translation_helpers() -> None:
    for path in SHIPPED:
        schema = json.loads(path.read_text())
        for locale in ("pl", "en"):
            assert consent_texts(localise(schema, locale)) == consent_texts(
                form_texts.localise(schema, locale)
            )


def _all(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for component in components:
        found.append(component)
        found.extend(_all(component.get("components", [])))
    return found


# Markup.


def test_markdown_is_escaped_and_knows_headings_emphasis_links_and_lists() -> None:
    assert (
        text_html("### Title\n\nA <script>alert(1)</script> & more")
        == "<h2>Title</h2><p>A &lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>"
    )
    assert text_html("# A\n## B\n#### C") == "<h2>A</h2><h3>B</h3><h5>C</h5>"
    assert text_html("**bold** and *it* and _it_ but snake_case_name") == (
        "<p><strong>bold</strong> and <em>it</em> and <em>it</em> but snake_case_name</p>"
    )
    assert text_html("- one\n- two\n  continued\n\n3. three\n4. four") == (
        '<ul><li>one</li><li>two continued</li></ul><ol start="3"><li>three</li><li>four</li></ol>'
    )
    assert text_html("[site](https://e.com/?a=1&b=2) [mail](mailto:x@e.com)") == (
        '<p><a href="https://e.com/?a=1&amp;b=2">site</a> <a href="mailto:x@e.com">mail</a></p>'
    )


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](data:text/html,<script>alert(1)</script>)",
        '[x](https://e.com/"onmouseover="alert(1))',
        "<img src=x onerror=alert(1)>",
        "**<b onclick=alert(1)>x</b>**",
    ],
)
def test_markdown_never_lets_markup_through(markdown: str) -> None:
    rendered = text_html(markdown)
    assert "<script" not in rendered and "<img" not in rendered and "<b " not in rendered
    assert not re.search(r'href="(?!https?:|mailto:)', rendered)
    assert not re.search(r"<[a-z]+ [^>]*(onmouseover|onclick|onerror)", rendered)


@pytest.mark.parametrize(
    "content",
    [
        "<script>alert(1)</script><p>ok</p>",
        '<img src="x" onerror="alert(1)"><p>ok</p>',
        '<p onclick="alert(1)" style="color:red">ok</p>',
        '<iframe src="https://e.com"></iframe><p>ok</p>',
        "<style>p{display:none}</style><p>ok</p>",
        '<a href="javascript:alert(1)">ok</a>',
        "<svg><script>alert(1)</script></svg><p>ok</p>",
        "<p>ok</p><!-- <script>alert(1)</script> -->",
    ],
)
def test_html_blocks_keep_only_harmless_markup(content: str) -> None:
    cleaned = sanitise_html(content)
    assert "ok" in cleaned
    for forbidden in ("<script", "onerror", "onclick", "style", "<iframe", "javascript:", "<img"):
        assert forbidden not in cleaned.lower(), cleaned


def test_html_blocks_keep_safe_links_and_tables() -> None:
    cleaned = sanitise_html(
        '<h1>T</h1><a href="https://e.com">w</a><a href="mailto:a@e.com">m</a><a href="/x">r</a>'
        '<table><tr><th scope="col">h</th></tr></table>'
    )
    assert "<h2>T</h2>" in cleaned
    assert 'href="https://e.com"' in cleaned and 'href="mailto:a@e.com"' in cleaned
    assert 'href="/x"' not in cleaned
    assert '<th scope="col">h</th>' in cleaned


@pytest.mark.parametrize(
    ("source", "safe"),
    [
        ("https://bank.example/logo.png", True),
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("data:image/webp;base64,UklGRg==", True),
        ("http://bank.example/logo.png", False),
        ("data:image/svg+xml;base64,PHN2Zz4=", False),
        ("javascript:alert(1)", False),
        ('https://e.com/a.png" onerror="alert(1)', False),
        ("//e.com/a.png", False),
    ],
)
def test_images_come_only_from_https_or_inline_raster_data(source: str, safe: bool) -> None:
    assert (safe_image_source(source) is not None) is safe


def test_spacers_take_the_nearest_height_step() -> None:
    assert [spacer_size(h) for h in (0, 30, 60, "100", "200px", "tall")] == [1, 2, 3, 4, 5, 3]


# The page's nodes.


def nodes_by_key(nodes: list[Any]) -> dict[str, FieldNode]:
    found: dict[str, FieldNode] = {}
    for node in nodes:
        if isinstance(node, FieldNode):
            found[node.key] = node
        for child in getattr(node, "children", []):
            found.update(nodes_by_key([child]))
        for row in getattr(node, "rows", []):
            if hasattr(row, "children"):
                found.update(nodes_by_key(row.children))
    return found


def test_a_fresh_page_shows_each_fields_variable_or_default() -> None:
    schema = form(
        {"type": "textfield", "key": "t", "defaultValue": "hello"},
        {"type": "textarea", "key": "ta", "defaultValue": "a\nb"},
        {"type": "number", "key": "n", "defaultValue": 2.5},
        {"type": "checkbox", "key": "c", "defaultValue": True},
        {"type": "radio", "key": "r", "values": STATIC, "defaultValue": "two"},
        {"type": "select", "key": "s", "values": STATIC, "defaultValue": "one"},
        {"type": "checklist", "key": "cl", "values": STATIC, "defaultValue": ["one", "two"]},
        {"type": "taglist", "key": "tl", "values": STATIC, "defaultValue": ["two"]},
        {"type": "datetime", "key": "d", "subtype": "date", "defaultValue": "2026-12-24"},
        {"type": "datetime", "key": "h", "subtype": "time", "defaultValue": "08:00+02:00"},
        {
            "type": "datetime",
            "key": "dt",
            "subtype": "datetime",
            "defaultValue": "2026-12-24T18:00",
        },
        {"type": "textfield", "key": "fromVariables", "defaultValue": "not this"},
    )
    fields = nodes_by_key(
        page_fields(schema, values={}, errors={}, variables={"fromVariables": "this"}, today=TODAY)
    )
    assert fields["t"].value == "hello" and fields["ta"].value == "a\nb"
    assert fields["n"].value == "2.5" and fields["c"].checked
    assert [o.selected for o in fields["r"].options] == [False, True]
    assert [o.selected for o in fields["s"].options] == [True, False]
    assert [o.selected for o in fields["cl"].options] == [True, True]
    assert [o.selected for o in fields["tl"].options] == [False, True]
    assert fields["d"].value == "2026-12-24"
    assert fields["h"].value == "07:00"  # 08:00 at UTC+2 is 07:00 in Warsaw in winter
    assert (fields["dt"].value, fields["dt"].time_value) == ("2026-12-24", "18:00")
    assert fields["fromVariables"].value == "this"


def test_after_a_post_the_page_shows_what_was_typed_not_the_defaults() -> None:
    schema = form(
        {"type": "checkbox", "key": "c", "defaultValue": True},
        {"type": "number", "key": "n", "defaultValue": 1},
        {"type": "textfield", "key": "locked", "readonly": True, "defaultValue": "kept"},
    )
    fields = nodes_by_key(
        page_fields(schema, values={"n": "lots", "locked": "typed"}, errors={"n": "bad"})
    )
    assert not fields["c"].checked
    assert fields["n"].value == "lots" and fields["n"].error == "bad"
    assert fields["locked"].value == "kept" and fields["locked"].readonly


def test_a_condition_on_variables_hides_at_once_one_on_answers_waits_for_the_post() -> None:
    schema = form(
        {"type": "checkbox", "key": "more"},
        {"type": "textfield", "key": "details", "conditional": {"hide": "=more != true"}},
        {"type": "text", "text": "Only for VIPs", "conditional": {"hide": "=not(vip)"}},
    )
    shown = page_fields(schema, values={}, errors={}, variables={"vip": False})
    assert [getattr(n, "key", n.kind) for n in shown] == ["more", "details"]
    shown = page_fields(schema, values={}, errors={}, variables={"vip": True})
    assert [getattr(n, "key", n.kind) for n in shown] == ["more", "details", "text"]


# The page, rendered.


# The task page as the panel renders it, on the tests' fixed day.
render_task_page = partial(render_form_page, today=TODAY)


class Page(HTMLParser):
    """The elements of a page by id, and every form control, with their attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, tuple[str, dict[str, str]]] = {}
        self.controls: list[tuple[str, dict[str, str]]] = []
        self.labels: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._label_for: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if "id" in attributes:
            assert attributes["id"] not in self.by_id, f"duplicate id {attributes['id']}"
            self.by_id[attributes["id"]] = (tag, attributes)
        if tag in {"input", "select", "textarea"} and attributes.get("type") != "hidden":
            self.controls.append((tag, attributes))
        if tag == "label":
            self._label_for, self._text = attributes.get("for"), []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._text).split())
            self._label_for = None


def submitted_with_errors() -> tuple[dict[str, Any], dict[str, str]]:
    sent = {
        "fullName": "Jo",
        "email": "jan@example.com",
        "amount": "5 000",
        "channels": ["sms", "post"],
        "cardType": "credit",
        "branch": "krk",
        "interests": ["shopping"],
        "marketing": "true",
        "startDate": "2026-11-01",
        "meeting": "2026-12-01",
        "meeting-time": "10:30",
        "owners:rows": "2",
        "owners[0].name": "",
        "owners[0].share": "40",
        "owners[1].name": "Ola",
    }
    with use_locale("pl"):
        _values, errors = read(localise(every_form()), sent, VARIABLES)
    return sent, errors


def test_every_input_of_the_test_form_has_a_visible_label_tied_to_it() -> None:
    page = Page(render_task_page(every_form(), variables=VARIABLES))
    controls = [a for tag, a in page.controls if a.get("type") not in {"submit"}]
    assert len(controls) > 20
    for attributes in controls:
        assert page.labels.get(attributes["id"]), attributes
    # A required field's label carries form-js's "*"; the input says so to assistive tech.
    assert page.labels["field-fullName"] == "Imię i nazwisko *"
    full_name = next(a for _tag, a in page.controls if a.get("id") == "field-fullName")
    assert full_name.get("aria-required") == "true"
    assert page.labels["field-address.street"] == "Ulica *"
    assert page.labels["field-owners[0].name"] == "Imię i nazwisko *"
    assert page.labels["field-meeting-time"] == "Godzina spotkania"
    english = Page(render_task_page(every_form(), variables=VARIABLES, locale="en"))
    assert english.labels["field-fullName"] == "Full name *"
    assert "Fields marked * are required." in render_task_page(
        every_form(), variables=VARIABLES, locale="en"
    )
    assert english.labels["field-channels-2"] == "Email"


def test_the_page_has_no_inline_styles_scripts_or_frames() -> None:
    html = render_task_page(every_form(), variables=VARIABLES)
    assert not re.search(r"\sstyle=", html)
    assert "<script>" not in html and "<iframe" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_errors_are_summarised_linked_and_described_at_their_fields() -> None:
    sent, errors = submitted_with_errors()
    assert list(errors) == ["fullName", "startDate", "address.street", "owners[0].name"]
    html = render_task_page(every_form(), values=sent, errors=errors, variables=VARIABLES)
    page = Page(html)
    summary = re.findall(r'<div class="error-summary".*?</div>', html, re.S)[0]
    for key in errors:
        assert f'href="#field-{key}"' in summary
        _tag, attributes = page.by_id[f"field-{key}"]
        assert f"error-{key}" in attributes["aria-describedby"].split()
        assert page.by_id[f"error-{key}"][0] == "p"
    assert '<span class="visually-hidden">Błąd:</span>' in html
    hint = page.by_id["field-fullName"][1]["aria-describedby"].split()
    assert hint == ["hint-fullName", "error-fullName"]


def test_choices_and_typed_values_are_kept_after_an_error() -> None:
    sent, errors = submitted_with_errors()
    html = render_task_page(every_form(), values=sent, errors=errors, variables=VARIABLES)
    page = Page(html)
    checked = {a["id"] for tag, a in page.tags if tag == "input" and "checked" in a}
    assert {"field-channels", "field-channels-3", "field-cardType-2", "field-marketing"} <= checked
    assert "field-interests-2" in checked and "field-interests" not in checked
    assert '<option value="krk" selected>' in html
    assert page.by_id["field-fullName"][1]["value"] == "Jo"
    assert page.by_id["field-amount"][1]["value"] == "5 000"
    assert page.by_id["field-meeting-time"][1]["value"] == "10:30"
    assert page.by_id["field-owners[0].share"][1]["value"] == "40"
    assert page.by_id["field-owners[1].name"][1]["value"] == "Ola"


def test_the_dynamic_list_can_grow_and_shrink_without_javascript() -> None:
    page = Page(render_task_page(every_form(), variables=VARIABLES))
    buttons = [a for tag, a in page.tags if tag == "button"]
    assert any(b.get("value") == "add:owners" for b in buttons)
    assert any(b.get("value") == "remove:owners:0" for b in buttons)
    hidden = [a for tag, a in page.tags if tag == "input" and a.get("type") == "hidden"]
    assert {"type": "hidden", "name": "owners:rows", "value": "1"} in hidden
    # The first submit button, the one Enter presses, sends the form.
    first = next(b for b in buttons if b.get("type") == "submit")
    assert first["value"] == "send" and first["tabindex"] == "-1"
    added = apply_list_action(
        every_form(), {"owners:rows": "1", "owners[0].name": "Ala"}, "add:owners"
    )
    page = Page(render_task_page(every_form(), values=added, variables=VARIABLES))
    assert page.by_id["field-owners[0].name"][1]["value"] == "Ala"
    assert "autofocus" in page.by_id["field-owners[1].name"][1]
    assert {"type": "hidden", "name": "owners:rows", "value": "2"} in [
        a for tag, a in page.tags if tag == "input" and a.get("type") == "hidden"
    ]


def test_display_components_render_accessibly() -> None:
    html = render_task_page(every_form(), variables=VARIABLES)
    page = Page(html)
    assert "<h2>Wniosek o kartę</h2>" in html
    assert '<a href="https://bank.example/regulamin">regulamin</a>' in html
    assert 'alt="Logo banku"' in html and '<hr class="form-separator">' in html
    region = next(a for tag, a in page.tags if a.get("role") == "region")
    assert region["tabindex"] == "0"
    assert page.by_id[region["aria-labelledby"]][0] == "caption"
    assert html.count('<th scope="col">') == 2 and "<td>120</td>" in html
    assert 'class="form-spacer form-spacer--2"' in html
    assert "Oferta VIP" not in html  # hidden by a condition on the variables
    assert page.by_id["field-caseNumber"][1]["value"] == "KR-2026-00000001"
    assert "readonly" in page.by_id["field-caseNumber"][1]
    assert "disabled" in page.by_id["field-internalNote"][1]
    fieldsets = [a for tag, a in page.tags if tag == "fieldset"]
    assert len(fieldsets) >= 5  # choices, the address group, the list and its row
    assert "Wyślij" in html and 'type="button"' not in html
    assert 'id="suffix-amount"' in html
    assert "suffix-amount" in page.by_id["field-amount"][1]["aria-describedby"]
    assert page.by_id["field-startDate"][1]["type"] == "date"
    assert page.by_id["field-startDate"][1]["min"] == TODAY.isoformat()
    assert page.by_id["field-callTime"][1]["type"] == "time"


def test_a_consent_checkbox_is_described_by_its_text_version_and_its_error() -> None:
    schema = json.loads(
        (HERE.parent / "bpmn" / "credit-application" / "forms" / "credit-consents.form").read_text()
    )
    versions = {"consentCreditCheck": "0123456789abcdef"}
    errors = {"consentCreditCheck": "Zaznacz"}
    html = render_task_page(schema, errors=errors, consent_versions=versions)
    box = Page(html).by_id["field-consentCreditCheck"][1]
    assert box["aria-describedby"].split() == [
        "version-consentCreditCheck",
        "error-consentCreditCheck",
    ]
    assert "0123456789ab" in html and "0123456789abc" not in html


def test_today_comes_from_the_panels_clock_in_the_panels_zone() -> None:
    # 23:30 UTC on 21 November is already 22 November in Warsaw.
    clock = FakeClock(datetime(2026, 11, 21, 23, 30, tzinfo=UTC).timestamp())
    assert form_today(clock) == date(2026, 11, 22)


def test_a_form_is_given_only_the_variables_it_names() -> None:
    schema = {
        "components": [
            {"type": "textfield", "key": "address.street", "label": "Ulica"},
            {"type": "select", "key": "branch", "valuesKey": "branches"},
            {"type": "text", "text": '="Rola: " + participant.role'},
            {"type": "table", "dataSource": "loans.current", "columns": []},
            {
                "type": "dynamiclist",
                "path": "owners",
                "isRepeating": True,
                "components": [
                    {
                        "type": "number",
                        "key": "share",
                        "conditional": {"hide": "=this.share > limits.max or i[1] > 3"},
                    }
                ],
            },
        ]
    }
    assert variable_names(schema) == {
        "address",
        "branch",
        "branches",
        "participant",
        "loans",
        "owners",
        "limits",
    }


def test_a_consent_or_signature_is_never_ticked_in_advance() -> None:
    schema = {
        "components": [
            {
                "type": "checkbox",
                "key": "consentMarketing",
                "label": "Zgoda",
                "defaultValue": True,
                "properties": {"consent": "true"},
            },
            {
                "type": "checkbox",
                "key": "signApplication",
                "label": "Podpis",
                "properties": {"signature": "application"},
            },
            {"type": "checkbox", "key": "newsletter", "label": "Newsletter", "defaultValue": True},
        ]
    }
    # Another participant's signature left on the process must not tick this one's box.
    variables = {"consentMarketing": True, "signApplication": True}
    nodes = page_fields(schema, values={}, errors={}, variables=variables, today=TODAY)
    checked = {node.key: node.checked for node in nodes if isinstance(node, FieldNode)}
    assert checked == {"consentMarketing": False, "signApplication": False, "newsletter": True}


def test_parts_a_condition_on_the_answers_may_hide_are_marked_and_judged_on_request() -> None:
    schema = form(
        {"type": "checkbox", "key": "more"},
        {"type": "textfield", "key": "details", "conditional": {"hide": "=more != true"}},
        {"type": "text", "text": "VIP", "conditional": {"hide": "=not(vip)"}},
    )
    nodes = page_fields(schema, values={}, errors={}, variables={"vip": True})
    live = {getattr(n, "key", n.kind): n.live_uid for n in nodes}
    # Only the condition on the answers waits for the page; the one on variables is settled.
    assert live["more"] == "" and live["text"] == "" and live["details"]
    assert hidden_now(schema, {}, {"vip": True}) == [live["details"]]
    assert hidden_now(schema, {"more": "true"}, {"vip": True}) == []
    html = render_task_page(schema, variables={"vip": True})
    assert f'<div data-condition="{live["details"]}">' in html


# Templating, file answers and fixed wording.


def test_templates_are_shown_evaluated_never_as_written() -> None:
    schema = form(
        {
            "type": "textfield",
            "key": "city",
            "label": "City of {{customer.name}}",
            "description": "{{#if vip}}Priority case {{caseNumber}}{{/if}}",
            "appearance": {"prefixAdorner": "{{country}}"},
        },
        {"type": "text", "id": "Text_1", "text": "Dear **{{customer.name}}**, {{count(items)}}"},
        {"type": "html", "id": "Html_1", "content": "<p>{{note}}</p>"},
    )
    variables = {
        "customer": {"name": "Ala"},
        "vip": True,
        "caseNumber": "KR-1",
        "country": "PL",
        "items": [1, 2],
        "note": "<b>bold?</b>",
    }
    field, text, block = page_fields(schema, values={}, errors={}, variables=variables)
    assert isinstance(field, FieldNode)
    assert (field.label, field.description, field.prefix) == (
        "City of Ala",
        "Priority case KR-1",
        "PL",
    )
    assert isinstance(text, ContentNode) and isinstance(block, ContentNode)
    assert text.html == "<p>Dear <strong>Ala</strong>, 2</p>"
    # What a template inserts into HTML is text, as form-js escapes it.
    assert block.html == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>"
    rendered = render_form_page(schema, variables=variables, locale="en")
    assert "{{" not in rendered and "}}" not in rendered
    # The panel gives the form the variables its templates read, and only those.
    assert variable_names(schema) >= {"customer", "vip", "caseNumber", "country", "items", "note"}


def test_a_loop_reads_its_items_and_what_parent_reaches() -> None:
    schema = form(
        {
            "type": "text",
            "id": "Text_1",
            "text": "{{#loop owners}}\n- {{name}} ({{parent.currency}})\n{{/loop}}",
        }
    )
    assert variable_names(schema) == {"owners", "currency"}
    (node,) = page_fields(
        schema,
        values={},
        errors={},
        variables={"owners": [{"name": "Ala"}, {"name": "Ola"}], "currency": "PLN"},
    )
    assert isinstance(node, ContentNode)
    assert node.html == "<ul><li>Ala (PLN)</li><li>Ola (PLN)</li></ul>"


def test_a_strict_text_shows_nothing_for_a_condition_that_is_not_boolean() -> None:
    strict = {"type": "text", "id": "Text_1", "text": "a{{#if n}}b{{/if}}c", "strict": True}
    loose = {**strict, "strict": False}
    shown = [
        page_fields(form(component), values={}, errors={}, variables={"n": 1})[0]
        for component in (strict, loose)
    ]
    assert [getattr(node, "html", None) for node in shown] == ["<p>ac</p>", "<p>abc</p>"]


def test_a_file_pickers_answer_is_its_uploads_and_a_required_one_needs_one() -> None:
    schema = form(
        {"type": "checkbox", "key": "hasIncome", "label": "Income?"},
        {
            "type": "filepicker",
            "key": "incomeProof",
            "label": "Proof of income",
            "multiple": False,
            "validate": {"required": True},
            "conditional": {"hide": "=hasIncome != true"},
        },
        {"type": "filepicker", "key": "extra", "label": "Extra", "validate": {"required": True}},
    )
    with use_locale("en"):
        answers, errors = read_submission(schema, {"hasIncome": "true"}, {}, TODAY, files={})
        assert errors == {"incomeProof": "Add “Proof of income”.", "extra": "Add “Extra”."}
        answers, errors = read_submission(
            schema, {}, {}, TODAY, files={"incomeProof": ["d1"], "extra": ["d2", "d3"]}
        )
    # Hidden by its condition, the proof is neither required nor kept.
    assert errors == {}
    assert answers == {"hasIncome": False, "extra": ["d2", "d3"]}
    answers, errors = read_submission(
        schema, {"hasIncome": "true"}, {}, TODAY, files={"incomeProof": ["d1", "d4"]}
    )
    assert answers["incomeProof"] == ["d4"] and "incomeProof" not in errors
    # Without the uploads (a draft, the API's own reading), file pickers are left out.
    assert read_submission(schema, {"hasIncome": "true"}, {}, TODAY) == ({"hasIncome": True}, {})


def test_a_consent_is_worded_in_fixed_text() -> None:
    """The panel records a consent with the words of the form's text blocks and the
    checkbox, as written: with templating they would not be the words shown."""
    consent = {"consent": "true"}
    problems = problems_of(
        {"type": "text", "id": "Text_1", "text": "I, {{name}}, agree."},
        {"type": "checkbox", "key": "agree", "label": "=label", "properties": consent},
        {"type": "checkbox", "key": "other", "label": "{{x}} is fine here"},
    )
    assert len(problems) == 2, problems
    assert "'Text_1'" in problems[0] and "fixed text" in problems[0]
    assert "'agree'" in problems[1] and "label" in problems[1]
    coded = problems_of(
        {"type": "text", "id": "Text_1", "text": "Run `this`."},
        {"type": "checkbox", "key": "agree", "label": "I agree", "properties": consent},
    )
    assert len(coded) == 1 and "code or images" in coded[0]
    assert problems_of({"type": "text", "id": "Text_1", "text": "Hi {{name}}, run `this`."}) == []
