"""A local stand-in for the credit bureau, for the demo and the tests (standard library only).

Run it as a process on a loopback port::

    python -m devtools.bureau_stub --port 8090

It answers ``POST /v1/checks`` as ``panel_core/bureau.py`` expects, and refuses (400) any
request carrying more than a reference and PESEL blind indexes (64 hex digits): whatever
else reached it would be personal data the panel must not send. Switch how it answers at run
time with ``POST /control``::

    curl -X POST http://127.0.0.1:8090/control -d '{"mode": "500"}'
    curl -X POST http://127.0.0.1:8090/control -d '{"mode": "timeout", "reference": "<case id>"}'

Modes: ``ok`` (a score per subject), ``not-found`` (nobody is known), ``500``, ``malformed``
(an answer that is not JSON) and ``timeout`` (no answer until the mode changes or
``--hang-seconds`` pass). With ``reference`` the mode applies to that case only, and wins
over the stub's own mode; ``{"reference": ..., "mode": null}`` removes it. ``GET /control``
shows the modes and the requests received (newest last); ``GET /health`` answers ``ok``.

:class:`BureauStub` starts and stops that process for the demo and the test stack.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from devtools._process import ServiceError, http_get, log_tail
from devtools.ports import LOOPBACK, free_port
from devtools.reaper import spawn_watched, terminate_watched

MODES = ("ok", "not-found", "500", "malformed", "timeout")
DEFAULT_HANG_SECONDS = 30.0
_SUBJECT = re.compile(r"[0-9a-f]{64}")
_REFERENCE = re.compile(r"[0-9A-Za-z-]{1,64}")
# Requests kept for GET /control.
_KEPT_REQUESTS = 500


def score_of(subject: str) -> int:
    """A stable score per subject, so a case reads the same on every call."""
    return 300 + int(hashlib.sha256(subject.encode()).hexdigest()[:8], 16) % 551


class _State:
    def __init__(self, hang_seconds: float) -> None:
        self.mode = "ok"
        self.by_reference: dict[str, str] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=_KEPT_REQUESTS)
        self.hang_seconds = hang_seconds
        # Set whenever a mode changes: hanging requests look again.
        self.changed = threading.Condition()

    def mode_for(self, reference: str) -> str:
        with self.changed:
            return self.by_reference.get(reference, self.mode)

    def hang(self, reference: str) -> None:
        deadline = time.monotonic() + self.hang_seconds
        with self.changed:
            while self.by_reference.get(reference, self.mode) == "timeout":
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.changed.wait(left)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"bureau-stub: {format % args}\n")

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode())

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/health":
            self._send(200, b"ok", "text/plain")
        elif self.path == "/control":
            with state.changed:
                self._json(
                    200,
                    {
                        "mode": state.mode,
                        "byReference": dict(state.by_reference),
                        "requests": list(state.requests),
                    },
                )
        else:
            self._json(404, {"error": "not-found"})

    def do_POST(self) -> None:
        if self.path == "/control":
            self._control(self._body())
        elif self.path == "/v1/checks":
            self._check(self._body())
        else:
            self._json(404, {"error": "not-found"})

    def _control(self, body: Any) -> None:
        state = self.server.state
        if not isinstance(body, dict) or set(body) - {"mode", "reference"}:
            self._json(400, {"error": "send {'mode': ..., 'reference': ...}"})
            return
        mode, reference = body.get("mode"), body.get("reference")
        if (mode is not None and mode not in MODES) or (mode is None and reference is None):
            self._json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            return
        with state.changed:
            if reference is None:
                state.mode = str(mode)
            elif mode is None:
                state.by_reference.pop(str(reference), None)
            else:
                state.by_reference[str(reference)] = mode
            state.changed.notify_all()
        self._json(200, {"mode": state.mode, "byReference": dict(state.by_reference)})

    def _check(self, body: Any) -> None:
        state = self.server.state
        if (
            not isinstance(body, dict)
            or set(body) != {"reference", "subjects"}
            or not isinstance(body["reference"], str)
            or not _REFERENCE.fullmatch(body["reference"])
            or not isinstance(body["subjects"], list)
            or not body["subjects"]
            or not all(isinstance(s, str) and _SUBJECT.fullmatch(s) for s in body["subjects"])
        ):
            self._json(400, {"error": "send only a reference and PESEL blind indexes"})
            return
        reference, subjects = body["reference"], body["subjects"]
        mode = state.mode_for(reference)
        with state.changed:
            state.requests.append(
                {"at": time.time(), "reference": reference, "subjects": len(subjects), "mode": mode}
            )
        if mode == "timeout":
            state.hang(reference)
            # Hung up without a word, as a bureau behind a dead gateway does.
            self.close_connection = True
            return
        if mode == "500":
            self._json(500, {"error": "internal"})
        elif mode == "malformed":
            self._send(200, b"<html><body>Service temporarily unavailable</body></html>")
        else:
            found = mode == "ok"
            self._json(
                200,
                {
                    "reference": reference,
                    "results": [
                        {"subject": s, "found": found, "score": score_of(s) if found else None}
                        for s in subjects
                    ],
                },
            )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


def serve(host: str, port: int, hang_seconds: float = DEFAULT_HANG_SECONDS) -> None:
    server = _Server((host, port), _State(hang_seconds))

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs in this very thread: from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"bureau stub listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


class BureauStub:
    """The stub as a process of its own on a free loopback port; a context manager."""

    def __init__(self, port: int | None = None, *, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        if self.is_running:
            return
        argv = [sys.executable, "-m", "devtools.bureau_stub", "--port", str(self.port)]
        root = Path(__file__).resolve().parent.parent
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self._proc = spawn_watched(argv, stdout=log, cwd=root)
        else:
            self._proc = spawn_watched(argv, stdout=subprocess.DEVNULL, cwd=root)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if http_get(f"{self.url}/health", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_tail(self.log_path) if self.log_path else ""
                self.stop()
                raise ServiceError(f"the bureau stub did not start on {self.url}: {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            terminate_watched(self._proc, timeout=5)
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the stub on loopback
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def set_mode(self, mode: str | None, reference: str | None = None) -> None:
        """Switch the stub (or, with ``reference``, one case; ``None`` removes that)."""
        body: dict[str, Any] = {"mode": mode}
        if reference is not None:
            body["reference"] = reference
        self._post("/control", body)

    def requests(self, reference: str | None = None) -> list[dict[str, Any]]:
        """The checks received, oldest first; with ``reference``, that case's only."""
        status, raw = http_get(f"{self.url}/control", timeout=5)
        if status != 200:
            raise ServiceError(f"GET /control of the bureau stub answered {status}")
        seen: list[dict[str, Any]] = json.loads(raw)["requests"]
        return [r for r in seen if reference is None or r["reference"] == reference]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--hang-seconds", type=float, default=DEFAULT_HANG_SECONDS)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.hang_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
