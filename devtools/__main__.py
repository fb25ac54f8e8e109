"""Command line for the local services: ``python -m devtools --help``."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devtools._process import ServiceError
from devtools.camunda import (
    CAMUNDA_VERSION,
    EXPORTER_VERSION,
    CamundaEngine,
    ensure_distribution,
    exporter_jar,
    find_java_home,
    java_major_version,
)
from devtools.keycloak import (
    DEFAULT_REALM_FILE,
    KEYCLOAK_VERSION,
    KeycloakServer,
    ensure_keycloak_distribution,
)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean-shutdown path as Ctrl-C. SIGINT gets this
    # handler explicitly because Python leaves it ignored when started as a
    # background job of a non-interactive shell.
    raise KeyboardInterrupt


def _cmd_java_home(args: argparse.Namespace) -> int:
    print(find_java_home())
    return 0


def _cmd_camunda_fetch(args: argparse.Namespace) -> int:
    dist = ensure_distribution(args.cache_dir)
    print(f"Camunda {CAMUNDA_VERSION}: {dist}")
    print(f"Redis exporter {EXPORTER_VERSION}: {exporter_jar(args.cache_dir)}")
    return 0


def _cmd_camunda_run(args: argparse.Namespace) -> int:
    own_tmp: Path | None = None
    if args.data_dir is None:
        own_tmp = Path(tempfile.mkdtemp(prefix="devtools-camunda-"))
        data_dir: Path = own_tmp / "data"
    else:
        data_dir = args.data_dir
    engine = CamundaEngine(
        data_dir,
        args.redis_url,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        monitoring_port=args.monitoring_port,
        cache_dir=args.cache_dir,
    )
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        java_home = find_java_home()
        print(f"Starting Camunda {CAMUNDA_VERSION} (Java {java_major_version(java_home)})...")
        print(f"  log:        {engine.log_path}", flush=True)
        engine.java_home = java_home
        engine.start(args.timeout)
        print(f"  gRPC:       {engine.grpc_address}")
        print(f"  REST:       {engine.rest_url}")
        print(f"  monitoring: {engine.monitoring_url}")
        print(f"  data dir:   {engine.data_dir}")
        print(f"  exporter:   {args.redis_url}")
        print(f"Started in {engine.startup_seconds:.1f} s; Ctrl-C to stop.", flush=True)
        while engine.is_running:
            time.sleep(0.5)
        print(f"Camunda exited unexpectedly; see {engine.log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping Camunda...", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not abandon a half-stopped broker.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        engine.stop()
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)


def _cmd_keycloak_fetch(args: argparse.Namespace) -> int:
    print(f"Keycloak {KEYCLOAK_VERSION}: {ensure_keycloak_distribution(args.cache_dir)}")
    return 0


def _cmd_keycloak_run(args: argparse.Namespace) -> int:
    server = KeycloakServer(
        args.realm_file,
        http_port=args.http_port,
        management_port=args.management_port,
        state_dir=args.state_dir,
        cache_dir=args.cache_dir,
        admin_password=args.admin_password,
    )
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        java_home = find_java_home()
        print(f"Starting Keycloak {KEYCLOAK_VERSION} (Java {java_major_version(java_home)})...")
        server.java_home = java_home
        server.start(args.timeout)
        print(f"  log:        {server.log_path}")
        print(f"  issuer:     {server.issuer}")
        print(f"  discovery:  {server.discovery_url}")
        print(f"  admin:      {server.admin_console_url}")
        print(f"              {server.admin.username} / {server.admin.password}")
        print(f"  health:     {server.management_url}/health")
        print(f"  state dir:  {server.state_dir}")
        print(f"Started in {server.startup_seconds:.1f} s; Ctrl-C to stop.", flush=True)
        while server.is_running:
            time.sleep(0.5)
        print(f"Keycloak exited unexpectedly; see {server.log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping Keycloak...", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not abandon a half-stopped server.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()


def _cmd_screenshots(args: argparse.Namespace) -> int:
    # Playwright is a development dependency; the other commands work without it.
    from devtools.screenshots import take_screenshots

    for path in take_screenshots():
        print(path)
    return 0


def _cmd_messages(args: argparse.Namespace) -> int:
    from devtools.messages import untranslated, update_catalogs

    for path in update_catalogs():
        print(path)
    missing = untranslated("pl")
    for message in missing:
        print(f"untranslated (pl): {message}")
    return 1 if missing else 0


def _cmd_preview_form(args: argparse.Namespace) -> int:
    import json

    from devtools.form_preview import write_preview
    from panel_core.forms.checks import check_form

    variables = json.loads(args.variables.read_text(encoding="utf-8")) if args.variables else {}
    page = write_preview(
        args.form, args.out, variables=variables, locale=args.lang, with_errors=args.errors
    )
    print(page)
    problems = check_form(json.loads(args.form.read_text(encoding="utf-8")))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools", description="Run the real services used by tests and demos."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    shots = commands.add_parser(
        "screenshots", help="screenshots of every page at 375 and 1280 px into docs/screenshots"
    )
    shots.set_defaults(handler=_cmd_screenshots)

    messages = commands.add_parser(
        "messages", help="extract the UI texts into the gettext catalogs and list untranslated ones"
    )
    messages.set_defaults(handler=_cmd_messages)

    preview = commands.add_parser(
        "preview-form",
        help="a .form file as the task page shows it, written to a folder to open in a browser",
    )
    preview.add_argument("form", type=Path, help="the .form file")
    preview.add_argument(
        "--variables", type=Path, help="a JSON file of the process variables the form reads"
    )
    preview.add_argument("--lang", choices=("pl", "en"), default="pl")
    preview.add_argument(
        "--errors", action="store_true", help="show the page as sent empty, with its errors"
    )
    preview.add_argument("--out", type=Path, default=Path("preview"), help="default: ./preview")
    preview.set_defaults(handler=_cmd_preview_form)

    java = commands.add_parser("java-home", help="print the JDK used to run Camunda and Keycloak")
    java.set_defaults(handler=_cmd_java_home)

    camunda = commands.add_parser("camunda", help="the Camunda 8 broker")
    camunda.add_argument(
        "--cache-dir", type=Path, default=None, help="default: ~/.cache/customer-panel"
    )
    camunda_commands = camunda.add_subparsers(dest="camunda_command", required=True)

    fetch = camunda_commands.add_parser("fetch", help="download and unpack the distribution")
    fetch.set_defaults(handler=_cmd_camunda_fetch)

    run = camunda_commands.add_parser("run", help="run a broker until Ctrl-C/SIGTERM")
    run.add_argument("--redis-url", required=True, help="Redis for the exporter")
    run.add_argument(
        "--data-dir", type=Path, default=None, help="keep state here (default: a temp dir)"
    )
    run.add_argument("--grpc-port", type=int, default=None, help="default: a free port")
    run.add_argument("--rest-port", type=int, default=None, help="default: a free port")
    run.add_argument("--monitoring-port", type=int, default=None, help="default: a free port")
    run.add_argument("--timeout", type=float, default=120.0, help="start-up timeout in seconds")
    run.set_defaults(handler=_cmd_camunda_run)

    keycloak = commands.add_parser("keycloak", help="Keycloak, the staff's OpenID Connect provider")
    keycloak.add_argument(
        "--cache-dir", type=Path, default=None, help="default: ~/.cache/customer-panel"
    )
    keycloak_commands = keycloak.add_subparsers(dest="keycloak_command", required=True)

    kc_fetch = keycloak_commands.add_parser("fetch", help="download and unpack the distribution")
    kc_fetch.set_defaults(handler=_cmd_keycloak_fetch)

    kc_run = keycloak_commands.add_parser(
        "run", help="run Keycloak with the staff realm until Ctrl-C/SIGTERM"
    )
    kc_run.add_argument(
        "--realm-file",
        type=Path,
        default=DEFAULT_REALM_FILE,
        help="realm to import (default: keycloak/customer-panel-realm.json)",
    )
    kc_run.add_argument(
        "--state-dir", type=Path, default=None, help="keep state here (default: a temp dir)"
    )
    kc_run.add_argument("--http-port", type=int, default=None, help="default: a free port")
    kc_run.add_argument("--management-port", type=int, default=None, help="default: a free port")
    kc_run.add_argument(
        "--admin-password", default=None, help="of the master realm's admin (default: random)"
    )
    kc_run.add_argument("--timeout", type=float, default=180.0, help="start-up timeout in seconds")
    kc_run.set_defaults(handler=_cmd_keycloak_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
