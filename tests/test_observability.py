"""What an operator watches: readiness, Prometheus metrics, request ids across processes."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bff.app import create_app
from devtools._process import http_get
from panel_core import constants as c
from panel_core.db.models import SubmissionState, TaskSubmission, utcnow
from tests import credit
from tests.conftest import Stack
from tests.helpers import (
    complete,
    csrf_token,
    cut_off,
    eventually,
    open_case_via_channel,
    open_tasks,
    person,
    sign_in,
)

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == (f"{name}{{{wanted}}}" if wanted else name):
            return float(value)
    return None


async def test_the_bff_is_ready_and_counts_what_it_does(stack: Stack) -> None:
    async with AsyncTestClient(create_app(stack.settings)) as client:
        ready = await client.get("/ready")
        await client.get("/login")
        await client.post(
            "/login",
            # A case number of its own: the codes asked per (unknown) identity are limited.
            data={
                "case": f"KR-2026-{uuid.uuid4().int % 10**8:08d}",
                "fragment": "1234",
                "_csrf_token": csrf_token(client),
            },
        )
        metrics = await client.get("/metrics")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "engine": "ok"},
    }
    assert metrics.status_code == 200
    assert (metric(metrics.text, "panel_login_outcomes_total", outcome="code-sent") or 0) >= 1
    assert "panel_http_requests_total" in metrics.text


async def test_the_bffs_metrics_need_prometheus_token_outside_demo_mode(stack: Stack) -> None:
    guarded = msgspec.structs.replace(stack.settings, metrics_token="scrape-secret-0123456789")
    closed = msgspec.structs.replace(stack.settings, demo_mode=False, sms_provider="dev")
    async with AsyncTestClient(create_app(guarded)) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        right = await client.get(
            "/metrics", headers={"authorization": "Bearer scrape-secret-0123456789"}
        )
    async with AsyncTestClient(create_app(closed)) as client:
        unset = await client.get("/metrics")
    assert anonymous.status_code == wrong.status_code == unset.status_code == 404
    assert right.status_code == 200


async def test_a_request_id_follows_a_completion_into_the_workers(
    stack: Stack, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The BFF cannot reach the engine, so the workers deliver the completion; their log
    line about it carries the id of the request that sent it."""
    request_id = f"req-{uuid.uuid4().hex[:16]}"
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])
    async with AsyncTestClient(create_app(cut_off(stack.settings))) as client:
        await sign_in(client, case["participants"][0]["participantId"])
        tasks = await open_tasks(client, 3)
        consents = next(t for t in tasks if t["elementId"] == credit.ELEMENT_TASK_CONSENTS)
        client.headers["x-request-id"] = request_id
        sent = await complete(client, consents)
        forged = await client.get(
            "/api/participant/tasks", headers={"x-request-id": 'x"\n{"level": "fake"}'}
        )
    assert sent.status_code == 202
    assert sent.headers["x-request-id"] == request_id
    # An id that could forge log lines is replaced, not echoed.
    assert forged.headers["x-request-id"] != 'x"\n{"level": "fake"}'
    async with sessions() as session:
        submission = await session.scalar(
            select(TaskSubmission).where(TaskSubmission.panel_task_id == uuid.UUID(consents["id"]))
        )
    assert submission is not None and submission.request_id == request_id

    # The submission waits two minutes for its retry; make it due, as time would.
    async with sessions() as session:
        await session.execute(
            update(TaskSubmission)
            .where(TaskSubmission.id == submission.id)
            .values(next_attempt_at=utcnow())
        )
        await session.commit()

    async def delivered_and_logged() -> list[dict[str, object]] | None:
        async with sessions() as session:
            row = await session.get(TaskSubmission, submission.id)
        if row is None or row.state != SubmissionState.DELIVERED:
            return None
        lines = [
            json.loads(line)
            for line in stack.workers_log.read_text().splitlines()
            if request_id in line
        ]
        return lines or None

    lines = await eventually(delivered_and_logged, within=30)
    assert all(line.get("request_id") == request_id for line in lines)
    assert any("/completion" in str(line.get("event")) for line in lines)


async def test_the_workers_report_their_outboxes_and_the_record_streams(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.settings.worker_http_port}"
    status, body = http_get(f"{base}/ready", timeout=10)
    assert status == 200, body
    status, body = http_get(f"{base}/metrics", timeout=10)
    assert status == 200
    text = body.decode()
    for outbox in ("completion", "sms", "engine-command"):
        assert metric(text, "panel_outbox_depth", outbox=outbox) is not None
        assert metric(text, "panel_outbox_oldest_pending_seconds", outbox=outbox) is not None
    for stream in (c.STREAM_USER_TASK, c.STREAM_VARIABLE):
        lag = metric(text, "panel_engine_records_lag", stream=stream)
        assert lag is not None and lag >= 0
    assert metric(text, "panel_engine_records_dead_letter_depth") is not None
    applied = metric(text, "panel_engine_records_applied_total", stream=c.STREAM_USER_TASK)
    assert applied is not None and applied > 0
