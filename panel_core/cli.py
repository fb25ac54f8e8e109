"""``customer-panel`` command: migrate the database, deploy the models, open a case."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from panel_core import constants as c
from panel_core.cases import case_types
from panel_core.cases.service import CaseValidationError, ParticipantRegistration, open_case
from panel_core.clock import SystemClock
from panel_core.db.session import create_engine, create_session_factory
from panel_core.engine.mirror import DEAD_LETTER_STREAM, replay_record
from panel_core.engine.rest import CamundaRestClient
from panel_core.forms.checks import check_form
from panel_core.identity.pesel import make_pesel
from panel_core.identity.service import LoginService
from panel_core.outboxes import engine_outboxes
from panel_core.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = REPO_ROOT / "bpmn"


def model_files(bpmn_dir: Path = BPMN_DIR) -> list[Path]:
    """Every BPMN model and Camunda Form of the project, deployed together."""
    return sorted(bpmn_dir.glob("*.bpmn")) + sorted((bpmn_dir / "forms").glob("*.form"))


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


async def deploy(
    settings: Settings, files: list[Path] | None = None, descriptors: list[Path] | None = None
) -> dict[str, object]:
    """Deploy the models and forms, refusing them all if any form or descriptor is wrong.

    The case-type descriptors go to the panel's database once the engine has the models.
    """
    files = model_files() if files is None else files
    if descriptors is None:
        folders = {path.parent for path in files if path.suffix == ".bpmn"} or {BPMN_DIR}
        descriptors = [d for folder in sorted(folders) for d in case_types.descriptor_files(folder)]
    problems = check_models(files) + case_types.check_files(files + descriptors)
    if problems:
        raise ModelCheckError("\n".join(problems))
    async with CamundaRestClient(settings.camunda_rest_url) as engine:
        result = await engine.deploy(files)
    if descriptors:
        db = create_engine(settings.database_url)
        try:
            async with create_session_factory(db)() as session:
                for path in descriptors:
                    await case_types.store(session, path.read_bytes())
                await session.commit()
        finally:
            await db.dispose()
    return result


def demo_participants(co_borrowers: int) -> list[ParticipantRegistration]:
    """Made-up people with valid PESEL numbers and phone numbers from a reserved range."""
    roles = [c.ROLE_PRIMARY_BORROWER] + [c.ROLE_CO_BORROWER] * co_borrowers
    people = []
    for index, role in enumerate(roles):
        born = date(
            1970 + secrets.randbelow(30), 1 + secrets.randbelow(12), 1 + secrets.randbelow(28)
        )
        # Distinct serials keep the fragments distinct within the case.
        serial = index * 2000 + secrets.randbelow(2000)
        people.append(
            ParticipantRegistration(
                role=role,
                pesel=make_pesel(born, serial),
                phone=f"+48500000{secrets.randbelow(1000):03d}",
                locale="pl" if index % 2 == 0 else "en",
            )
        )
    return people


async def start_case(settings: Settings, co_borrowers: int, channel: str) -> int:
    db = create_engine(settings.database_url)
    people = demo_participants(co_borrowers)
    sessions = create_session_factory(db)
    try:
        async with CamundaRestClient(
            settings.camunda_rest_url, settings.camunda_request_timeout_seconds
        ) as engine:
            commands = engine_outboxes(settings, sessions, engine, redis=None).commands
            lease = commands.new_lease()
            opened = await open_case(
                sessions,
                case_type=c.CASE_TYPE_CREDIT,
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
    except CaseValidationError as exc:
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
    by_role_order = sorted(people, key=lambda p: p.role != c.ROLE_PRIMARY_BORROWER)
    for (participant_id, role), person in zip(opened.participants, by_role_order, strict=True):
        fragment = person.pesel[-settings.pesel_fragment_length :]
        print(
            f"participant {role}: {participant_id} "
            f"(PESEL ending {fragment}, phone {person.phone}, language {person.locale})"
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
            print(f"{_text(entry_id)}  {stream} {_text(text.get('entry'))}: {reason}")
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
    commands.add_parser("deploy", help="deploy the BPMN models and forms to the engine")
    start = commands.add_parser("start-case", help="open a credit application case")
    start.add_argument("--co-borrowers", type=int, default=1, help="number of co-borrowers")
    start.add_argument("--channel", default="cli", help="channel the case comes from")
    unlock_parser = commands.add_parser(
        "unlock", help="lift a participant's login lock (after too many wrong codes)"
    )
    unlock_parser.add_argument("participant", help="the participant's id")
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
            result = asyncio.run(deploy(settings))
        except ModelCheckError as exc:
            print(f"error: nothing was deployed:\n{exc}", file=sys.stderr)
            return 2
        print(f"deployed: {result.get('deploymentKey')}")
        return 0
    if args.command == "unlock":
        return asyncio.run(unlock(settings, args.participant))
    if args.command == "dead-letters":
        return asyncio.run(dead_letters(settings, replay=args.replay))
    return asyncio.run(start_case(settings, args.co_borrowers, args.channel))


if __name__ == "__main__":
    sys.exit(main())
