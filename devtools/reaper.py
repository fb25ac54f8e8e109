"""A watchdog that stops the services a process started when that process dies, however it dies.

The services run in their own sessions so that a Ctrl-C reaches only their owner, which then
stops them in order. The price is that nothing stops them when the owner cannot: a SIGKILL, a
SIGTERM without a handler (Python then skips ``finally`` blocks and exit hooks), a crash. So
each owning process gets one reaper, started lazily by the first service that registers:

* The owner keeps the write end of a pipe whose read end is the reaper's stdin, and sends one
  JSON object per line: ``{"op": "watch", "key": ..., "kind": ...}`` or
  ``{"op": "release", "key": ...}``. Kinds: ``group`` (a process group, with the start time of
  its leader from ``/proc/<pid>/stat`` so that a recycled number is never signalled),
  ``postmaster`` (a PostgreSQL data directory: the postmaster named in its ``postmaster.pid``,
  trusted only if it leads its own group and works in that directory, and every ``postgres``
  process working there, since each backend leads a group of its own) and ``directory``
  (removed once the processes are gone).
* The pipe reaches EOF when the owner exits, normally or not, because only the owner holds the
  write end (it is close-on-exec and closed in forked children). The reaper then sends every
  group still registered SIGTERM and every postmaster SIGINT (fast shutdown), once, waits up
  to a grace period, SIGKILLs whatever is left, removes the registered directories, and
  exits. SIGTERM to the reaper itself does the same at once.
* A service stopped normally is released first, so after an orderly run the reaper finds
  nothing to do; the owner closes the pipe at exit and waits for it, so it is not left behind.

The reaper ignores SIGINT and SIGHUP and runs in its own session: Ctrl-C and a closed terminal
are for the owner to handle, and a kill of the owner's process group must not take the safety
net with it. It is this file run as a script with the standard library only (``python -I -S``),
so it starts in milliseconds and imports nothing of the project.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

__all__ = [
    "GRACE_SECONDS",
    "ProcessGroup",
    "ReaperError",
    "cluster_processes",
    "kill_cluster",
    "kill_watched",
    "reaper_pid",
    "release_directory",
    "release_group",
    "release_postmaster",
    "running_postmaster",
    "spawn_watched",
    "terminate_watched",
    "watch_directory",
    "watch_group",
    "watch_postmaster",
]

GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.05
_READY = b"ready\n"


class ReaperError(RuntimeError):
    """The reaper could not be started, or a process survived SIGKILL."""


# -- /proc ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stat:
    comm: str
    state: str
    pgrp: int
    start: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fields follow the last ")".
    close = raw.rfind(b")")
    comm = raw[raw.find(b"(") + 1 : close].decode(errors="replace")
    fields = raw[close + 2 :].split()
    try:
        # Fields 3 (state), 5 (pgrp) and 22 (starttime, clock ticks after boot) of proc(5).
        return _Stat(comm, fields[0].decode(), int(fields[2]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _all_stats() -> dict[int, _Stat]:
    stats: dict[int, _Stat] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    return stats


def _dead(stat: _Stat) -> bool:
    # A zombie has exited; it only waits for its parent (init, for an orphan) to reap it.
    return stat.state in ("Z", "X", "x")


@dataclass(frozen=True)
class ProcessGroup:
    """A process group, identified by its id and the start time of the leader that made it.

    Members are the live processes in the group that started no earlier than that leader: a
    group id is a pid, and pids are recycled.
    """

    pgid: int
    leader_start: int | None

    @classmethod
    def of_leader(cls, pid: int) -> ProcessGroup | None:
        """The group led by ``pid``, None if ``pid`` has exited or leads no group."""
        stat = _stat(pid)
        if stat is None or _dead(stat) or stat.pgrp != pid:
            return None
        return cls(pid, stat.start)

    def members(self) -> list[int]:
        stats = _all_stats()
        leader = stats.get(self.pgid)
        if (
            self.leader_start is not None
            and leader is not None
            and leader.pgrp == self.pgid
            and leader.start != self.leader_start
        ):
            # The number leads a newer group now; ours is gone.
            return []
        return [
            pid
            for pid, stat in stats.items()
            if stat.pgrp == self.pgid
            and not _dead(stat)
            and (self.leader_start is None or stat.start >= self.leader_start)
        ]

    def alive(self) -> bool:
        return bool(self.members())

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole group, if it still has members."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)


def running_postmaster(data_dir: Path | str) -> int | None:
    """Pid of the postmaster serving ``data_dir``, None if no such process runs.

    ``postmaster.pid`` survives a crash, and its number may belong to another process by now;
    the postmaster is trusted only while it leads its own group (pg_ctl starts it in a new
    session) and works in ``data_dir`` (it chdirs there).
    """
    directory = Path(data_dir).resolve()
    try:
        pid = int((directory / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if ProcessGroup.of_leader(pid) is None:
        return None
    try:
        cwd = Path(f"/proc/{pid}/cwd").readlink()
    except OSError:
        return None
    return pid if cwd == directory else None


def cluster_processes(data_dir: Path | str) -> list[int]:
    """Live processes of the PostgreSQL cluster in ``data_dir``, the postmaster first.

    Not the postmaster's process group: every backend and auxiliary process calls setsid()
    and leads a group of its own. They all work in the data directory, though, and keep doing
    so when a killed postmaster leaves them to init.
    """
    directory = Path(data_dir).resolve()
    postmaster = running_postmaster(directory)
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or _dead(stat) or stat.comm != "postgres":
            continue
        try:
            if (entry / "cwd").readlink() != directory:
                continue
        except OSError:
            continue
        found.append(pid)
    return sorted(found, key=lambda pid: pid != postmaster)


def kill_cluster(data_dir: Path | str, timeout: float = 10.0) -> None:
    """SIGKILL every process of the cluster in ``data_dir``, as a crash would; wait for it."""
    deadline = time.monotonic() + timeout
    while processes := cluster_processes(data_dir):
        if time.monotonic() > deadline:
            raise ReaperError(f"PostgreSQL processes {processes} survived SIGKILL")
        # The postmaster first, so that it forks no new backends meanwhile.
        for pid in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(_POLL_SECONDS)


# -- the reaper process ---------------------------------------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


class _Target:
    def terminate(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


@dataclass
class _GroupTarget(_Target):
    group: ProcessGroup
    stop_signal: int
    signalled: bool = False

    def terminate(self) -> None:
        # Once: a second SIGTERM makes some servers (Redis among them) skip their clean exit.
        if not self.signalled:
            self.signalled = True
            self.group.signal(self.stop_signal)

    def alive(self) -> bool:
        return self.group.alive()

    def kill(self) -> None:
        self.group.signal(signal.SIGKILL)


@dataclass
class _ClusterTarget(_Target):
    data_dir: str
    signalled: set[int] = field(default_factory=set)

    def terminate(self) -> None:
        # SIGINT is a fast shutdown: the postmaster ends its backends, checkpoints and exits.
        pid = running_postmaster(self.data_dir)
        if pid is not None and pid not in self.signalled:
            self.signalled.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGINT)

    def alive(self) -> bool:
        return bool(cluster_processes(self.data_dir))

    def kill(self) -> None:
        with contextlib.suppress(ReaperError):
            kill_cluster(self.data_dir, timeout=2)


def _target(entry: Mapping[str, Any]) -> _Target | None:
    if entry.get("kind") == "group":
        start = entry.get("start")
        group = ProcessGroup(int(entry["pgid"]), None if start is None else int(start))
        return _GroupTarget(group, int(entry.get("signal", signal.SIGTERM)))
    if entry.get("kind") == "postmaster":
        return _ClusterTarget(str(entry["data_dir"]))
    return None


def _reap(entries: Sequence[Mapping[str, Any]], grace: float) -> None:
    targets = [t for t in map(_target, entries) if t is not None]
    directories = [str(e["path"]) for e in entries if e.get("kind") == "directory"]
    # A cluster with no process yet may have a postmaster on its way up (pg_ctl outlives a
    # killed owner): it gets the grace period to appear and be told to stop.
    awaited = [t for t in targets if isinstance(t, _ClusterTarget) and not t.alive()]
    deadline = time.monotonic() + grace
    while True:
        for target in targets:
            target.terminate()
        awaited = [t for t in awaited if not t.signalled]
        if not awaited and not any(t.alive() for t in targets):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_SECONDS)
    for target in targets:
        target.kill()
    deadline = time.monotonic() + 5
    while any(t.alive() for t in targets) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def _apply(watched: dict[str, dict[str, Any]], line: bytes) -> None:
    try:
        message = json.loads(line)
        key = str(message["key"])
        if message["op"] == "watch":
            watched[key] = message
        elif message["op"] == "release":
            watched.pop(key, None)
    except (ValueError, KeyError, TypeError):
        # A line cut short by the owner's death carries nothing to act on.
        return


def _serve(grace: float) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    watched: dict[str, dict[str, Any]] = {}
    try:
        os.write(1, _READY)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        for line in sys.stdin.buffer:
            _apply(watched, line)
    except _Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _reap(list(watched.values()), grace)
    return 0


# -- the owner's side -----------------------------------------------------------------------


@dataclass
class _Link:
    proc: subprocess.Popen[bytes]
    fd: int


_lock = threading.RLock()
_link: _Link | None = None
_watched: dict[str, dict[str, Any]] = {}
_groups: dict[int, ProcessGroup] = {}


def _start_link() -> _Link:
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                sys.executable, "-I", "-S", str(Path(__file__).resolve()),
                "--grace", str(GRACE_SECONDS),
                # Only for whoever reads `ps`.
                "--owner", str(os.getpid()),
            ],
            stdin=read_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )  # fmt: skip
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    assert proc.stdout is not None
    with proc.stdout:
        ready = proc.stdout.readline()
    if ready != _READY:
        os.close(write_fd)
        proc.kill()
        proc.wait()
        raise ReaperError(f"the reaper did not start (exit code {proc.poll()})")
    return _Link(proc, write_fd)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _connected() -> _Link:
    global _link
    if _link is not None and _link.proc.poll() is None:
        return _link
    if _link is not None:
        # Somebody killed the reaper; a new one takes over everything still registered.
        os.close(_link.fd)
        _link = None
    link = _start_link()
    try:
        for message in _watched.values():
            _write(link.fd, _encode(message))
    except BaseException:
        os.close(link.fd)
        link.proc.kill()
        link.proc.wait()
        raise
    _link = link
    return link


def _send(message: Mapping[str, Any]) -> None:
    global _link
    with _lock:
        if message["op"] == "watch":
            _watched[str(message["key"])] = dict(message)
        else:
            _watched.pop(str(message["key"]), None)
            if _link is None:
                return
            if _link.proc.poll() is not None and not _watched:
                # The reaper is gone and has nothing left to guard; no need for a new one.
                os.close(_link.fd)
                _link = None
                return
        link = _connected()
        try:
            _write(link.fd, _encode(message))
        except BrokenPipeError:
            os.close(link.fd)
            _link = None
            _connected()


def reaper_pid() -> int | None:
    """Pid of this process's reaper, None before anything was registered."""
    with _lock:
        return _link.proc.pid if _link is not None else None


def watch_group(pgid: int, *, stop_signal: int = signal.SIGTERM) -> ProcessGroup | None:
    """Have the reaper stop the group led by ``pgid`` if this process dies first.

    The reaper sends ``stop_signal`` to the group, and SIGKILL after the grace period.
    Returns None if the group has already gone.
    """
    group = ProcessGroup.of_leader(pgid)
    if group is None:
        return None
    with _lock:
        _groups[pgid] = group
        _send(
            {
                "op": "watch",
                "key": f"group:{pgid}",
                "kind": "group",
                "pgid": pgid,
                "start": group.leader_start,
                "signal": int(stop_signal),
            }
        )
    return group


def release_group(pgid: int) -> None:
    with _lock:
        _groups.pop(pgid, None)
        _send({"op": "release", "key": f"group:{pgid}"})


def watch_postmaster(data_dir: Path) -> None:
    """Have the reaper shut down the PostgreSQL cluster in ``data_dir`` if this process dies first.

    Fast shutdown (SIGINT to the postmaster), then SIGKILL for every process of the cluster
    after the grace period. Registered before ``pg_ctl start``: the postmaster is found through
    its ``postmaster.pid`` when needed, so one whose start was under way is found too.
    """
    _send(
        {
            "op": "watch",
            "key": f"postmaster:{data_dir.absolute()}",
            "kind": "postmaster",
            "data_dir": str(data_dir.absolute()),
        }
    )


def release_postmaster(data_dir: Path) -> None:
    _send({"op": "release", "key": f"postmaster:{data_dir.absolute()}"})


def watch_directory(path: Path) -> None:
    """Have the reaper delete ``path`` after the processes, if this process dies first."""
    _send(
        {
            "op": "watch",
            "key": f"directory:{path.absolute()}",
            "kind": "directory",
            "path": str(path.absolute()),
        }
    )


def release_directory(path: Path) -> None:
    _send({"op": "release", "key": f"directory:{path.absolute()}"})


def spawn_watched(
    argv: Sequence[str],
    *,
    stdout: int | IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stderr joined to ``stdout``, registered with the reaper.

    The new session makes the child lead its own process group, which is what the reaper and
    :func:`terminate_watched` signal, and keeps the terminal's Ctrl-C for this process, which
    stops its children in order. Stop it with :func:`terminate_watched` or :func:`kill_watched`.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        watch_group(proc.pid, stop_signal=stop_signal)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc


def _group_of(proc: subprocess.Popen[bytes]) -> ProcessGroup:
    with _lock:
        return _groups.get(proc.pid) or ProcessGroup(proc.pid, None)


def terminate_watched(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the group led by ``proc``, SIGKILL it after ``timeout``, and release it."""
    group = _group_of(proc)
    if proc.poll() is None:
        group.signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            group.signal(signal.SIGKILL)
            proc.wait(timeout=10)
    # The leader may have exited while helpers it forked are still in the group.
    group.signal(signal.SIGKILL)
    release_group(proc.pid)


def kill_watched(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL the group led by ``proc`` (a simulated crash), wait until it is gone, release it."""
    group = _group_of(proc)
    group.signal(signal.SIGKILL)
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group.alive():
        if time.monotonic() > deadline:
            raise ReaperError(f"process group {proc.pid} survived SIGKILL")
        group.signal(signal.SIGKILL)
        time.sleep(_POLL_SECONDS)
    release_group(proc.pid)


def _close_at_exit() -> None:
    global _link
    with _lock:
        link, _link = _link, None
    if link is None:
        return
    # EOF: the reaper stops whatever is still registered, then exits; waiting for it means it
    # is neither left running nor left unreaped.
    os.close(link.fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        link.proc.wait(timeout=GRACE_SECONDS + 10)


def _forget_in_child() -> None:
    # A forked child holding the write end would keep the pipe open after this process died;
    # the services are not the child's to stop either.
    global _link, _lock
    _lock = threading.RLock()
    if _link is not None:
        with contextlib.suppress(OSError):
            os.close(_link.fd)
        _link = None
    _watched.clear()
    _groups.clear()


def _main(argv: Sequence[str]) -> int:
    grace = GRACE_SECONDS
    if "--grace" in argv:
        grace = float(argv[list(argv).index("--grace") + 1])
    return _serve(grace)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
else:
    # Registered at import, before any service registers its own stop hook: hooks run last
    # first, so the services stop in order before the reaper is told the owner is done.
    atexit.register(_close_at_exit)
    os.register_at_fork(after_in_child=_forget_in_child)
