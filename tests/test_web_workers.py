"""The participants' panel as two uvicorn worker processes on one port, sharing sessions.

A participant signs in through whichever worker takes the connection; every following request,
on fresh connections that both workers take, is recognised as theirs; a logout through one
worker ends the session on both. Which worker served a connection is read from the operating
system (the process that holds the server side of the socket), not from anything the panel
would tell a client.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devtools.ports import free_port
from devtools.reaper import spawn_watched, terminate_watched
from panel_core.cases.numbers import generate_case_number
from panel_core.db.models import Case, Participant
from panel_core.identity.pesel import fragment_hash, make_pesel
from panel_core.settings import Settings
from tests.conftest import REPO_ROOT, settings_env

WORKERS = 2
# Connections opened until both workers have taken some; far more than ever needed.
MAX_CONNECTIONS = 200
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # The fields after the command name, which may itself hold spaces and brackets.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def server_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's side of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return inode
    return None


def raw_request(
    port: int, method: str, path: str, cookie: str, body: str = ""
) -> tuple[int, dict[str, str], socket.socket]:
    """One request on a new connection, left open so its server side can be looked up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    headers = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Cookie: {cookie}",
        "Accept: application/json",
        f"Content-Length: {len(body.encode())}",
    ]
    if body:
        headers.append("Content-Type: application/x-www-form-urlencoded")
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n" + body).encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    response_headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        response_headers.setdefault(name.strip().lower(), value.strip())
    length = int(response_headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return status, response_headers, sock


def served_by(port: int, sock: socket.socket, workers: set[int]) -> int:
    inode = server_inode(port, sock.getsockname()[1])
    assert inode is not None
    owners = [pid for pid in workers if inode in socket_inodes(pid)]
    assert len(owners) == 1, owners
    return owners[0]


def requests_until_both_served(port: int, cookie: str, workers: set[int]) -> dict[int, set[int]]:
    """GET the task list on fresh connections until both workers took some; the statuses
    each worker answered with."""
    statuses: dict[int, set[int]] = {pid: set() for pid in workers}
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            status, _headers, sock = raw_request(port, "GET", "/api/participant/tasks", cookie)
            held.append(sock)
            statuses[served_by(port, sock, workers)].add(status)
            if all(statuses.values()) and len(held) >= 20:
                break
    finally:
        for sock in held:
            sock.close()
    return statuses


@contextlib.contextmanager
def panel_workers(settings: Settings, log: Path) -> Iterator[tuple[int, set[int]]]:
    port = free_port()
    command = [
        sys.executable, "-m", "panel_web.serve", "bff", "--workers", str(WORKERS),
        "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = spawn_watched(command, env=settings_env(settings), cwd=REPO_ROOT, stdout=out)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            workers = children(process.pid)
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if ready.status_code == 200 and len(workers) >= WORKERS:
                    break
            time.sleep(0.2)
        else:
            raise TimeoutError(log.read_text(errors="replace"))
        # uvicorn's multiprocessing may add a helper process; the workers hold the sockets.
        time.sleep(1.0)
        workers = {pid for pid in children(process.pid) if socket_inodes(pid)}
        yield port, workers
    finally:
        terminate_watched(process, timeout=15)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), pid


def _state(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return ""


async def a_participant(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    case_id, participant_id = uuid.uuid4(), uuid.uuid4()
    pesel = make_pesel(date(1984, 5, 17), 4321)
    async with sessions() as session:
        session.add(
            Case(
                id=case_id,
                case_number=generate_case_number("KR"),
                case_type="credit-application",
                channel="branch",
                status="collecting",
                process_id="credit-application",
            )
        )
        await session.flush()
        session.add(
            Participant(
                id=participant_id,
                case_id=case_id,
                role="primary-borrower",
                ordinal=0,
                phone_e164="+48500100200",
                pesel_fragment_hash=fragment_hash("unused", case_id, pesel[-4:]),
                locale="pl",
            )
        )
        await session.commit()
    return participant_id


@pytest.mark.asyncio(loop_scope="session")
async def test_two_workers_share_sign_in_and_logout(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    participant = await a_participant(sessions)
    with panel_workers(settings, tmp_path / "bff.log") as (port, workers):
        assert len(workers) == WORKERS
        base = f"http://127.0.0.1:{port}"
        # Signed in through whichever worker takes these requests: the CSRF token of the
        # form one worker served is accepted by the other too (one shared secret).
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            page = await client.get("/dev/sign-in")
            token = _CSRF.search(page.text)
            assert token, page.text[:300]
            signed_in = await client.post(
                "/dev/sign-in", data={"participant": str(participant), "_csrf_token": token[1]}
            )
            assert signed_in.status_code == 303
            session_cookie = client.cookies["panel-session"]
            csrf_cookie = client.cookies["csrftoken"]
        cookie = f"panel-session={session_cookie}; csrftoken={csrf_cookie}"

        before = requests_until_both_served(port, cookie, workers)
        # Both processes served, and each recognised the participant every time.
        assert before == {pid: {200} for pid in workers}, before

        status, _headers, sock = raw_request(
            port, "POST", "/logout", cookie, body=f"_csrf_token={token[1]}"
        )
        sock.close()
        assert status == 200

        after = requests_until_both_served(port, cookie, workers)
        # Signed out on both: neither worker knows the session any more.
        assert after == {pid: {401} for pid in workers}, after


def test_several_workers_without_a_shared_secret_are_refused(settings: Settings) -> None:
    env = settings_env(msgspec.structs.replace(settings, demo_mode=False, session_secret=""))
    refused = subprocess.run(
        [sys.executable, "-m", "panel_web.serve", "bff", "--workers", "2", "--port", "9"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "PANEL_SESSION_SECRET" in refused.stderr
