"""Memory a document upload takes on its way to storage: streamed vs. Litestar's form parser.

Run: ``.venv/bin/python -m bench.upload_memory``. Both paths read the same multipart body (a
text field and three 8 MiB files) arriving in 64 KiB chunks and pass every file byte to the
same sink; the baseline is ``request.form()``'s parser, which spools each file (its first
MiB in memory) before a handler can read it. Prints the peak Python heap of each and their
ratio; the streamed path should stay near one network chunk whatever the file size.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from litestar._multipart import parse_multipart_form
from litestar.datastructures import UploadFile

from bench.report import Figure
from panel_web.multipart import MultipartReader

BOUNDARY = b"----bench-boundary"
CHUNK = 64 * 1024
FILE_BYTES = 8 * 1024 * 1024
FILES = 3


def make_body() -> bytes:
    parts: list[tuple[bytes, bytes | None, bytes]] = [(b"_csrf_token", None, b"x" * 64)]
    parts += [(b"proof", f"proof-{n}.pdf".encode(), os.urandom(FILE_BYTES)) for n in range(FILES)]
    out = b""
    for name, filename, content in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename:
            disposition += b'; filename="' + filename + b'"'
        out += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n"
        out += content + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


async def arriving(body: bytes) -> AsyncGenerator[bytes, None]:
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        yield bytes(view[start : start + CHUNK])


async def streamed(body: bytes) -> int:
    received = 0
    reader = MultipartReader(arriving(body), BOUNDARY)
    async for _segment in reader.segments():
        async for chunk in reader.body():
            received += len(chunk)
    return received


async def spooled(body: bytes) -> int:
    received = 0
    fields = await parse_multipart_form(arriving(body), BOUNDARY)
    for values in fields.values():
        for value in values:
            if isinstance(value, UploadFile):
                while chunk := await value.read(CHUNK):
                    received += len(chunk)
                await value.close()
            else:
                received += len(value)
    return received


def peak(run: Callable[[bytes], Coroutine[Any, Any, int]], body: bytes) -> tuple[int, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    received = asyncio.run(run(body))
    top = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return top, received


def measure() -> tuple[int, int, int]:
    """The body's size, then the peak heap of the baseline and of the streamed path."""
    body = make_body()
    baseline, got_baseline = peak(spooled, body)
    ours, got_ours = peak(streamed, body)
    assert got_ours >= FILES * FILE_BYTES and got_baseline >= FILES * FILE_BYTES
    return len(body), baseline, ours


def figures() -> list[Figure]:
    _, baseline, ours = measure()
    return [
        Figure(
            "upload memory",
            "peak heap KiB",
            ours / 2**10,
            baseline / 2**10,
            "Litestar request.form (spooled)",
            note=f"{FILES} files of {FILE_BYTES // 2**20} MiB in {CHUNK // 1024} KiB chunks",
        )
    ]


def main() -> None:
    size, baseline, ours = measure()
    body_mib = size / 2**20
    print(f"body: {body_mib:.1f} MiB in {CHUNK // 1024} KiB chunks, {FILES} files")
    print(f"baseline (Litestar request.form, spooled): peak heap {baseline / 2**10:8.0f} KiB")
    print(f"streamed (panel_web.multipart):                  peak heap {ours / 2**10:8.0f} KiB")
    print(f"ratio streamed / baseline: {ours / baseline:.3f}")


if __name__ == "__main__":
    main()
