"""The multipart reader hands a file on while the body is still arriving, chunk by chunk."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from panel_web.multipart import MultipartReader

BOUNDARY = b"----panel-test-boundary"
CHUNK = 64 * 1024


def body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += b"--" + BOUNDARY + b"\r\n"
        out += f"Content-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


class Arriving:
    """A request body arriving in network-sized chunks, counting what has arrived."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.arrived = 0

    async def stream(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            chunk = self.data[start : start + CHUNK]
            self.arrived += len(chunk)
            yield chunk


@pytest.mark.asyncio
async def test_a_file_is_handed_on_in_chunks_before_the_body_has_arrived() -> None:
    content = os.urandom(4 * 1024 * 1024)
    arriving = Arriving(
        body(
            ("_csrf_token", None, b"token"),
            ("proof", "a.pdf", content),
            ("action", None, b"send"),
        )
    )
    reader = MultipartReader(arriving.stream(), BOUNDARY)
    fields: dict[str, str] = {}
    received = bytearray()
    arrived_at_first_chunk = None
    largest = 0
    async for segment in reader.segments():
        if segment.filename is None:
            fields[segment.name] = b"".join([c async for c in reader.body()]).decode()
            continue
        async for chunk in reader.body():
            if arrived_at_first_chunk is None:
                arrived_at_first_chunk = arriving.arrived
            largest = max(largest, len(chunk))
            received.extend(chunk)
    assert bytes(received) == content
    assert fields == {"_csrf_token": "token", "action": "send"}
    # The first bytes were handed on when a single network chunk had arrived, and each
    # chunk handed on is about the size of one that arrived (the parser holds back the few
    # bytes that might start a boundary), never the file.
    assert arrived_at_first_chunk == CHUNK
    assert largest <= CHUNK + len(BOUNDARY) + 8


@pytest.mark.asyncio
async def test_what_a_handler_leaves_unread_is_read_past() -> None:
    arriving = Arriving(
        body(("proof", "big.pdf", os.urandom(300_000)), ("action", None, b"upload"))
    )
    reader = MultipartReader(arriving.stream(), BOUNDARY)
    seen = []
    async for segment in reader.segments():
        if segment.filename is None:
            seen.append((segment.name, b"".join([c async for c in reader.body()])))
        else:
            # A refused file: the handler stops after its first chunk.
            async for _chunk in reader.body():
                break
    assert seen == [("action", b"upload")]
