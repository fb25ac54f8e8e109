"""Files judged by content, scanned and streamed to storage; nothing kept of a refused one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bff.controllers.documents import content_disposition
from panel_core.db.models import Document, PanelTask
from panel_core.documents.content import JPEG, PDF, PNG, detect
from panel_core.documents.scanning import EICAR_SIGNATURE, EicarScanner
from panel_core.documents.service import (
    Limits,
    UploadRefusedError,
    clean_filename,
    download_name,
    store_upload,
)
from panel_core.documents.storage import LocalDiskStorage
from panel_core.i18n import use_locale
from tests.helpers import PDF_BYTES


class FakeSession:
    """Collects what would be inserted; the service itself never queries here."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, item: Any) -> None:
        self.added.append(item)

    async def flush(self) -> None:
        return None


def task() -> PanelTask:
    return PanelTask(id=uuid.uuid4(), case_id=uuid.uuid4(), element_id="task-income")


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def upload(
    root: Path, data: bytes, name: str = "proof.pdf", max_bytes: int = 10_000
) -> Document:
    document: Document = await store_upload(
        FakeSession(),  # type: ignore[arg-type]
        LocalDiskStorage(root),
        EicarScanner(),
        task=task(),
        participant_id=uuid.uuid4(),
        field_key="incomeProof",
        filename=name,
        chunks=chunks(data),
        limits=Limits(max_bytes=max_bytes),
    )
    return document


def test_types_are_recognised_by_their_first_bytes() -> None:
    assert detect(PDF_BYTES[:16]) == PDF
    assert detect(b"\x89PNG\r\n\x1a\n" + b"\0" * 8) == PNG
    assert detect(b"\xff\xd8\xff\xe0" + b"\0" * 12) == JPEG
    assert detect(b"MZ\x90\x00" + b"\0" * 12) is None  # a Windows program
    assert detect(b"<html><script>") is None


async def test_a_pdf_is_streamed_to_storage_under_a_generated_name(tmp_path: Path) -> None:
    document = await upload(tmp_path, PDF_BYTES, name="../../etc/Zaświadczenie.pdf")
    files = stored_files(tmp_path)
    assert len(files) == 1
    assert files[0].read_bytes() == PDF_BYTES
    assert "Zaświadczenie" not in str(files[0]) and document.storage_key in files[0].name
    assert document.filename == "Zaświadczenie.pdf"
    assert document.media_type == PDF and document.size_bytes == len(PDF_BYTES)


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"just some text pretending", "statement.pdf", "is not a PDF, JPG or PNG"),
        (b"MZ\x90\x00\x03" + b"\0" * 40, "invoice.pdf", "is not a PDF, JPG or PNG"),
        (EICAR_SIGNATURE, "eicar.pdf", "is not a PDF, JPG or PNG"),
        (PDF_BYTES + EICAR_SIGNATURE + b"\n%%EOF\n", "eicar-inside.pdf", "contains a virus"),
        (PDF_BYTES * 1000, "huge.pdf", "is larger than"),
        (b"", "empty.pdf", "is empty"),
    ],
)
async def test_refused_files_leave_nothing_behind(
    tmp_path: Path, data: bytes, name: str, reason: str
) -> None:
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, data, name=name)
    assert reason in str(refused.value)
    assert name in str(refused.value)
    assert stored_files(tmp_path) == []


async def test_refusals_are_in_polish_by_default(tmp_path: Path) -> None:
    with pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, b"plain text here!!", name="a.pdf")
    assert "nie jest plikiem PDF" in str(refused.value)


def test_the_scanner_finds_a_signature_split_across_chunks() -> None:
    scan = EicarScanner().start()
    half = len(EICAR_SIGNATURE) // 2
    scan.feed(b"%PDF-1.4 " + EICAR_SIGNATURE[:half])
    scan.feed(EICAR_SIGNATURE[half:] + b" trailer")
    assert scan.infected() == "EICAR-Test-File"
    clean = EicarScanner().start()
    clean.feed(PDF_BYTES)
    assert clean.infected() is None


def test_names_offered_for_download_are_safe() -> None:
    assert clean_filename("C:\\Users\\me\\skan\x00.pdf") == "skan.pdf"
    header = content_disposition('Zaświadczenie "2026".pdf')
    assert header.startswith('attachment; filename="Za_wiadczenie__2026_.pdf"')
    assert "filename*=UTF-8''Za%C5%9Bwiadczenie%20%222026%22.pdf" in header
    document = Document(filename="photo.pdf", media_type=JPEG)
    # The extension follows the real content, so a browser never guesses another type.
    assert download_name(document) == "photo.jpg"
