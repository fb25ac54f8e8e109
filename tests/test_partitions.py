"""An engine of three partitions serves credit cases end to end: the instances spread over
all of them, and every case's first task reaches the panel.

A stack of its own (Redis, PostgreSQL, a second broker, the workers), for this module only:
the session's engine has one partition.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from devtools.camunda import CamundaEngine, ensure_distribution
from devtools.postgres import PostgresServer
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from panel_core import constants as c
from panel_core.cli import deploy, migrate
from panel_core.db.models import PanelTask
from panel_core.db.session import create_engine, create_session_factory
from panel_core.engine.mirror import record_payload
from panel_core.settings import Settings
from tests import credit
from tests.conftest import REPO_ROOT, _settings, settings_env
from tests.helpers import eventually, open_case_via_channel, person

pytestmark = pytest.mark.engine

PARTITIONS = 3
CASES = 6


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = tmp_path_factory.mktemp("partitions")
    ensure_distribution()
    with RedisServer() as redis, PostgresServer() as postgres:
        engine = CamundaEngine(
            data_dir=base / "camunda-data",
            redis_url=redis.url,
            exported_value_types=c.EXPORTED_VALUE_TYPES,
            redis_delete_after_acknowledge=False,
            partitions=PARTITIONS,
            # A second JVM next to the session's: kept small.
            max_heap="512m",
        )
        engine.start()
        try:
            assert engine.topology()["partitionsCount"] == PARTITIONS
            settings = _settings(redis, postgres, engine, base / "documents")
            migrate(settings.database_url)
            asyncio.run(deploy(settings))
            log_path = base / "workers.log"
            with log_path.open("wb") as log:
                workers = spawn_watched(
                    [sys.executable, "-m", "workers.main"],
                    cwd=REPO_ROOT,
                    env=settings_env(settings),
                    stdout=log,
                )
            try:
                time.sleep(0.5)
                assert workers.poll() is None, log_path.read_text()
                yield settings
            finally:
                terminate_watched(workers, timeout=15)
        finally:
            engine.stop()


async def _created_tasks(redis_url: str, instances: set[int]) -> list[dict[str, Any]]:
    redis = Redis.from_url(redis_url)
    try:
        entries: Any = await redis.xrange(c.STREAM_USER_TASK)
    finally:
        await redis.aclose()
    records = [json.loads(record_payload(fields)) for _id, fields in entries]
    return [
        r
        for r in records
        if r.get("intent") == "CREATED"
        and int((r.get("value") or {}).get("processInstanceKey", -1)) in instances
    ]


async def test_cases_on_every_partition_reach_the_panel(partitioned: Settings) -> None:
    opened = [
        await open_case_via_channel(partitioned, [person(credit.ROLE_PRIMARY_BORROWER, i)])
        for i in range(CASES)
    ]
    instances = {int(case["processInstanceKey"]) for case in opened}
    db = create_engine(partitioned.database_url)
    sessions = create_session_factory(db)
    try:

        async def panel_tasks() -> list[PanelTask] | None:
            async with sessions() as session:
                rows = (
                    await session.scalars(
                        select(PanelTask).where(PanelTask.process_instance_key.in_(instances))
                    )
                ).all()
            return list(rows) if len(rows) == 3 * len(instances) else None

        tasks = await eventually(panel_tasks, within=60)
    finally:
        await db.dispose()
    # The first step gives the participant three tasks at once, on every partition alike.
    first_step = {
        credit.ELEMENT_TASK_CONSENTS,
        credit.ELEMENT_TASK_INCOME,
        credit.ELEMENT_TASK_QUESTIONNAIRE,
    }
    for instance in instances:
        assert {t.element_id for t in tasks if t.process_instance_key == instance} == first_step
    records = await _created_tasks(partitioned.redis_url, instances)
    assert {int(r["value"]["processInstanceKey"]) for r in records} == instances
    # The engine spreads new instances round robin; each record names its partition.
    assert {r["partitionId"] for r in records} == set(range(1, PARTITIONS + 1))
    # A key carries its partition in its top bits (Zeebe's Protocol.decodePartitionId).
    assert {key >> 51 for key in instances} == set(range(1, PARTITIONS + 1))
