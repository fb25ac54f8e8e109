"""Alembic environment: async engine, URL from the panel's settings."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

import panel_core.db.all_models  # noqa: F401 - registers every table
from panel_core.db.models import Base
from panel_core.db.session import create_engine
from panel_core.settings import Settings

target_metadata = Base.metadata


def _url() -> str:
    configured = context.config.attributes.get("database_url")
    # Only the database URL matters here; the other settings (and their checks) do not.
    return str(configured or os.environ.get("PANEL_DATABASE_URL") or Settings().database_url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
