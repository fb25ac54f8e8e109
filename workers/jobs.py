"""Job intake of the workers: pyzeebe's routers and handlers, with a bounded concurrency of
our own that never sleeps while jobs wait.

pyzeebe 4.7's ``ZeebeWorker`` polls each task type and, once ``max_running_jobs`` are
running, sleeps ``poll_retry_delay`` (5 s) before it looks again, even if the jobs end in
milliseconds; after back-pressure from the gateway it sleeps 5 s too. Its job stream takes no
notice of the limit at all: every pushed job runs at once. Under load that made invitations
stall for 5 s at a time, and a burst of streamed jobs ran without bound.

Here, per task type, ``max_running_jobs`` slots are shared by the job stream and the poll:

* the stream hands a job over only once a slot is free; until then the next one is not read,
  so the gateway's flow control holds the rest back (and the broker gives jobs it cannot push
  back, for a poll to take);
* the poll asks for as many jobs as slots are free, long-polling, and waits on the slots (not
  a clock) when none is: a finishing job wakes it at once;
* back-pressure and gateway outages are retried after a short, growing, capped delay.

The routers, their handlers and pyzeebe's job controller (completion, failure, the routers'
exception handler) are pyzeebe's, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import anyio
import grpc  # type: ignore[import-untyped]
from pyzeebe import Job, ZeebeWorker
from pyzeebe.errors import (
    JobAlreadyDeactivatedError,
    ZeebeBackPressureError,
    ZeebeDeadlineExceeded,
    ZeebeGatewayUnavailableError,
    ZeebeInternalError,
)
from pyzeebe.grpc_internals.zeebe_adapter import ZeebeAdapter
from pyzeebe.job.job import JobController
from pyzeebe.task.task import Task

log = logging.getLogger(__name__)

_RETRYABLE = (
    ZeebeBackPressureError,
    ZeebeGatewayUnavailableError,
    ZeebeInternalError,
    ZeebeDeadlineExceeded,
)
# Back-pressure clears within tens of milliseconds on a healthy broker; an outage is waited
# out at the cap, which also bounds how late the first job after it starts.
RETRY_INITIAL_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0


class Slots:
    """``limit`` running jobs at most; waiters wake as soon as one ends."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.taken = 0
        self._changed = asyncio.Condition()

    @property
    def free(self) -> int:
        return self.limit - self.taken

    async def wait_free(self) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.taken < self.limit)
            return self.limit - self.taken

    async def take(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.taken < self.limit)
            self.taken += 1

    async def give_back(self) -> None:
        async with self._changed:
            self.taken -= 1
            self._changed.notify_all()


class _Backoff:
    def __init__(self) -> None:
        self.delay = RETRY_INITIAL_SECONDS

    async def wait(self, task_type: str, error: Exception) -> None:
        log.warning("jobs of %s: %r; again in %.2fs", task_type, error, self.delay)
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, RETRY_MAX_SECONDS)

    def reset(self) -> None:
        self.delay = RETRY_INITIAL_SECONDS


class TaskIntake:
    """The stream, the poll and the running jobs of one task type."""

    def __init__(
        self,
        adapter: ZeebeAdapter,
        task: Task,
        worker_name: str,
        *,
        stream: bool,
        request_timeout_ms: int,
        stream_timeout_seconds: int,
        tenant_ids: list[str] | None,
    ) -> None:
        self.adapter = adapter
        self.task = task
        self.worker_name = worker_name
        self.stream = stream
        self.request_timeout_ms = request_timeout_ms
        self.stream_timeout_seconds = stream_timeout_seconds
        self.tenant_ids = tenant_ids
        self.slots = Slots(task.config.max_running_jobs)
        self.stopping = False
        self._running: set[asyncio.Task[None]] = set()

    async def _hand_over(self, jobs: AsyncIterator[Job]) -> None:
        async for job in jobs:
            await self.slots.take()
            if self.stopping:
                # Not started: the engine offers it again when its activation times out.
                await self.slots.give_back()
                return
            running = asyncio.create_task(self._run(job), name=f"job-{job.key}")
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def _run(self, job: Job) -> None:
        try:
            await self.task.job_handler(job, JobController(job, self.adapter))
        except JobAlreadyDeactivatedError as exc:
            log.warning("job %s was no longer active when answered", exc.job_key)
        except Exception:
            log.exception("job %s (%s) could not be answered", job.key, job.type)
        finally:
            await self.slots.give_back()

    async def _retrying(self, open_jobs: Callable[[], AsyncIterator[Job]]) -> None:
        backoff = _Backoff()
        while not self.stopping:
            try:
                await self._hand_over(open_jobs())
                backoff.reset()
            except ZeebeDeadlineExceeded:
                # An idle long poll that outlived its gRPC deadline: nothing failed, ask again.
                log.debug("jobs of %s: idle poll ended at its deadline", self.task.type)
            except _RETRYABLE as exc:
                await backoff.wait(self.task.type, exc)
            except grpc.aio.AioRpcError as exc:
                await backoff.wait(self.task.type, exc)

    def _poll_once(self) -> AsyncIterator[Job]:
        return self.adapter.activate_jobs(
            task_type=self.task.type,
            worker=self.worker_name,
            timeout=self.task.config.timeout_ms,
            max_jobs_to_activate=min(self.slots.free, self.task.config.max_jobs_to_activate),
            variables_to_fetch=self.task.config.variables_to_fetch or [],
            request_timeout=self.request_timeout_ms,
            tenant_ids=self.tenant_ids,
        )

    async def poll(self) -> None:
        async def when_free() -> AsyncIterator[Job]:
            await self.slots.wait_free()
            async for job in self._poll_once():
                yield job

        await self._retrying(when_free)

    async def stream_jobs(self) -> None:
        await self._retrying(
            lambda: self.adapter.stream_activate_jobs(
                task_type=self.task.type,
                worker=self.worker_name,
                timeout=self.task.config.timeout_ms,
                variables_to_fetch=self.task.config.variables_to_fetch or [],
                stream_request_timeout=self.stream_timeout_seconds,
                tenant_ids=self.tenant_ids,
            )
        )

    async def drain(self) -> None:
        """Take no more jobs; wait for the running ones to be answered."""
        self.stopping = True
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


class JobWorker(ZeebeWorker):
    """A ``ZeebeWorker`` (routers, decorators, exception handlers as pyzeebe builds them)
    whose job intake is :class:`TaskIntake`."""

    def __init__(
        self,
        grpc_channel: grpc.aio.Channel,
        name: str | None = None,
        *,
        stream_enabled: bool = True,
        request_timeout_ms: int = 0,
        stream_timeout_seconds: int = 3600,
        max_connection_retries: int = -1,
        tenant_ids: list[str] | None = None,
    ) -> None:
        super().__init__(
            grpc_channel,
            name=name,
            request_timeout=request_timeout_ms,
            max_connection_retries=max_connection_retries,
            tenant_ids=tenant_ids,
            stream_enabled=stream_enabled,
            stream_request_timeout=stream_timeout_seconds,
        )
        self.intakes: list[TaskIntake] = []

    async def work(self) -> None:
        self.intakes = [
            TaskIntake(
                self.zeebe_adapter,
                task,
                self.name,
                stream=self._stream_enabled,
                request_timeout_ms=self.request_timeout,
                stream_timeout_seconds=self._stream_request_timeout,
                tenant_ids=self.tenant_ids,
            )
            for task in self.tasks
        ]
        async with anyio.create_task_group() as group:
            for intake in self.intakes:
                group.start_soon(intake.poll)
                if intake.stream:
                    group.start_soon(intake.stream_jobs)
            await self._stop_event.wait()
            group.cancel_scope.cancel()
        log.info("job worker stopped")

    async def stop(self) -> None:
        for intake in self.intakes:
            await intake.drain()
        self._stop_event.set()
