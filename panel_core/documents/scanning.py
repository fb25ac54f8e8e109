"""The malware scan every upload passes through before it is kept.

A scan starts when an upload begins, is fed each chunk as the file streams to storage, and gives
its verdict at the end: clean, infected (with what was found) or unavailable. ``EicarScanner``
recognises only the EICAR anti-malware test file, so the hook is proven end to end without a
virus engine (demos, tests); ``ClamdScanner`` streams the file to ClamAV's daemon while it
arrives. ``build_scanner`` picks one from the settings; a bank may add its own (an ICAP service)
by implementing ``Scanner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from panel_core.settings import Settings

# The EICAR test string, split so this source file does not itself trip a scanner.
EICAR_SIGNATURE = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Outcome(enum.Enum):
    CLEAN = "clean"
    INFECTED = "infected"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    # What was found when infected; why there is no answer when unavailable (for the logs).
    detail: str = ""


CLEAN = Verdict(Outcome.CLEAN)


class Scan(Protocol):
    """One file being scanned, fed chunk by chunk as it streams to storage."""

    async def feed(self, chunk: bytes) -> None: ...

    async def verdict(self) -> Verdict:
        """Asked once, after the last chunk."""
        ...


class Scanner(Protocol):
    def scan(self) -> AbstractAsyncContextManager[Scan]:
        """A new scan; leaving the block releases it, whether or not its verdict was asked."""
        ...


class ScannerConfigurationError(RuntimeError):
    pass


class _EicarScan:
    def __init__(self) -> None:
        self._tail = b""
        self._found = False

    async def feed(self, chunk: bytes) -> None:
        # Keep the end of the previous chunk so a signature split across chunks is found.
        window = self._tail + chunk
        if EICAR_SIGNATURE in window:
            self._found = True
        self._tail = window[-(len(EICAR_SIGNATURE) - 1) :]

    async def verdict(self) -> Verdict:
        return Verdict(Outcome.INFECTED, "EICAR-Test-File") if self._found else CLEAN


class EicarScanner:
    @asynccontextmanager
    async def scan(self) -> AsyncIterator[Scan]:
        yield _EicarScan()


_Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

# The "z" form: the command and the reply are both terminated by a NUL byte.
_INSTREAM = b"zINSTREAM\0"
_END_OF_STREAM = struct.pack(">I", 0)
# A reply is one short line; anything longer is not clamd speaking.
_REPLY_LIMIT = 4096


class ClamdScanner:
    """ClamAV's daemon, asked through its INSTREAM command over TCP or a unix socket.

    The connection is opened when the scan starts and every chunk is forwarded as it arrives,
    so clamd scans the file while it streams. Every network step (connecting, each chunk, the
    reply) has ``timeout_seconds``. Whatever keeps clamd from answering makes the verdict
    unavailable, which the upload treats as a refusal: a file is never kept unscanned.
    """

    def __init__(self, address: str, *, timeout_seconds: float) -> None:
        self._connect = _connector(address)
        self._timeout = timeout_seconds

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[Scan]:
        scan = _ClamdScan(self._timeout)
        await scan.open(self._connect)
        try:
            yield scan
        finally:
            await scan.close()


class _ClamdScan:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._failure = ""

    async def open(self, connect: _Connect) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                self._reader, self._writer = await connect()
                self._writer.write(_INSTREAM)
                await self._writer.drain()
        except (OSError, TimeoutError) as error:
            await self._fail(f"cannot reach clamd: {error!r}")

    async def feed(self, chunk: bytes) -> None:
        # An empty chunk would tell clamd the stream has ended.
        if self._writer is None or not chunk:
            return
        try:
            async with asyncio.timeout(self._timeout):
                self._writer.writelines((struct.pack(">I", len(chunk)), chunk))
                await self._writer.drain()
        except (OSError, TimeoutError) as error:
            await self._fail(f"clamd stopped reading the stream: {error!r}")

    async def verdict(self) -> Verdict:
        if self._writer is None or self._reader is None:
            return Verdict(Outcome.UNAVAILABLE, self._failure)
        try:
            async with asyncio.timeout(self._timeout):
                self._writer.write(_END_OF_STREAM)
                await self._writer.drain()
                reply = await self._reader.readuntil(b"\0")
        except asyncio.IncompleteReadError as error:
            return Verdict(Outcome.UNAVAILABLE, f"clamd closed the connection: {error.partial!r}")
        except (OSError, TimeoutError, asyncio.LimitOverrunError) as error:
            return Verdict(Outcome.UNAVAILABLE, f"no answer from clamd: {error!r}")
        finally:
            await self.close()
        return parse_reply(reply)

    async def _fail(self, failure: str) -> None:
        # clamd says why before it drops a stream (its size limit, mostly): keep that for the logs.
        said = await self._last_words()
        self._failure = f"{failure}; clamd said {said!r}" if said else failure
        await self.close()

    async def _last_words(self) -> str:
        if self._reader is None:
            return ""
        with contextlib.suppress(OSError, TimeoutError, EOFError, asyncio.LimitOverrunError):
            async with asyncio.timeout(min(self._timeout, 1.0)):
                return (await self._reader.readuntil(b"\0")).rstrip(b"\0").decode(errors="replace")
        return ""

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def parse_reply(raw: bytes) -> Verdict:
    """clamd's answer to INSTREAM; anything it does not clearly call clean or infected is not."""
    text = raw.rstrip(b"\0").decode(errors="replace").strip()
    if text.endswith("ERROR"):
        return Verdict(Outcome.UNAVAILABLE, text)
    if text == "stream: OK":
        return CLEAN
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        return Verdict(Outcome.INFECTED, text.removeprefix("stream: ").removesuffix(" FOUND"))
    return Verdict(Outcome.UNAVAILABLE, f"unexpected reply {text!r}")


def _connector(address: str) -> _Connect:
    if "/" in address:
        return functools.partial(asyncio.open_unix_connection, address, limit=_REPLY_LIMIT)
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ScannerConfigurationError(
            f"PANEL_CLAMD_ADDRESS must be host:port or the path of a unix socket, not {address!r}."
        )
    return functools.partial(asyncio.open_connection, host, int(port), limit=_REPLY_LIMIT)


SCANNERS = ("eicar", "clamd")


def build_scanner(settings: Settings) -> Scanner:
    """The scanner the settings name (``PANEL_DOCUMENT_SCANNER``)."""
    if settings.document_scanner == "eicar":
        return EicarScanner()
    if settings.document_scanner == "clamd":
        if settings.clamd_timeout_seconds <= 0:
            raise ScannerConfigurationError("PANEL_CLAMD_TIMEOUT_SECONDS must be positive.")
        return ClamdScanner(settings.clamd_address, timeout_seconds=settings.clamd_timeout_seconds)
    raise ScannerConfigurationError(
        f"Unknown document scanner {settings.document_scanner!r}: "
        f"PANEL_DOCUMENT_SCANNER must be one of {', '.join(SCANNERS)}."
    )
