"""The Alembic migrations build exactly the schema the models describe, on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import panel_core.db.all_models  # noqa: F401 - registers every table
from panel_core.db.models import Base
from panel_core.db.session import create_engine
from tests.conftest import Stack

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_database_matches_the_models(stack: Stack) -> None:
    engine = create_engine(stack.settings.database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
