"""``customer-panel`` command: migrate the database, deploy the models, open a case."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select

from panel_core.audit import log as audit
from panel_core.cases import case_types
from panel_core.cases.export import case_export
from panel_core.cases.numbers import normalize_case_number
from panel_core.cases.retention import RetentionJob
from panel_core.cases.service import CaseValidationError, ParticipantRegistration, open_case
from panel_core.clock import SystemClock
from panel_core.db.models import Case
from panel_core.db.session import create_engine, create_session_factory
from panel_core.documents.storage import LocalDiskStorage
from panel_core.engine.mirror import DEAD_LETTER_STREAM, replay_record
from panel_core.engine.rest import CamundaRestClient
from panel_core.forms.checks import check_form
from panel_core.identity.pesel import make_pesel
from panel_core.identity.service import LoginService
from panel_core.outboxes import engine_outboxes
from panel_core.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = REPO_ROOT / "bpmn"


def case_type_folders(bpmn_dir: Path = BPMN_DIR) -> list[Path]:
    """Every case type's folder: ``bpmn/<case-type>/`` with its model, forms and descriptor."""
    return sorted(
        folder
        for folder in bpmn_dir.iterdir()
        if folder.is_dir() and (any(folder.glob("*.bpmn")) or any(folder.glob("*.case.json")))
    )


def folder_files(folder: Path) -> list[Path]:
    """The model(s) and forms of one case type's folder: one deployment."""
    return (
        sorted(folder.glob("*.bpmn"))
        + sorted(folder.glob("*.form"))
        + sorted((folder / "forms").glob("*.form"))
    )


def model_files(bpmn_dir: Path = BPMN_DIR) -> list[Path]:
    """The models and forms of every case type."""
    return [path for folder in case_type_folders(bpmn_dir) for path in folder_files(folder)]


def case_type_folder(target: str, bpmn_dir: Path = BPMN_DIR) -> Path:
    """A folder given as a path, or a case type's folder by its name under ``bpmn/``."""
    for candidate in (Path(target), bpmn_dir / target):
        if candidate.is_dir() and folder_files(candidate):
            return candidate
    raise ModelCheckError(
        f"{target!r} is neither a case type's folder nor a case type under {bpmn_dir}; "
        f"known: {', '.join(f.name for f in case_type_folders(bpmn_dir)) or 'none'}"
    )


def migrate(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    # "heads": features developed side by side may each add a migration branch.
    command.upgrade(config, "heads")


class ModelCheckError(ValueError):
    """A model or form uses something the panel cannot honour; nothing was deployed."""


def check_models(files: list[Path]) -> list[str]:
    """Every problem that would make the panel misjudge a form at run time."""
    problems: list[str] = []
    for path in files:
        if path.suffix != ".form":
            continue
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: not a readable form ({exc})")
            continue
        problems.extend(f"{path.name}: {problem}" for problem in check_form(schema))
    return problems


@dataclass(frozen=True, slots=True)
class Deployed:
    """What one case type's deployment gave: versions as the engine and the panel keep them."""

    folder: Path
    deployment_key: str
    # (process id, version) and (form id, version), as the engine numbered them.
    processes: list[tuple[str, int]]
    forms: list[tuple[str, int]]
    # (case type, descriptor version, whether this deployment made that version).
    descriptors: list[tuple[str, int, bool]]

    def lines(self) -> list[str]:
        out = [f"{self.folder.name}: deployment {self.deployment_key}"]
        out += [f"  process {pid} version {version}" for pid, version in self.processes]
        out += [f"  form {fid} version {version}" for fid, version in self.forms]
        out += [
            f"  descriptor {case_type} version {version}" + ("" if new else " (unchanged)")
            for case_type, version, new in self.descriptors
        ]
        return out


def _deployed_resources(result: dict[str, Any]) -> tuple[list[tuple[str, int]], ...]:
    processes: list[tuple[str, int]] = []
    forms: list[tuple[str, int]] = []
    for item in result.get("deployments", []):
        process = item.get("processDefinition")
        if process:
            processes.append(
                (process["processDefinitionId"], int(process["processDefinitionVersion"]))
            )
        form = item.get("form")
        if form:
            forms.append((form["formId"], int(form["version"])))
    return processes, forms


def check_folder(folder: Path) -> list[str]:
    """Every problem the panel would meet at run time with this case type, named."""
    files = folder_files(folder)
    descriptors = case_types.descriptor_files(folder)
    problems = check_models(files) + case_types.check_files(files + descriptors)
    if not descriptors:
        problems.append(f"{folder.name}: no case-type descriptor (<case-type>.case.json)")
    return problems


async def deploy(settings: Settings, folders: list[Path] | None = None) -> list[Deployed]:
    """Deploy case types, each its own deployment (model, forms), then its descriptor.

    Every folder is checked before anything is deployed: one wrong file stops them all. A
    folder deploys only its own case type, so other processes get no new version.
    """
    folders = case_type_folders() if folders is None else folders
    problems = [problem for folder in folders for problem in check_folder(folder)]
    if problems:
        raise ModelCheckError("\n".join(problems))
    deployed = []
    db = create_engine(settings.database_url)
    try:
        async with CamundaRestClient(settings.camunda_rest_url) as engine:
            for folder in folders:
                result = await engine.deploy(folder_files(folder))
                processes, forms = _deployed_resources(result)
                versions = dict(processes)
                stored = []
                async with create_session_factory(db)() as session:
                    for path in case_types.descriptor_files(folder):
                        descriptor, version, new = await case_types.store(
                            session,
                            path.read_bytes(),
                            process_version=versions.get(
                                case_types.parse(path.read_bytes()).process_id
                            ),
                        )
                        stored.append((descriptor.case_type, version, new))
                    await session.commit()
                deployed.append(
                    Deployed(folder, str(result.get("deploymentKey")), processes, forms, stored)
                )
    finally:
        await db.dispose()
    return deployed


class ParticipantArgumentError(ValueError):
    """A ``--participant`` argument that cannot be read; the message says why."""


PARTICIPANT_KEYS = ("role", "pesel", "phone", "locale", "email")


def demo_person(index: int, role: str, locale: str | None = None) -> ParticipantRegistration:
    """A made-up person: a valid PESEL and a phone number from a reserved range."""
    born = date(1970 + secrets.randbelow(30), 1 + secrets.randbelow(12), 1 + secrets.randbelow(28))
    # Distinct serials keep the fragments distinct within the case.
    serial = index * 2000 + secrets.randbelow(2000)
    return ParticipantRegistration(
        role=role,
        pesel=make_pesel(born, serial),
        phone=f"+48500000{secrets.randbelow(1000):03d}",
        locale=locale or ("pl" if index % 2 == 0 else "en"),
    )


def parse_participants(arguments: list[str]) -> list[ParticipantRegistration]:
    """``role=…,pesel=…,phone=…,locale=…,email=…`` per participant; what is left out is made
    up, except the e-mail address: without one the person gets no e-mail."""
    people = []
    for index, argument in enumerate(arguments):
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in argument.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in PARTICIPANT_KEYS or key in fields:
                wanted = ", ".join(f"{k}=…" for k in PARTICIPANT_KEYS)
                raise ParticipantArgumentError(
                    f"--participant {argument!r}: give {wanted} separated by commas, each once"
                )
            fields[key] = value.strip()
        if not fields.get("role"):
            raise ParticipantArgumentError(f"--participant {argument!r}: role=… is required")
        made_up = demo_person(index, fields["role"], fields.get("locale"))
        people.append(
            ParticipantRegistration(
                role=fields["role"],
                pesel=fields.get("pesel", made_up.pesel),
                phone=fields.get("phone", made_up.phone),
                locale=made_up.locale,
                email=fields.get("email", ""),
            )
        )
    return people


def minimal_participants(descriptor: case_types.Descriptor) -> list[ParticipantRegistration]:
    """Made-up people for a case of the type: each role's minimum, and one of the first role
    with people at all when no role requires anyone."""
    roles = [role for role, entry in descriptor.roles.items() for _ in range(entry.min)]
    if not roles:
        roles = [next(role for role, entry in descriptor.roles.items() if entry.max)]
    return [demo_person(index, role) for index, role in enumerate(roles)]


async def start_case(
    settings: Settings, case_type: str, participants: list[str], channel: str
) -> int:
    db = create_engine(settings.database_url)
    sessions = create_session_factory(db)
    try:
        async with sessions() as session:
            descriptor = await case_types.find(session, case_type)
        if descriptor is None:
            raise CaseValidationError(
                f"Unknown case type {case_type!r}: deploy it first (customer-panel deploy)."
            )
        people = (
            parse_participants(participants) if participants else minimal_participants(descriptor)
        )
        async with CamundaRestClient(
            settings.camunda_rest_url, settings.camunda_request_timeout_seconds
        ) as engine:
            commands = engine_outboxes(settings, sessions, engine, redis=None).commands
            lease = commands.new_lease()
            opened = await open_case(
                sessions,
                case_type=case_type,
                participants=people,
                channel=channel,
                case_number_prefix=settings.case_number_prefix,
                hash_key=settings.hash_key,
                fragment_length=settings.pesel_fragment_length,
                start_lease=lease,
            )
            instance_key: int | None = None
            if opened.start_command_id is not None:
                result = await commands.deliver_leased(opened.start_command_id, lease)
                instance_key = result.process_instance_key if result is not None else None
    except (CaseValidationError, ParticipantArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"case number: {opened.case_number}")
    print(f"case id: {opened.case_id}")
    if instance_key is not None:
        print(f"process instance: {instance_key}")
    else:
        print("process instance: not started yet; the workers start it once the engine is up")
    by_role_order = [people[i] for i in descriptor.in_role_order(p.role for p in people)]
    for (participant_id, role), person in zip(opened.participants, by_role_order, strict=True):
        fragment = person.pesel[-settings.pesel_fragment_length :]
        print(
            f"participant {role}: {participant_id} "
            f"(PESEL ending {fragment}, phone {person.phone}, language {person.locale}"
            + (f", e-mail {person.email}" if person.email else "")
            + ")"
        )
    return 0


async def unlock(settings: Settings, participant_id: str) -> int:
    """Staff unlock of a participant's access after too many wrong codes."""
    try:
        participant = uuid.UUID(participant_id)
    except ValueError:
        print("error: give the participant's id (a UUID)", file=sys.stderr)
        return 2
    db = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    try:
        await LoginService(settings, create_session_factory(db), redis, SystemClock()).unlock(
            participant
        )
    finally:
        await redis.aclose()
        await db.dispose()
    print(f"unlocked: {participant}")
    return 0


async def purge(settings: Settings, *, dry_run: bool) -> int:
    """Run the retention purge now, as the workers do on schedule; 1 if a case failed."""
    db = create_engine(settings.database_url)
    try:
        job = RetentionJob(
            create_session_factory(db),
            LocalDiskStorage(settings.document_storage_dir),
            SystemClock(),
        )
        if dry_run:
            print(f"due: {await job.due()} case(s)")
            return 0
        report = await job.run_once()
    finally:
        await db.dispose()
    for number in report.purged:
        print(f"purged: {number}")
    for number in report.failed:
        print(f"failed: {number} (left for the next run)", file=sys.stderr)
    removed = ", ".join(f"{kind} {rows}" for kind, rows in sorted(report.removed.items()))
    print(f"{len(report.purged)} case(s) purged" + (f"; rows: {removed}" if removed else ""))
    return 1 if report.failed else 0


async def export(settings: Settings, case_number: str, output: Path | None) -> int:
    """Write one case as JSON (case_export) to a file or standard output, audited."""
    db = create_engine(settings.database_url)
    try:
        async with create_session_factory(db)() as session:
            case_id = await session.scalar(
                select(Case.id).where(Case.case_number == normalize_case_number(case_number))
            )
            exported = await case_export(session, case_id) if case_id is not None else None
            if case_id is None or exported is None:
                print(f"error: no case {case_number}", file=sys.stderr)
                return 2
            text = json.dumps(exported, ensure_ascii=False, indent=2) + "\n"
            if output:
                await asyncio.to_thread(output.write_text, text, encoding="utf-8")
            # Recorded only once the export is written: a failed write exported nothing.
            audit.record(
                session,
                audit.CASE_EXPORTED,
                case_id=case_id,
                via="cli",
                output=str(output) if output else "stdout",
            )
            await session.commit()
    finally:
        await db.dispose()
    if output:
        print(f"exported: {case_number} to {output}")
    else:
        sys.stdout.write(text)
    return 0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def dead_letters(settings: Settings, *, replay: bool) -> int:
    """List the set-aside engine records, or apply them again once their cause is fixed."""
    db = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    failed = 0
    try:
        entries = await redis.xrange(DEAD_LETTER_STREAM)
        if not entries:
            print("no engine records are set aside")
            return 0
        sessions = create_session_factory(db)
        for entry_id, fields in entries:
            text = {_text(k): v for k, v in (fields or {}).items()}
            stream, reason = _text(text.get("stream")), _text(text.get("reason"))
            # The consumer group (record consumer shard) that set it aside, when it says.
            group = f" [{_text(text.get('group'))}]" if text.get("group") else ""
            print(f"{_text(entry_id)}  {stream} {_text(text.get('entry'))}{group}: {reason}")
            if not replay:
                continue
            record = text.get("record") or b""
            payload = record.encode() if isinstance(record, str) else bytes(record)
            outcome = await replay_record(sessions, stream, payload)
            print(f"  {outcome}")
            if outcome == "applied":
                await redis.xdel(DEAD_LETTER_STREAM, _text(entry_id))
            else:
                failed += 1
    finally:
        await redis.aclose()
        await db.dispose()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="customer-panel", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the database schema up to date")
    deploy_parser = commands.add_parser(
        "deploy", help="check and deploy case types: model, forms and descriptor"
    )
    deploy_parser.add_argument(
        "case_types",
        nargs="*",
        metavar="FOLDER_OR_CASE_TYPE",
        help="a case type's folder, or its name under bpmn/ (default: every case type)",
    )
    start = commands.add_parser("start-case", help="open a case of a deployed case type")
    start.add_argument(
        "--case-type", required=True, help="the case type, as its descriptor names it"
    )
    start.add_argument(
        "--participant",
        action="append",
        default=[],
        metavar="role=…,pesel=…,phone=…,locale=…,email=…",
        help="one participant (repeatable); a left-out PESEL, phone or language is made up,"
        " a left-out e-mail address is none;"
        " without any, one made-up person per role the case type requires",
    )
    start.add_argument("--channel", default="cli", help="channel the case comes from")
    unlock_parser = commands.add_parser(
        "unlock", help="lift a participant's login lock (after too many wrong codes)"
    )
    unlock_parser.add_argument("participant", help="the participant's id")
    purge_parser = commands.add_parser(
        "purge", help="purge the personal data of closed cases whose retention has ended"
    )
    purge_parser.add_argument(
        "--dry-run", action="store_true", help="only count the cases that are due"
    )
    export_parser = commands.add_parser(
        "export",
        help="write a case as JSON: participants, tasks, documents' names, conversations, audit",
    )
    export_parser.add_argument("case_number", metavar="CASE-NUMBER", help="the case's number")
    export_parser.add_argument(
        "--output", metavar="FILE", help="the file to write (default: standard output)"
    )
    letters = commands.add_parser(
        "dead-letters",
        help="list the engine records the workers set aside, or apply them again (--replay)",
    )
    letters.add_argument(
        "--replay",
        action="store_true",
        help="apply each set-aside record again; those that now apply leave the list",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "migrate":
        migrate(settings.database_url)
        return 0
    if args.command == "deploy":
        try:
            folders = [case_type_folder(target) for target in args.case_types] or None
            deployed = asyncio.run(deploy(settings, folders))
        except ModelCheckError as exc:
            print(f"error: nothing was deployed:\n{exc}", file=sys.stderr)
            return 2
        for item in deployed:
            print("\n".join(item.lines()))
        return 0
    if args.command == "unlock":
        return asyncio.run(unlock(settings, args.participant))
    if args.command == "purge":
        return asyncio.run(purge(settings, dry_run=args.dry_run))
    if args.command == "export":
        output = Path(args.output).resolve() if args.output else None
        return asyncio.run(export(settings, args.case_number, output))
    if args.command == "dead-letters":
        return asyncio.run(dead_letters(settings, replay=args.replay))
    return asyncio.run(start_case(settings, args.case_type, args.participant, args.channel))


if __name__ == "__main__":
    sys.exit(main())
