"""A local SMTP server (aiosmtpd) for the demo and the tests, as a process of its own.

It accepts every message on a free loopback port and keeps it in Redis
(``panel_core.notifications.dev_mailbox``), where the demo's outbox page and the tests read
it, as the demo SMS provider does with texts. It is a real SMTP server: the workers reach it
through the same aiosmtplib client as the bank's relay. :class:`SmtpServer` runs it;
``python -m devtools.smtp_server --port N --redis-url URL`` is the process itself.

When Redis cannot take a message the server answers ``451`` (try again later), as a relay
whose spool is full does, so the sender's outbox keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.smtp import SMTP, Envelope, Session
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools._process import ServiceError, log_tail, spawn, terminate_group
from devtools.ports import LOOPBACK, free_port
from devtools.reaper import release_directory, watch_directory
from panel_core.notifications import dev_mailbox as mailbox

__all__ = ["SmtpServer", "smtp_ready"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# KEYS: seen hash, outbox list, raw key. ARGV: message id, entry, list size, raw, raw ttl.
_STORE = """
local times = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if times == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
  redis.call('SET', KEYS[3], ARGV[4], 'EX', tonumber(ARGV[5]))
end
return times
"""


def smtp_ready(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """Whether an SMTP server greets on ``host:port`` (``220``)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            greeting = sock.recv(128)
            sock.sendall(b"QUIT\r\n")
    except OSError:
        return False
    return greeting.startswith(b"220")


class SmtpServer:
    """The server process on a free loopback port, in a temp dir of its own for its log.

    :meth:`halt` stops the process and keeps the port, and :meth:`start` brings it back there
    (a relay that went away and came back); :meth:`stop` also removes the temp dir.
    """

    def __init__(self, redis_url: str, port: int | None = None) -> None:
        self.redis_url = redis_url
        self.host: str = LOOPBACK
        self.port: int = port if port is not None else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp_dir: Path | None = None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._tmp_dir / "smtp.log" if self._tmp_dir is not None else None

    def start(self, timeout: float = 20.0) -> None:
        if self.is_running:
            return
        if self._tmp_dir is None:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix="devtools-smtp-"))
            watch_directory(self._tmp_dir)
        log_path = self._tmp_dir / "smtp.log"
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        argv = [
            sys.executable, "-m", "devtools.smtp_server",
            "--host", self.host, "--port", str(self.port), "--redis-url", self.redis_url,
        ]  # fmt: skip
        self._proc = spawn(argv, log_path=log_path, cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        while not smtp_ready(self.port, self.host):
            if self._proc.poll() is not None:
                self._proc = None
                raise ServiceError(f"the SMTP server exited during start-up:\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                self.halt()
                raise ServiceError(
                    f"the SMTP server was not ready after {timeout:.0f}s:\n{log_tail(log_path)}"
                )
            time.sleep(0.05)

    def halt(self, timeout: float = 10.0) -> None:
        """Stop the process; the port and the temp dir stay for :meth:`start`."""
        if self._proc is not None:
            terminate_group(self._proc, timeout)
            self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        self.halt(timeout)
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            release_directory(self._tmp_dir)
            self._tmp_dir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the server process -----------------------------------------------------------------


class RedisMailbox:
    """aiosmtpd's handler: each message accepted goes to Redis, once per Message-ID."""

    def __init__(self, redis: Redis) -> None:
        self._store = redis.register_script(_STORE)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else bytes(content)
        entry_id = uuid.uuid4().hex
        try:
            entry = mailbox.summary(entry_id, raw, list(envelope.rcpt_tos), time.time())
        except Exception as exc:
            return f"554 5.6.0 The message cannot be read: {type(exc).__name__}"
        message_id = entry["message_id"] or f"<{entry_id}@smtp.demo>"
        try:
            await self._store(
                keys=[
                    mailbox.DEV_MAIL_SEEN_KEY,
                    mailbox.DEV_MAIL_OUTBOX_KEY,
                    mailbox.raw_key(entry_id),
                ],
                args=[
                    message_id,
                    json.dumps(entry, ensure_ascii=False),
                    mailbox.DEV_MAIL_OUTBOX_SIZE,
                    raw,
                    mailbox.DEV_MAIL_RAW_TTL_SECONDS,
                ],
            )
        except RedisError:
            return "451 4.3.0 The mailbox is unavailable; try again later"
        return "250 2.0.0 Message accepted"


async def serve(host: str, port: int, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    handler = RedisMailbox(redis)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="customer-panel-demo-smtp"), host=host, port=port
    )
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"SMTP server listening on {host}:{port}, keeping mail in {redis_url}", flush=True)
    try:
        await stopped.wait()
    finally:
        server.close()
        await server.wait_closed()
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.smtp_server", description=__doc__)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.redis_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
