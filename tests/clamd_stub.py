"""A local stand-in for ClamAV's clamd, speaking its INSTREAM protocol, for the fast tests.

It listens on a free loopback port and on a unix socket, answers ``PING`` and ``INSTREAM`` in
both the NUL-terminated (``z``) and newline-terminated (``n``) forms, and reports the EICAR test
file wherever it occurs in the stream, also split across chunks. Each test can switch it to
fail the ways a real daemon does: answer an ERROR, hit its size limit, drop the connection
mid-stream, or never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from devtools.ports import LOOPBACK
from panel_core.documents.scanning import EICAR_SIGNATURE

SIZE_LIMIT_REPLY = b"INSTREAM size limit exceeded. ERROR"
# What clamd says when the engine itself fails (cl_strerror(CL_EMEM)).
ENGINE_ERROR_REPLY = b"stream: Can't allocate memory ERROR"


class Behaviour(enum.Enum):
    SCAN = "scan"
    # Reads the whole stream, then answers with an engine error.
    ERROR = "error"
    # Answers as clamd does once a stream passes its StreamMaxLength: at once, then hangs up.
    SIZE_LIMIT = "size-limit"
    # Hangs up after the first chunk without a word.
    CLOSE = "close"
    # Reads the whole stream and never answers.
    SILENT = "silent"


class ClamdStub:
    def __init__(self) -> None:
        self.behaviour = Behaviour.SCAN
        # Bytes of INSTREAM data received, over all connections.
        self.received = 0
        self.chunks = 0
        self._servers: list[asyncio.Server] = []
        self._directory = Path(tempfile.mkdtemp(prefix="clamd-"))
        # Short, so it fits in a unix socket address (108 bytes) wherever the temp dir is.
        self.socket_path = self._directory / "clamd.sock"
        self.port = 0

    @property
    def tcp_address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def unix_address(self) -> str:
        return str(self.socket_path)

    def address(self, transport: str) -> str:
        return self.unix_address if transport == "unix" else self.tcp_address

    async def start(self) -> None:
        tcp = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = int(tcp.sockets[0].getsockname()[1])
        unix = await asyncio.start_unix_server(self._serve, self.socket_path)
        self._servers = [tcp, unix]

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        shutil.rmtree(self._directory, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._session(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        form = await reader.readexactly(1)
        if form not in (b"z", b"n"):
            writer.write(b"UNKNOWN COMMAND\n")
            return
        end = b"\0" if form == b"z" else b"\n"
        command = (await reader.readuntil(end))[:-1]
        if command == b"PING":
            reply = b"PONG"
        elif command == b"INSTREAM":
            reply = await self._instream(reader)
        else:
            reply = b"UNKNOWN COMMAND"
        if reply:
            writer.write(reply + end)
            await writer.drain()

    async def _instream(self, reader: asyncio.StreamReader) -> bytes:
        """The reply to one stream, or nothing to hang up without one."""
        tail = b""
        found = False
        while True:
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            if length == 0:
                break
            chunk = await reader.readexactly(length)
            self.received += length
            self.chunks += 1
            if self.behaviour is Behaviour.SIZE_LIMIT:
                return SIZE_LIMIT_REPLY
            if self.behaviour is Behaviour.CLOSE:
                return b""
            window = tail + chunk
            found = found or EICAR_SIGNATURE in window
            tail = window[-(len(EICAR_SIGNATURE) - 1) :]
        if self.behaviour is Behaviour.SILENT:
            # Until the client gives up and hangs up.
            await reader.read()
            return b""
        if self.behaviour is Behaviour.ERROR:
            return ENGINE_ERROR_REPLY
        return b"stream: Eicar-Test-Signature FOUND" if found else b"stream: OK"


@asynccontextmanager
async def running_clamd() -> AsyncIterator[ClamdStub]:
    stub = ClamdStub()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()
