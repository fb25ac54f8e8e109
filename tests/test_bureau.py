"""The credit bureau call against the real stub process: how each answer (or none) is
classified, and what that does to the job: a failure with a backoff for a technical fault,
the model's BPMN error for an applicant the bureau does not know."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from xml.etree import ElementTree

import httpx
import pytest
import pytest_asyncio

from devtools.bureau_stub import BureauStub, score_of
from devtools.ports import free_port
from panel_core import constants as c
from panel_core.bureau import (
    BureauFaultError,
    BureauNotFoundError,
    BureauResult,
    check_subjects,
)
from tests import credit
from workers.routers.bureau import BpmnError, JobFailure, bureau_outcome

BACKOFF_SECONDS = 2.0
TIMEOUT_SECONDS = 0.5
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "zeebe": "http://camunda.org/schema/zeebe/1.0",
}


def index(n: int) -> str:
    """A PESEL blind index as the panel keeps one (64 hex digits)."""
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BureauStub]:
    with BureauStub(log_path=tmp_path_factory.mktemp("bureau") / "stub.log") as running:
        yield running


@pytest.fixture(autouse=True)
def answers_ok(stub: BureauStub) -> Iterator[None]:
    stub.set_mode("ok")
    yield
    # Also releases a request still hanging in "timeout".
    stub.set_mode("ok")


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def ask(http: httpx.AsyncClient, url: str, reference: str, *subjects: str) -> BureauResult:
    return await check_subjects(
        http, url, reference=reference, subjects=list(subjects), timeout_seconds=TIMEOUT_SECONDS
    )


def assert_failure_with_backoff(error: Exception) -> JobFailure:
    outcome = bureau_outcome(error, BACKOFF_SECONDS)
    assert isinstance(outcome, JobFailure), outcome
    # retryBackoff: the configured wait, spread by ±20 %.
    assert 0.8 * BACKOFF_SECONDS * 1000 <= outcome.retry_back_off_ms <= 1.2 * BACKOFF_SECONDS * 1000
    return outcome


async def test_an_answer_for_everyone_is_the_lowest_score_and_names_nobody(
    stub: BureauStub, http: httpx.AsyncClient
) -> None:
    result = await ask(http, stub.url, "case-ok", index(1), index(2))
    assert result == BureauResult(score=min(score_of(index(1)), score_of(index(2))), subjects=2)
    variable = result.as_variable()
    assert variable == {"found": True, "score": result.score, "subjects": 2}
    assert index(1) not in json.dumps(variable) and index(2) not in json.dumps(variable)
    # What reached the bureau: the reference and the two indexes, nothing else.
    (request,) = stub.requests("case-ok")
    assert request["subjects"] == 2 and request["mode"] == "ok"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("500", "The credit bureau answered HTTP 500."),
        ("malformed", "The credit bureau's answer is malformed."),
        ("timeout", f"The credit bureau did not answer within {TIMEOUT_SECONDS:g} s."),
    ],
)
async def test_technical_faults_fail_the_job_with_a_backoff(
    stub: BureauStub, http: httpx.AsyncClient, mode: str, message: str
) -> None:
    stub.set_mode(mode)
    started = time.monotonic()
    with pytest.raises(BureauFaultError) as raised:
        await ask(http, stub.url, f"case-{mode}", index(3))
    took = time.monotonic() - started
    # A bureau that never answers costs the timeout, not the stub's whole hang.
    assert took < TIMEOUT_SECONDS + 2
    outcome = assert_failure_with_backoff(raised.value)
    # The same words for every case, so the dashboard groups them as one problem.
    assert outcome.message == message
    assert f"case-{mode}" not in outcome.message and index(3) not in outcome.message


async def test_an_unreachable_or_unconfigured_bureau_is_a_technical_fault(
    http: httpx.AsyncClient,
) -> None:
    with pytest.raises(BureauFaultError) as refused:
        await ask(http, f"http://127.0.0.1:{free_port()}", "case-down", index(4))
    assert "cannot be reached" in str(refused.value)
    assert_failure_with_backoff(refused.value)
    with pytest.raises(BureauFaultError) as unset:
        await ask(http, "", "case-unset", index(4))
    assert "PANEL_BUREAU_URL" in str(unset.value)
    assert_failure_with_backoff(unset.value)


async def test_an_applicant_the_bureau_does_not_know_is_the_models_bpmn_error(
    stub: BureauStub, http: httpx.AsyncClient
) -> None:
    stub.set_mode("not-found")
    with pytest.raises(BureauNotFoundError) as raised:
        await ask(http, stub.url, "case-unknown", index(5), index(6))
    assert (raised.value.missing, raised.value.asked) == (2, 2)
    outcome = bureau_outcome(raised.value, BACKOFF_SECONDS)
    assert outcome == BpmnError(c.ERROR_BUREAU_NOT_FOUND, str(raised.value))


async def test_a_mode_set_for_one_case_leaves_the_others_alone(
    stub: BureauStub, http: httpx.AsyncClient
) -> None:
    stub.set_mode("500", reference="case-broken")
    try:
        with pytest.raises(BureauFaultError):
            await ask(http, stub.url, "case-broken", index(7))
        assert (await ask(http, stub.url, "case-fine", index(7))).subjects == 1
    finally:
        stub.set_mode(None, reference="case-broken")
    assert (await ask(http, stub.url, "case-broken", index(7))).subjects == 1


async def test_the_stub_refuses_anything_but_blind_indexes(
    stub: BureauStub, http: httpx.AsyncClient
) -> None:
    """What the bureau is sent is checked at its door: a PESEL there is refused."""
    with pytest.raises(BureauFaultError) as raised:
        await ask(http, stub.url, "case-pesel", "85010112345")
    assert str(raised.value) == "The credit bureau answered HTTP 400."
    assert stub.requests("case-pesel") == []


def test_errors_that_are_not_the_bureaus_are_left_to_the_common_handler() -> None:
    assert bureau_outcome(ValueError("a model error"), BACKOFF_SECONDS) is None


def test_the_model_catches_the_bureaus_not_found_and_maps_the_flag() -> None:
    root = ElementTree.parse(credit.FOLDER / "credit-application.bpmn").getroot()  # noqa: S314
    task = root.find(f".//bpmn:serviceTask[@id='{credit.ELEMENT_CHECK_BUREAU}']", NS)
    assert task is not None
    definition = task.find(".//zeebe:taskDefinition", NS)
    assert definition is not None and definition.get("type") == c.JOB_CHECK_CREDIT_BUREAU
    catch = root.find(f".//bpmn:boundaryEvent[@id='{credit.ELEMENT_BUREAU_NOT_FOUND}']", NS)
    assert catch is not None and catch.get("attachedToRef") == credit.ELEMENT_CHECK_BUREAU
    error_ref = catch.find("bpmn:errorEventDefinition", NS)
    assert error_ref is not None
    error = root.find(f"bpmn:error[@id='{error_ref.get('errorRef')}']", NS)
    assert error is not None and error.get("errorCode") == c.ERROR_BUREAU_NOT_FOUND
    output = catch.find(".//zeebe:output", NS)
    assert output is not None and output.get("target") == c.VAR_BUREAU_RESULT
