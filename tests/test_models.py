"""The shipped BPMN models: lint-clean, and consistent with the shared constants."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from panel_core import constants as c
from tests import credit

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "bpmn" / "credit-application" / "credit-application.bpmn"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "zeebe": "http://camunda.org/schema/zeebe/1.0",
}


@pytest.fixture(scope="module")
def model() -> ElementTree.Element:
    return ElementTree.parse(MODEL).getroot()  # noqa: S314 - our own file


@pytest.mark.lint
def test_bpmnlint_reports_no_problem() -> None:
    npx = shutil.which("npx")
    assert npx, "Node.js is installed by ./dev setup"
    assert (ROOT / "node_modules" / "bpmnlint").is_dir(), "run ./dev setup (npm ci)"
    models = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bpmn").glob("*/*.bpmn"))
    result = subprocess.run(
        [npx, "--no-install", "bpmnlint", *models],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower(), result.stdout


def test_every_flow_node_and_flow_has_diagram_interchange(model: ElementTree.Element) -> None:
    process = model.find("bpmn:process", NS)
    assert process is not None
    nodes, flows = set(), set()
    for element in process.iter():
        namespace, _, tag = element.tag[1:].partition("}")
        if namespace != NS["bpmn"]:
            continue
        if tag == "sequenceFlow":
            flows.add(element.get("id"))
        elif tag.endswith(("Task", "Event", "Gateway", "subProcess")) or tag == "task":
            nodes.add(element.get("id"))
    shapes = {s.get("bpmnElement") for s in model.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement") for e in model.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert nodes and nodes <= shapes, nodes - shapes
    assert flows and flows <= edges, flows - edges


def test_user_tasks_use_the_shared_form_ids_and_assignment(model: ElementTree.Element) -> None:
    tasks = {t.get("id"): t for t in model.iterfind(".//bpmn:userTask", NS)}
    expected_forms = {
        credit.ELEMENT_TASK_CONSENTS: credit.FORM_CONSENTS,
        credit.ELEMENT_TASK_INCOME: credit.FORM_INCOME,
        credit.ELEMENT_TASK_QUESTIONNAIRE: credit.FORM_QUESTIONNAIRE,
        credit.ELEMENT_TASK_SIGN: credit.FORM_SIGNATURE,
        credit.ELEMENT_TASK_ANALYST_REVIEW: credit.FORM_ANALYST_REVIEW,
    }
    assert set(tasks) == set(expected_forms)
    forms_on_disk = {
        json.loads(p.read_text())["id"]
        for p in (ROOT / "bpmn" / "credit-application" / "forms").glob("*.form")
    }
    for element_id, form_id in expected_forms.items():
        task = tasks[element_id]
        assert task.find(".//zeebe:userTask", NS) is not None, (
            f"{element_id} is a Camunda user task"
        )
        form = task.find(".//zeebe:formDefinition", NS)
        assert form is not None and form.get("formId") == form_id
        assert form_id in forms_on_disk
        assignment = task.find(".//zeebe:assignmentDefinition", NS)
        assert assignment is not None
        if element_id == credit.ELEMENT_TASK_ANALYST_REVIEW:
            assert assignment.get("candidateGroups") == credit.GROUP_CREDIT_ANALYSTS
        else:
            assert assignment.get("assignee") == f"={c.VAR_PARTICIPANT}.{c.KEY_PARTICIPANT_ID}"


def test_service_tasks_use_the_shared_job_type_and_known_statuses(
    model: ElementTree.Element,
) -> None:
    sub = model.find(f".//bpmn:subProcess[@id='{credit.ELEMENT_PARTICIPANT_WORK}']", NS)
    assert sub is not None
    invite_tasks = sub.findall(f"bpmn:serviceTask[@id='{credit.ELEMENT_INVITE_PARTICIPANT}']", NS)
    assert len(invite_tasks) == 1, "the invitation task sits directly in the participant's share"
    statuses = []
    for task in model.iterfind(".//bpmn:serviceTask", NS):
        definition = task.find(".//zeebe:taskDefinition", NS)
        assert definition is not None
        if task.get("id") == credit.ELEMENT_INVITE_PARTICIPANT:
            assert task is invite_tasks[0]
            assert definition.get("type") == c.JOB_INVITE_PARTICIPANT
            assert task.find(".//zeebe:taskHeaders", NS) is None
            continue
        if task.get("id") == credit.ELEMENT_CHECK_BUREAU:
            assert definition.get("type") == c.JOB_CHECK_CREDIT_BUREAU
            # Bounded: the engine raises an incident after these attempts.
            assert definition.get("retries") == "3"
            assert task.find(".//zeebe:taskHeaders", NS) is None
            continue
        assert definition.get("type") == c.JOB_SET_CASE_STATUS, task.get("id")
        header = task.find(f".//zeebe:header[@key='{c.HEADER_STATUS}']", NS)
        assert header is not None
        statuses.append(header.get("value"))
    assert sorted(statuses) == sorted(credit.CASE_STATUSES)


def test_participants_are_a_parallel_multi_instance(model: ElementTree.Element) -> None:
    sub = model.find(f".//bpmn:subProcess[@id='{credit.ELEMENT_PARTICIPANT_WORK}']", NS)
    assert sub is not None
    loop = sub.find("bpmn:multiInstanceLoopCharacteristics", NS)
    assert loop is not None and loop.get("isSequential") in (None, "false")
    characteristics = loop.find(".//zeebe:loopCharacteristics", NS)
    assert characteristics is not None
    assert characteristics.get("inputCollection") == f"={c.VAR_PARTICIPANTS}"
    assert characteristics.get("inputElement") == c.VAR_PARTICIPANT


def test_answers_sent_to_the_process_stay_in_their_participants_share(
    model: ElementTree.Element,
) -> None:
    """Without a local variable in the share, a completed task's variable lands on the
    process, where the next participant's answer would overwrite it (and prefill their
    form with it)."""
    share = model.find(f".//bpmn:subProcess[@id='{credit.ELEMENT_PARTICIPANT_WORK}']", NS)
    assert share is not None
    local = {
        mapping.get("target")
        for mapping in share.findall("bpmn:extensionElements/zeebe:ioMapping/zeebe:input", NS)
    }
    sent = set()
    for task in share.iterfind(".//bpmn:userTask", NS):
        definition = task.find(".//zeebe:formDefinition", NS)
        assert definition is not None
        form = json.loads(
            (
                ROOT / "bpmn" / "credit-application" / "forms" / f"{definition.get('formId')}.form"
            ).read_text()
        )
        stack = list(form["components"])
        while stack:
            component = stack.pop()
            stack.extend(component.get("components", []))
            marked = component.get("properties", {}).get(c.FORM_PROPERTY_SEND_TO_PROCESS)
            if str(marked).lower() == "true":
                sent.add(component["key"])
    assert sent, "the participants' forms send something to the process"
    assert sent <= local, sent - local
    characteristics = share.find(".//zeebe:loopCharacteristics", NS)
    assert characteristics is not None
    assert characteristics.get("outputCollection") == c.VAR_SHARES
    output = characteristics.get("outputElement") or ""
    for key in (*sorted(sent), c.KEY_PARTICIPANT_ID):
        assert f"{key}:" in output, key
