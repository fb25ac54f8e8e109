"""The malware scanner is chosen by the settings; clamd is asked while the file streams in.

Against a local stand-in of clamd (``tests/clamd_stub.py``), over TCP and a unix socket: a
clean file is kept, the EICAR test file is refused, and whenever clamd cannot answer (down,
an ERROR, its size limit, a dropped connection, no answer in time) the upload fails closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.ports import LOOPBACK, free_port
from panel_core.documents.scanning import (
    CLEAN,
    EICAR_SIGNATURE,
    ClamdScanner,
    EicarScanner,
    Outcome,
    ScannerConfigurationError,
    Verdict,
    build_scanner,
    parse_reply,
)
from panel_core.documents.service import UploadRefusedError
from panel_core.i18n import use_locale
from panel_core.settings import Settings
from tests.clamd_stub import Behaviour, ClamdStub, running_clamd
from tests.helpers import PDF_BYTES, eventually
from tests.test_documents_unit import stored_files, upload

TRY_AGAIN = (
    "We could not check “proof.pdf” for viruses just now. Please try again in a few minutes."
)


@pytest.fixture(params=["tcp", "unix"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdStub]:
    async with running_clamd() as stub:
        yield stub


def clamd_scanner(address: str, timeout: float = 5.0) -> ClamdScanner:
    settings = Settings(
        document_scanner="clamd", clamd_address=address, clamd_timeout_seconds=timeout
    )
    scanner = build_scanner(settings)
    assert isinstance(scanner, ClamdScanner)
    return scanner


def three_pieces(data: bytes) -> list[bytes]:
    third = len(data) // 3
    return [data[:third], data[third : 2 * third], data[2 * third :]]


async def test_a_clean_file_is_kept(tmp_path: Path, clamd: ClamdStub, transport: str) -> None:
    scanner = clamd_scanner(clamd.address(transport))
    document = await upload(tmp_path, three_pieces(PDF_BYTES), scanner=scanner)
    assert document.size_bytes == len(PDF_BYTES)
    assert clamd.received == len(PDF_BYTES) and clamd.chunks == 3
    assert len(stored_files(tmp_path)) == 1


async def test_the_eicar_file_split_across_two_chunks_is_refused(
    tmp_path: Path, clamd: ClamdStub, transport: str
) -> None:
    half = len(EICAR_SIGNATURE) // 2
    infected = [PDF_BYTES + EICAR_SIGNATURE[:half], EICAR_SIGNATURE[half:] + b"\n%%EOF\n"]
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, infected, scanner=clamd_scanner(clamd.address(transport)))
    assert str(refused.value) == (
        "“proof.pdf” was refused because it contains a virus or other malicious content."
    )
    assert clamd.chunks == 2
    assert stored_files(tmp_path) == []


async def test_the_file_reaches_clamd_while_it_is_still_arriving(
    tmp_path: Path, clamd: ClamdStub, transport: str
) -> None:
    first, rest = PDF_BYTES[:100], PDF_BYTES[100:]

    async def first_chunk_scanned() -> bool:
        return clamd.received == len(first)

    async def arriving() -> AsyncIterator[bytes]:
        yield first
        await eventually(first_chunk_scanned, within=5)
        yield rest

    await upload(tmp_path, arriving(), scanner=clamd_scanner(clamd.address(transport)))
    assert clamd.received == len(PDF_BYTES)


@pytest.mark.parametrize(
    "behaviour", [Behaviour.ERROR, Behaviour.SIZE_LIMIT, Behaviour.CLOSE, Behaviour.SILENT]
)
async def test_an_upload_fails_closed_when_clamd_cannot_answer(
    tmp_path: Path, clamd: ClamdStub, transport: str, behaviour: Behaviour
) -> None:
    clamd.behaviour = behaviour
    scanner = clamd_scanner(clamd.address(transport), timeout=0.5)
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, [PDF_BYTES[:200], PDF_BYTES[200:]], scanner=scanner)
    assert str(refused.value) == TRY_AGAIN
    assert stored_files(tmp_path) == []


async def test_an_upload_fails_closed_when_clamd_is_down(tmp_path: Path, transport: str) -> None:
    async with running_clamd() as stopped:
        address = stopped.unix_address if transport == "unix" else f"{LOOPBACK}:{free_port()}"
    with use_locale("en"), pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, PDF_BYTES, scanner=clamd_scanner(address))
    assert str(refused.value) == TRY_AGAIN
    assert stored_files(tmp_path) == []


async def test_the_try_again_refusal_is_in_polish_by_default(tmp_path: Path) -> None:
    scanner = clamd_scanner(f"{LOOPBACK}:{free_port()}")
    with pytest.raises(UploadRefusedError) as refused:
        await upload(tmp_path, PDF_BYTES, scanner=scanner)
    assert "Nie udało się teraz sprawdzić pliku „proof.pdf” pod kątem wirusów" in str(refused.value)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (b"stream: OK\0", CLEAN),
        (
            b"stream: Win.Test.EICAR_HDB-1 FOUND\0",
            Verdict(Outcome.INFECTED, "Win.Test.EICAR_HDB-1"),
        ),
        (
            b"INSTREAM size limit exceeded. ERROR\0",
            Verdict(Outcome.UNAVAILABLE, "INSTREAM size limit exceeded. ERROR"),
        ),
        (b"stream: Can't allocate memory ERROR\0", None),
        (b"UNKNOWN COMMAND\0", None),
        (b"\0", None),
    ],
)
def test_only_a_clear_answer_from_clamd_is_a_verdict(reply: bytes, verdict: Verdict | None) -> None:
    parsed = parse_reply(reply)
    if verdict is None:
        assert parsed.outcome is Outcome.UNAVAILABLE
    else:
        assert parsed == verdict


async def test_the_stub_speaks_both_forms_of_the_protocol(clamd: ClamdStub, transport: str) -> None:
    async def ask(message: bytes, end: bytes) -> bytes:
        if transport == "unix":
            reader, writer = await asyncio.open_unix_connection(clamd.unix_address)
        else:
            reader, writer = await asyncio.open_connection(LOOPBACK, clamd.port)
        writer.write(message)
        reply = await reader.readuntil(end)
        writer.close()
        return reply

    assert await ask(b"zPING\0", b"\0") == b"PONG\0"
    stream = len(EICAR_SIGNATURE).to_bytes(4, "big") + EICAR_SIGNATURE + bytes(4)
    assert await ask(b"nINSTREAM\n" + stream, b"\n") == b"stream: Eicar-Test-Signature FOUND\n"


def test_the_settings_choose_the_scanner() -> None:
    assert isinstance(build_scanner(Settings()), EicarScanner)
    assert isinstance(build_scanner(Settings(document_scanner="eicar")), EicarScanner)
    for address in ("127.0.0.1:3310", "[::1]:3310", "clamd.internal:3310", "/run/clamd.ctl"):
        assert isinstance(clamd_scanner(address), ClamdScanner)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (Settings(document_scanner="sophos"), "PANEL_DOCUMENT_SCANNER must be one of eicar, clamd"),
        (Settings(document_scanner="clamd", clamd_address="clamd"), "PANEL_CLAMD_ADDRESS"),
        (Settings(document_scanner="clamd", clamd_address="clamd:http"), "PANEL_CLAMD_ADDRESS"),
        (
            Settings(document_scanner="clamd", clamd_timeout_seconds=0),
            "PANEL_CLAMD_TIMEOUT_SECONDS",
        ),
    ],
)
def test_a_wrong_scanner_setting_is_refused_at_start(settings: Settings, complaint: str) -> None:
    with pytest.raises(ScannerConfigurationError, match=complaint):
        build_scanner(settings)
