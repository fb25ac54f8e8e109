"""A case type's rules are its descriptor's: roles and how many of each, channels, statuses.

Nothing here is Python about a case type: a designer's descriptor written in the test works
exactly as the shipped credit one does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from panel_core.cases import case_types
from panel_core.cases.case_types import Descriptor, check, model_problems
from panel_core.cases.service import CaseValidationError, validate_request
from panel_core.cli import ParticipantArgumentError, minimal_participants, parse_participants
from tests import credit
from tests.conftest import REPO_ROOT

TEXT = {"pl": "x", "en": "x"}


def shipped() -> Descriptor:
    return case_types.parse(
        (REPO_ROOT / "bpmn" / "credit-application" / "credit-application.case.json").read_bytes()
    )


def joint_account(**changes: Any) -> dict[str, Any]:
    """A designer's case type: an account for a minor, opened by two guardians."""
    document: dict[str, Any] = {
        "caseType": "minor-account",
        "processId": "minor-account",
        "name": {"pl": "Konto dla dziecka", "en": "Account for a minor"},
        "roles": {
            "guardian": {
                "label": {"pl": "Opiekun %(n)s", "en": "Guardian %(n)s"},
                "min": 1,
                "max": 2,
            },
            "minor": {"label": {"pl": "Dziecko", "en": "Minor"}, "min": 0, "max": 1},
        },
        "channels": {"branch": {"pl": "Oddział", "en": "Branch"}},
        "initialStatus": "gathering",
        "stages": [
            {"id": "gathering", "title": TEXT, "statuses": ["gathering"]},
            {"id": "done", "title": TEXT, "statuses": ["opened"]},
        ],
        "statuses": {
            "gathering": {"label": TEXT, "next": TEXT},
            "opened": {"label": TEXT, "next": TEXT, "final": True, "sms": TEXT},
        },
        "instructions": TEXT,
    }
    document.update(changes)
    return document


def descriptor_of(document: dict[str, Any]) -> Descriptor:
    return case_types.parse(json.dumps(document).encode())


MODEL = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="minor-account" isExecutable="true">
    <bpmn:serviceTask id="mark-opened">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="customer-panel.case.set-status" />
        <zeebe:taskHeaders><zeebe:header key="status" value="opened" /></zeebe:taskHeaders>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
  </bpmn:process>
</bpmn:definitions>"""


def refused(descriptor: Descriptor, roles: list[str], channel: str = "branch") -> str:
    with pytest.raises(CaseValidationError) as refusal:
        validate_request(descriptor, roles, channel)
    return str(refusal.value)


def test_a_credit_case_needs_exactly_one_primary_borrower() -> None:
    descriptor = shipped()
    assert "exactly 1 primary-borrower, not 0" in refused(descriptor, [credit.ROLE_CO_BORROWER])
    assert "not 2" in refused(descriptor, [credit.ROLE_PRIMARY_BORROWER] * 2)
    assert "at least one participant" in refused(descriptor, [])
    validate_request(descriptor, [credit.ROLE_PRIMARY_BORROWER, credit.ROLE_CO_BORROWER], "branch")


def test_a_designers_case_type_takes_its_own_roles_counts_and_channels() -> None:
    descriptor = descriptor_of(joint_account())
    validate_request(descriptor, ["guardian", "guardian", "minor"], "branch")
    validate_request(descriptor, ["guardian"], "branch")
    assert "0 to 1 minor, not 2" in refused(descriptor, ["guardian", "minor", "minor"])
    assert "1 to 2 guardian, not 0" in refused(descriptor, ["minor"])
    assert "Unknown role(s) for minor-account: co-borrower" in refused(
        descriptor, ["guardian", "co-borrower"]
    )
    assert "Unknown channel 'internet-banking'" in refused(
        descriptor, ["guardian"], "internet-banking"
    )
    assert descriptor.first_status == "gathering"
    assert check(descriptor, MODEL) == []


@dataclass
class Person:
    id: uuid.UUID
    role: str
    ordinal: int


def test_people_are_numbered_within_their_role_never_from_zero() -> None:
    descriptor = descriptor_of(joint_account())
    # Registered minor first: the panel still lists guardians first, as the descriptor does.
    minor = Person(uuid.uuid4(), "minor", 0)
    first = Person(uuid.uuid4(), "guardian", 1)
    second = Person(uuid.uuid4(), "guardian", 2)
    assert [p.role for p in descriptor.in_order([minor, second, first])] == [
        "guardian",
        "guardian",
        "minor",
    ]
    assert descriptor.role_names([minor, first, second]) == {
        first.id: "Opiekun 1",
        second.id: "Opiekun 2",
        minor.id: "Dziecko",
    }
    borrower = Person(uuid.uuid4(), credit.ROLE_PRIMARY_BORROWER, 0)
    co = Person(uuid.uuid4(), credit.ROLE_CO_BORROWER, 1)
    assert shipped().role_names([borrower, co]) == {
        borrower.id: "Kredytobiorca",
        co.id: "Współkredytobiorca 1",
    }


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"roles": {}}, "no roles: a case needs participants"),
        (
            {"roles": {"guardian": {"label": TEXT, "min": 3, "max": 2}}},
            "role 'guardian': 'min' must be 0 or more and at most 'max'",
        ),
        ({"roles": {"guardian": {"label": TEXT, "max": 11}}}, "role 'guardian': 'max' is above 10"),
        ({"channels": {}}, "no channels: no case of this type could be opened"),
        ({"initialStatus": "waiting"}, "status 'waiting' set by the model has no entry"),
        (
            {"statuses": {"gathering": {"label": TEXT, "next": TEXT}}},
            "status 'opened' set by the model has no entry in 'statuses'",
        ),
        ({"channels": {"branch": {"pl": "Oddział"}}}, "channels.branch has no text in en"),
        ({"caseNumberPrefix": "kd"}, "'caseNumberPrefix' must be 2 to 6 capital letters A-Z"),
        (
            {"messages": {"invitation": {"pl": "Kod: {code}", "en": "Code {code} at {link}"}}},
            "messages.invitation.pl: lacks {link}",
        ),
        (
            {"messages": {"invitation": {"pl": "{link} {code} {pesel}", "en": "{link} {code}"}}},
            "messages.invitation.pl: unknown placeholder {pesel}",
        ),
        ({"messages": {"reminder": TEXT}}, "messages.reminder: not a text a case type words"),
        (
            {"faq": [{"question": TEXT, "answer": TEXT, "roles": ["parent"]}]},
            "faq[0].roles: 'parent' is not one of the descriptor's roles",
        ),
        ({"roleInstructions": {"parent": TEXT}}, "roleInstructions.parent: not one of the"),
        (
            {"conversations": {"staffShownAs": "full-name"}},
            "conversations.staffShownAs must be one of bank, first-name",
        ),
        (
            {"conversations": {"team": " credit-analysts"}},
            "conversations.team must not begin or end with spaces",
        ),
    ],
)
def test_deploy_names_what_a_descriptor_lacks(changes: dict[str, Any], problem: str) -> None:
    problems = check(descriptor_of(joint_account(**changes)), MODEL)
    assert any(problem in found for found in problems), problems


def test_start_case_reads_participants_and_makes_up_what_is_left_out() -> None:
    people = parse_participants(
        ["role=guardian,pesel=44051401458,phone=+48600700800,locale=en", "role=minor"]
    )
    assert (people[0].role, people[0].pesel, people[0].phone, people[0].locale) == (
        "guardian",
        "44051401458",
        "+48600700800",
        "en",
    )
    assert people[1].role == "minor" and len(people[1].pesel) == 11
    for wrong in ("pesel=44051401458", "role=guardian,colour=blue", "role=a,role=b"):
        with pytest.raises(ParticipantArgumentError):
            parse_participants([wrong])
    assert [p.role for p in minimal_participants(descriptor_of(joint_account()))] == ["guardian"]
    assert [p.role for p in minimal_participants(shipped())] == [credit.ROLE_PRIMARY_BORROWER]


def shipped_files() -> tuple[Descriptor, bytes, dict[str, dict[str, Any]]]:
    bpmn = REPO_ROOT / "bpmn" / "credit-application"
    forms = {
        schema["id"]: schema
        for schema in (json.loads(p.read_text()) for p in (bpmn / "forms").glob("*.form"))
    }
    return shipped(), (bpmn / "credit-application.bpmn").read_bytes(), forms


def test_the_shipped_case_type_passes_the_model_checks() -> None:
    descriptor, model, forms = shipped_files()
    assert model_problems(descriptor, model, forms) == []


def test_a_shared_answer_without_its_local_mapping_is_refused_naming_the_task() -> None:
    descriptor, model, forms = shipped_files()
    broken = model.replace(b'<zeebe:input source="=null" target="incomeProof" />', b"")
    assert model_problems(descriptor, broken, forms) == [
        "user task 'task-income': form 'credit-income' sends 'incomeProof' to the process, but "
        "the share 'participant-work' has no local input mapping for it "
        '(<zeebe:input source="=null" target="incomeProof" />), so participants\' answers '
        "would overwrite each other"
    ]


def test_a_user_task_without_a_deployed_form_is_refused() -> None:
    descriptor, model, forms = shipped_files()
    without = model.replace(b'<zeebe:formDefinition formId="credit-consents" />', b"")
    assert model_problems(descriptor, without, forms) == [
        "user task 'task-consents' has no form (zeebe:formDefinition formId)"
    ]
    del forms[credit.FORM_QUESTIONNAIRE]
    assert model_problems(descriptor, model, forms) == [
        "user task 'task-questionnaire' links form 'credit-questionnaire', not deployed with it"
    ]


def test_a_role_the_descriptor_does_not_list_is_refused() -> None:
    descriptor, model, forms = shipped_files()
    assignee = b'<zeebe:assignmentDefinition assignee="=participant.participantId" />'
    assert assignee in model
    with_witness = model.replace(
        assignee,
        b'<zeebe:assignmentDefinition assignee="=if participant.role = &quot;witness&quot;'
        b' then null else participant.participantId" />',
        1,
    )
    assert model_problems(descriptor, with_witness, forms) == [
        "element 'task-consents' compares the role with 'witness', which the descriptor's "
        "'roles' do not list"
    ]


def test_a_case_types_own_invitation_is_used_in_the_recipients_language() -> None:
    from panel_core.notifications.sms_templates import render_sms

    own = {
        "pl": "Sprawa {case_number}: {link} kod {code}",
        "en": "Case {case_number}: {link} {code}",
    }
    context = {"case_number": "KD-2026-1", "link": "https://p/l", "code": "123456", "valid_days": 7}
    assert render_sms("invitation", "en", context, own) == "Case KD-2026-1: https://p/l 123456"
    assert render_sms("invitation", "de", context, own).startswith("Sprawa KD-2026-1")
    assert "KD-2026-1" in render_sms("invitation", "pl", context)


# After the case closes.


def rules_problems(after: dict[str, Any], status_rule: dict[str, Any] | None = None) -> list[str]:
    folder = Path(credit.FOLDER)
    raw = msgspec.json.decode((folder / f"{credit.CASE_TYPE_CREDIT}.case.json").read_bytes())
    raw["afterClosure"] = after
    if status_rule is not None:
        raw["statuses"][credit.STATUS_COLLECTING]["afterClosure"] = status_rule
    descriptor = case_types.parse(msgspec.json.encode(raw))
    return case_types.check(descriptor, (folder / f"{credit.CASE_TYPE_CREDIT}.bpmn").read_bytes())


def test_deploy_refuses_after_closure_rules_the_panel_could_not_keep() -> None:
    assert rules_problems({"accessDays": 30, "shows": "documents", "purgeAfterDays": 30}) == []
    assert rules_problems({"accessDays": 60, "purgeAfterDays": 30}) == [
        "afterClosure.purgeAfterDays must be at least its accessDays"
    ]
    assert rules_problems({"accessDays": -1}) == ["afterClosure.accessDays must be 0 or more"]
    assert rules_problems({"purge": ["documents", "passwords"]}) == [
        "afterClosure.purge: 'passwords' is not one of "
        "documents, signatures, answers, drafts, identity, phones, notes, appointments, "
        "conversations"
    ]
    assert rules_problems({}, {"accessDays": 1}) == [
        f"status {credit.STATUS_COLLECTING!r} is not final and cannot have 'afterClosure'"
    ]
    with pytest.raises(case_types.DescriptorError, match="shows"):
        rules_problems({"shows": "nothing"})


def test_each_outcome_has_its_own_rule_and_a_running_status_the_case_types() -> None:
    descriptor = case_types.parse(
        (Path(credit.FOLDER) / f"{credit.CASE_TYPE_CREDIT}.case.json").read_bytes()
    )
    approved = descriptor.closure_rule(credit.STATUS_APPROVED)
    rejected = descriptor.closure_rule(credit.STATUS_REJECTED)
    assert (approved.shows, approved.access_days) == ("everything", 90)
    assert (rejected.shows, rejected.access_days) == ("documents", 30)
    # A case cancelled while running closes under the case type's own rule.
    assert descriptor.closure_rule(credit.STATUS_COLLECTING) == descriptor.after_closure
