"""Document files follow the database transaction that refers to them (PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.db import transaction_hooks
from panel_core.db.models import Document, DocumentState, PanelTask
from panel_core.documents.scanning import EicarScanner
from panel_core.documents.service import Limits, remove_document, store_upload
from panel_core.documents.storage import LocalDiskStorage
from tests import credit
from tests.conftest import Stack
from tests.helpers import PDF_BYTES, eventually, open_case_via_channel, person

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def one_chunk() -> AsyncIterator[bytes]:
    yield PDF_BYTES


async def upload(session: AsyncSession, storage: LocalDiskStorage, task: PanelTask) -> Document:
    assert task.participant_id is not None
    return await store_upload(
        session,
        storage,
        EicarScanner(),
        task=task,
        participant_id=task.participant_id,
        field_key="incomeProof",
        filename="proof.pdf",
        chunks=one_chunk(),
        limits=Limits(max_bytes=1024 * 1024),
    )


@pytest.fixture
async def income_task(stack: Stack, sessions: async_sessionmaker[AsyncSession]) -> PanelTask:
    """A real participant's real income task: the document rows' foreign keys hold."""
    case = await open_case_via_channel(stack.settings, [person(credit.ROLE_PRIMARY_BORROWER, 0)])

    async def found() -> PanelTask | None:
        async with sessions() as session:
            return await session.scalar(
                select(PanelTask).where(
                    PanelTask.case_id == uuid.UUID(case["caseId"]),
                    PanelTask.element_id == credit.ELEMENT_TASK_INCOME,
                )
            )

    return await eventually(found, within=60)


async def test_a_file_whose_row_is_rolled_back_is_deleted(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, income_task: PanelTask
) -> None:
    storage = LocalDiskStorage(tmp_path / "documents")
    async with sessions() as session:
        document = await upload(session, storage, income_task)
        assert storage.exists(document.storage_key)
        await session.rollback()
    await transaction_hooks.settle()
    assert not storage.exists(document.storage_key)

    # Ending without a commit (an error on the way, a closed session) is the same.
    async with sessions() as session:
        document = await upload(session, storage, income_task)
    await transaction_hooks.settle()
    assert not storage.exists(document.storage_key)


async def test_a_committed_upload_keeps_its_file(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, income_task: PanelTask
) -> None:
    storage = LocalDiskStorage(tmp_path / "documents")
    async with sessions() as session:
        document = await upload(session, storage, income_task)
        await session.commit()
    await transaction_hooks.settle()
    assert storage.exists(document.storage_key)


async def test_a_removed_file_goes_only_once_the_removal_is_committed(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, income_task: PanelTask
) -> None:
    storage = LocalDiskStorage(tmp_path / "documents")
    async with sessions() as session:
        document = await upload(session, storage, income_task)
        await session.commit()
    async with sessions() as session:
        loaded = await session.get(Document, document.id)
        assert loaded is not None
        await remove_document(session, storage, loaded)
        # Not committed: the row still says "uploaded", and its file must still be there.
        await session.rollback()
    await transaction_hooks.settle()
    assert storage.exists(document.storage_key)
    async with sessions() as session:
        loaded = await session.get(Document, document.id)
        assert loaded is not None and loaded.state == DocumentState.UPLOADED
        await remove_document(session, storage, loaded)
        assert storage.exists(document.storage_key)
        await session.commit()
    await transaction_hooks.settle()
    assert not storage.exists(document.storage_key)
