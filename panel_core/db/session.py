"""Async engine and session factory."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Registers the after-transaction hooks every session of the panel follows.
from panel_core.db import transaction_hooks  # noqa: F401


def create_engine(
    database_url: str, *, pool_size: int | None = None, max_overflow: int | None = None
) -> AsyncEngine:
    """``pool_size``/``max_overflow`` size a server database's pool (SQLAlchemy's 5 and 10
    where not given); SQLite's pools take no size."""
    sized: dict[str, int] = {}
    if not database_url.startswith("sqlite"):
        if pool_size is not None:
            sized["pool_size"] = pool_size
        if max_overflow is not None:
            sized["max_overflow"] = max_overflow
    return create_async_engine(database_url, pool_pre_ping=True, **sized)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
