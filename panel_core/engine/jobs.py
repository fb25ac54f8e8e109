"""The retries each failing job has left, from the exporter's ``JOB`` records.

Only jobs that fail are kept (``FAILED``, ``RETRIES_UPDATED``); one that ends is forgotten.
The record's position decides between two records of the same job, whichever consumer
applies them first. The variables and headers a ``JOB`` record carries are never read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import msgspec
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import EngineJob
from panel_core.engine.records import UnreadableRecordError

# Records after which the job has the retries they carry.
RETRIES_SET = frozenset({"FAILED", "RETRIES_UPDATED"})
# Records after which the job is gone.
ENDED = frozenset({"COMPLETED", "CANCELED", "ERROR_THROWN"})


class _JobValue(msgspec.Struct, frozen=True, rename="camel"):
    retries: int
    process_instance_key: int = -1
    element_instance_key: int = -1
    type: str = ""


class _JobRecord(msgspec.Struct, frozen=True, rename="camel"):
    intent: str
    record_type: str
    key: int = -1
    position: int = 0
    value: _JobValue | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    intent: str
    job_key: int
    process_instance_key: int
    element_instance_key: int
    job_type: str
    retries: int
    position: int


def read_job(payload: bytes | str) -> JobEvent | None:
    try:
        record = msgspec.json.decode(payload, type=_JobRecord)
    except msgspec.MsgspecError as exc:
        raise UnreadableRecordError(f"not a record this version reads: {exc}") from exc
    if record.record_type != "EVENT" or record.intent not in RETRIES_SET | ENDED:
        return None
    if record.value is None:
        raise UnreadableRecordError("the record has no value")
    if record.key <= 0:
        raise UnreadableRecordError(f"job record without a key: {record.key}")
    value = record.value
    return JobEvent(
        record.intent,
        record.key,
        value.process_instance_key,
        value.element_instance_key,
        value.type,
        value.retries,
        record.position,
    )


async def record_job(session: AsyncSession, record: JobEvent) -> None:
    if record.intent in ENDED:
        await session.execute(delete(EngineJob).where(EngineJob.job_key == record.job_key))
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(EngineJob).values(
        job_key=record.job_key,
        process_instance_key=record.process_instance_key,
        element_instance_key=record.element_instance_key,
        job_type=record.job_type,
        retries=record.retries,
        position=record.position,
    )
    row, excluded = EngineJob, statement.excluded
    newer = excluded.position > row.position
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["job_key"],
            set_={
                name: case((newer, getattr(excluded, name)), else_=getattr(row, name))
                for name in ("retries", "job_type", "element_instance_key", "position")
            },
        )
    )


async def retries_left(session: AsyncSession, job_keys: Collection[int]) -> dict[int, int]:
    """The retries of these jobs as last reported; a job never seen failing is left out."""
    if not job_keys:
        return {}
    rows = await session.execute(
        select(EngineJob.job_key, EngineJob.retries).where(EngineJob.job_key.in_(list(job_keys)))
    )
    return {key: retries for key, retries in rows}
