"""Jobs keep flowing at the workers' concurrency limit: no 5-second stalls, and the limit
holds for streamed jobs too (workers/jobs.py)."""

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pyzeebe import Job, ZeebeClient, ZeebeTaskRouter, create_insecure_channel

from tests.conftest import Stack
from tests.helpers import eventually
from workers.jobs import JobWorker

pytestmark = pytest.mark.engine

BURST = 6
HANDLER_SECONDS = 0.1
# pyzeebe's own poller waited 5 s whenever the limit was reached.
LONGEST_GAP_SECONDS = 2.0


def _model(process_id: str, job_type: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs-{process_id}"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="a" sourceRef="start" targetRef="work"/>
    <bpmn:serviceTask id="work">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}"/></bpmn:extensionElements>
      <bpmn:incoming>a</bpmn:incoming><bpmn:outgoing>b</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="b" sourceRef="work" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


class Observed:
    def __init__(self) -> None:
        self.done: list[float] = []
        self.running = 0
        self.peak = 0

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.done, self.done[1:], strict=False)), default=0.0)


async def _wait_done(observed: Observed, count: int, within: float) -> None:
    async def enough() -> int | None:
        return len(observed.done) if len(observed.done) >= count else None

    await eventually(enough, within=within, interval=0.05)


async def test_jobs_flow_through_one_slot_without_stalls(stack: Stack, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    process_id, job_type = f"job-flow-{suffix}", f"test.job-flow.{suffix}"
    model = tmp_path / f"{process_id}.bpmn"
    model.write_text(_model(process_id, job_type))
    channel = create_insecure_channel(grpc_address=stack.engine.grpc_address)
    client = ZeebeClient(channel)
    observed = Observed()
    router = ZeebeTaskRouter()

    @router.task(task_type=job_type, max_running_jobs=1)  # type: ignore[arg-type]
    async def work(job: Job) -> dict[str, Any]:
        observed.running += 1
        observed.peak = max(observed.peak, observed.running)
        await asyncio.sleep(HANDLER_SECONDS)
        observed.running -= 1
        observed.done.append(time.monotonic())
        return {}

    worker = JobWorker(channel, name=f"job-flow-test-{suffix}", stream_enabled=True)
    worker.include_router(router)
    running: asyncio.Task[None] | None = None
    try:
        await client.deploy_resource(model)
        # A backlog the job stream never sees: the jobs exist before any worker asks.
        for _ in range(BURST):
            await client.run_process(process_id)
        running = asyncio.create_task(worker.work())
        await _wait_done(observed, BURST, within=BURST * HANDLER_SECONDS + 8)
        assert observed.longest_gap() < LONGEST_GAP_SECONDS, observed.done
        # A burst while the worker runs: the engine pushes these down the job stream.
        for _ in range(BURST):
            await client.run_process(process_id)
        await _wait_done(observed, 2 * BURST, within=BURST * HANDLER_SECONDS + 8)
        assert observed.longest_gap() < LONGEST_GAP_SECONDS, observed.done
        assert observed.peak == 1, "one slot: never two of the jobs at once"
    finally:
        await worker.stop()
        if running is not None:
            await asyncio.wait_for(running, timeout=10)
        await channel.close()
