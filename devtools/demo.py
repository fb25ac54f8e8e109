"""The local demo: Redis, the Camunda engine, Keycloak, migrations, models, workers, the
participants' panel and the staff dashboard.

Everything runs on this machine with embedded defaults (SQLite for the panel's database) and
starts fresh each time; a demo case is opened so there is something to look at at once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bff.app import DEMO_CHANNEL_TOKEN
from devtools.bureau_stub import BureauStub
from devtools.camunda import CAMUNDA_VERSION, CamundaEngine
from devtools.keycloak import DEFAULT_REALM_FILE, DEMO_PASSWORD, KEYCLOAK_VERSION, KeycloakServer
from devtools.ports import free_port
from devtools.reaper import spawn_watched, terminate_watched
from devtools.redis_server import RedisServer
from devtools.smtp_server import SmtpServer
from panel_core.cases import case_types
from panel_core.cli import case_type_folders, minimal_participants
from panel_core.constants import EXPORTED_VALUE_TYPES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".demo"
CLI = [sys.executable, "-m", "panel_core.cli"]
# The case the demo opens at start: a credit application with two co-borrowers.
DEMO_CASE_TYPE = "credit-application"
DEMO_ROLES = ["primary-borrower", "co-borrower", "co-borrower"]


@dataclass(frozen=True)
class DemoStack:
    panel: str
    dashboard: str
    engine: CamundaEngine
    keycloak: KeycloakServer
    redis_url: str
    env: dict[str, str]
    directory: Path
    processes: tuple[subprocess.Popen[bytes], ...]

    def open_case(self, case_type: str, roles: list[str]) -> str:
        """Open a case through the CLI, with made-up people, and return what it printed.

        Each has an e-mail address in a reserved domain, so the staff can send them e-mail
        and documents, which the demo's own mail server shows on the outbox page."""
        people = [
            arg
            for number, role in enumerate(roles, start=1)
            for arg in ("--participant", f"role={role},email=person{number}@example.com")
        ]
        return subprocess.run(
            [*CLI, "start-case", "--case-type", case_type, *people, "--channel", "branch"],
            env=self.env,
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    @property
    def healthy(self) -> bool:
        return (
            all(p.poll() is None for p in self.processes)
            and self.engine.is_running
            and self.keycloak.is_running
        )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


# Demo users of keycloak/customer-panel-realm.json, one per role, and what each can show.
DEMO_STAFF = (
    ("anna.analityk", "credit analyst: claims and completes the credit review"),
    ("adam.analityk", "credit analyst: a second one, to see a claim lost"),
    ("celina.konsultant", "call-centre agent: finds cases, sees no analyst task"),
    ("bartosz.doradca", "branch adviser: books appointments, sees them in the calendar"),
    ("magda.kierownik", "team manager: every task, reassigns and reschedules; team calendar"),
    ("olek.operator", "operator"),
)


def _realm_secret(client_id: str = "staff-dashboard") -> str:
    realm = json.loads(DEFAULT_REALM_FILE.read_text(encoding="utf-8"))
    return str(next(c["secret"] for c in realm["clients"] if c["clientId"] == client_id))


@contextmanager
def running_stack(directory: Path, port: int, staff_port: int | None = None) -> Iterator[DemoStack]:
    """Every part of the panel, started fresh in ``directory``, stopped on exit."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    processes: list[subprocess.Popen[bytes]] = []
    staff_port = staff_port or free_port()
    with RedisServer() as redis, SmtpServer(redis.url) as smtp:
        engine = CamundaEngine(
            directory / "camunda-data",
            redis.url,
            log_path=directory / "camunda.log",
            exported_value_types=EXPORTED_VALUE_TYPES,
        )
        keycloak = KeycloakServer(state_dir=directory / "keycloak")
        # The credit bureau the credit case type asks; switchable to fail (its module says how).
        bureau = BureauStub(log_path=directory / "bureau.log")
        try:
            bureau.start()
            print(f"Starting Camunda {CAMUNDA_VERSION} (about 10-20 s)...", flush=True)
            engine.start()
            print(f"Starting Keycloak {KEYCLOAK_VERSION} (about 20-40 s)...", flush=True)
            keycloak.start()
            env = dict(os.environ)
            env.update(
                PANEL_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'panel.db'}",
                PANEL_DOCUMENT_STORAGE_DIR=str(directory / "documents"),
                PANEL_REDIS_URL=redis.url,
                PANEL_ZEEBE_ADDRESS=engine.grpc_address,
                PANEL_CAMUNDA_REST_URL=engine.rest_url,
                PANEL_DEMO_MODE="true",
                PANEL_SECURE_COOKIES="false",
                PANEL_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                PANEL_WORKER_HTTP_PORT=str(free_port()),
                PANEL_STAFF_OIDC_ISSUER=keycloak.issuer,
                PANEL_STAFF_OIDC_CLIENT_SECRET=_realm_secret(),
                PANEL_STAFF_PUBLIC_BASE_URL=f"http://127.0.0.1:{staff_port}",
                PANEL_STAFF_SESSION_SECRET=secrets.token_urlsafe(32),
                PANEL_BUREAU_URL=bureau.url,
                # The demo's own mail server: plain SMTP on loopback, what it receives shown
                # on the outbox page.
                PANEL_SMTP_HOST=smtp.host,
                PANEL_SMTP_PORT=str(smtp.port),
                PANEL_SMTP_SECURITY="none",
                PANEL_MAIL_FROM="Customer Panel demo <no-reply@example.com>",
            )
            subprocess.run([*CLI, "migrate"], env=env, cwd=REPO_ROOT, check=True)
            subprocess.run([*CLI, "deploy"], env=env, cwd=REPO_ROOT, check=True)
            commands = {
                "workers": [sys.executable, "-m", "workers.main"],
                "bff": [
                    sys.executable, "-m", "uvicorn", "--factory", "bff.app:app_factory",
                    "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
                ],
                "staff": [
                    sys.executable, "-m", "uvicorn", "--factory", "staff.app:app_factory",
                    "--host", "127.0.0.1", "--port", str(staff_port), "--no-proxy-headers",
                ],
            }  # fmt: skip
            for name, command in commands.items():
                with (directory / f"{name}.log").open("wb") as log:
                    processes.append(spawn_watched(command, env=env, cwd=REPO_ROOT, stdout=log))
            panel = f"http://127.0.0.1:{port}"
            dashboard = f"http://127.0.0.1:{staff_port}"
            _wait_http(f"{panel}/health")
            _wait_http(f"{dashboard}/health")
            yield DemoStack(
                panel, dashboard, engine, keycloak, redis.url, env, directory, tuple(processes)
            )
        finally:
            # A second Ctrl-C (or SIGTERM, SIGHUP) must not leave half the stack running.
            stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in stopping}
            for process in processes:
                terminate_watched(process, timeout=15)
            keycloak.stop()
            engine.stop()
            bureau.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _print_other_cases(stack: DemoStack) -> None:
    """A working command line and channel API call for every case type the demo deployed."""
    env = " ".join(f"{k}={v}" for k, v in stack.env.items() if k.startswith("PANEL_"))
    print(f"\nOpen another case (the channel API's demo token is {DEMO_CHANNEL_TOKEN}):")
    for path in (d for f in case_type_folders() for d in case_types.descriptor_files(f)):
        descriptor = case_types.parse(path.read_bytes())
        people = minimal_participants(descriptor)
        channel = next(iter(descriptor.channels))
        roles = " ".join(f"--participant role={p.role}" for p in people)
        body = json.dumps(
            {
                "caseType": descriptor.case_type,
                "channel": channel,
                "participants": [
                    {"role": p.role, "pesel": p.pesel, "phone": p.phone, "locale": p.locale}
                    for p in people
                ],
            },
            ensure_ascii=False,
        )
        print(f"  {descriptor.case_type}:")
        print(f"    {env} .venv/bin/customer-panel start-case --case-type {descriptor.case_type}"
              f" --channel {channel} {roles}")  # fmt: skip
        print(f"    curl -sS -X POST {stack.panel}/api/channel/cases"
              f" -H 'Authorization: Bearer {DEMO_CHANNEL_TOKEN}'"
              f" -H 'Content-Type: application/json' -d '{body}'")  # fmt: skip


def run_demo(port: int = 8000, staff_port: int = 8001) -> int:
    # A closed terminal (SIGHUP) or a SIGTERM stops the stack as Ctrl-C does; SIGINT is set
    # too, since a shell starting the demo in the background leaves it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        with running_stack(DEMO_DIR, port, staff_port) as stack:
            case = stack.open_case(DEMO_CASE_TYPE, DEMO_ROLES)
            panel = stack.panel
            print(f"\nCustomer Panel demo is running (logs in {DEMO_DIR}).")
            print(f"  Participant login: {panel}/login")
            print(
                f"  Outbox:            {panel}/dev/outbox   (demo mode: SMS and e-mail land here)"
            )
            smtp = f"{stack.env['PANEL_SMTP_HOST']}:{stack.env['PANEL_SMTP_PORT']}"
            print(f"  Mail server:       smtp://{smtp}   (the demo's own, shown on the outbox)")
            print(f"  Channel API docs:  {panel}/schema/swagger")
            print(f"  Staff dashboard:   {stack.dashboard}/   (sign in through Keycloak)")
            print(
                f"  Keycloak admin:    {stack.keycloak.admin_console_url}"
                f"   (user {stack.keycloak.admin.username},"
                f" password {stack.keycloak.admin.password})"
            )
            print(f"  Engine REST API:   {stack.engine.rest_url}/v2/topology")
            print(f"  Engine gRPC:       {stack.engine.grpc_address}")
            bureau = stack.env["PANEL_BUREAU_URL"]
            print(f"  Credit bureau:     {bureau}   (a stub; make it fail, and retry in the")
            print(
                f"                     dashboard's Failed steps: curl -X POST {bureau}/control"
                """ -d '{"mode": "500"}'; modes ok, not-found, 500, malformed, timeout)"""
            )
            print(f"  Panel metrics:     {panel}/metrics   (health: /health, /ready)")
            workers = f"http://127.0.0.1:{stack.env['PANEL_WORKER_HTTP_PORT']}"
            print(f"  Workers' metrics:  {workers}/metrics   (health: /health, /ready)")
            print(
                "  Operate: not included. Operate 8.6 needs Elasticsearch or OpenSearch, which"
                " this machine cannot install; see docs/operations.md."
            )
            print("\nA demo case was opened:")
            for line in case.splitlines():
                print(f"  {line}")
                if line.startswith("participant "):
                    participant_id = line.split()[2]
                    print(f"    demo shortcut: {panel}/dev/sign-in?participant={participant_id}")
            print(
                f"\nSign in as a participant at {panel}/login with the case number and the PESEL"
                " ending shown above; the code arrives in the SMS outbox. The invitation SMS"
                " there carries a link that signs in with its code."
            )
            print(f"\nStaff demo users (password: {DEMO_PASSWORD}):")
            for username, what in DEMO_STAFF:
                print(f"  {username:<18} {what}")
            print(
                "The case reaches the credit analysts' inbox once every participant has"
                " completed their tasks and signed."
            )
            _print_other_cases(stack)
            print("\nCtrl-C stops everything.", flush=True)
            while stack.healthy:
                time.sleep(0.5)
            print("A demo process stopped unexpectedly; see the logs above.", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nStopped the demo.", flush=True)
        return 0


def main() -> int:
    port = int(os.environ.get("PANEL_DEMO_PORT", "8000")) or free_port()
    staff_port = int(os.environ.get("PANEL_DEMO_STAFF_PORT", "8001")) or free_port()
    return run_demo(port, staff_port)


if __name__ == "__main__":
    sys.exit(main())
