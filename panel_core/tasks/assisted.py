"""Assisted mode: a member of staff completes a participant's task with them on the phone.

Before the form opens, the participant proves they are the one on the line: the dashboard
sends a one-time code by SMS to the phone number on file and the member of staff types in
what the participant reads out. The code follows the panel's code rules
(``panel_core/identity/attempts.py``): only its HMAC is kept, bound to the participant, the
task and the member of staff; it is used once, expires, and every wrong one counts towards
the participant's locks, which login and signing codes share. A correct code opens the task
to that member of staff for ``PANEL_ASSISTED_SESSION_SECONDS`` (15 minutes).

The completion is the participant's, through the same use case as in the panel
(``panel_core/tasks/work.py``) and the completion outbox; the submission records who
assisted (``assisted_by``), the audit log names them, and the participants' feed says the
task was completed with the help of the bank. Consents are taken only where the case type
allows it (``"assisted": {"consents": true}``); a signature and documents never are: the
participant signs what they read and sends their files in the panel.

Who may: the realm roles of ``PANEL_STAFF_ASSISTED_ROLES`` (call-centre agents and team
managers by default); anyone else is refused on the server.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.branding import bank_sms
from panel_core.cases.case_types import Descriptor
from panel_core.cases.variants import ASSISTED, consent_keys, file_keys, signature_keys
from panel_core.cases.view import CaseView
from panel_core.clock import Clock
from panel_core.db.models import (
    AuditEvent,
    Case,
    PanelTask,
    Participant,
    TaskState,
    TaskSubmission,
)
from panel_core.engine.rest import Delivery, DeliveryOutcome
from panel_core.forms import form_today
from panel_core.forms.checks import check_form
from panel_core.i18n import N_, gettext
from panel_core.identity.actors import Client, ParticipantActor, StaffActor
from panel_core.identity.attempts import AttemptStore, Verdict
from panel_core.identity.codes import code_mac, generate_code
from panel_core.identity.service import participant_identity
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.outbox.dispatcher import Outbox
from panel_core.settings import Settings
from panel_core.tasks.completions import TaskNotOpenError, VariablesTooLargeError
from panel_core.tasks.consents import record_consents
from panel_core.tasks.task_form import TaskForm, form_for, variables_for
from panel_core.tasks.work import judge, send

PURPOSE_ASSISTED = "assisted"

NOT_ALLOWED = N_("Your role does not allow completing participants' tasks on the phone.")
SIGNATURE = N_(
    "This task is a signature: the participant signs in the panel, with a code bound to the "
    "document they read."
)
CONSENTS = N_(
    "This task asks for consents, which the participant gives only themselves, in the panel: "
    "this case type does not let the bank take them on the phone."
)
FILES = N_("This task asks for documents: the participant sends them in the panel.")
UNSUPPORTED = N_("This form uses rules the panel cannot check.")
NOT_OPEN = N_("This task is no longer open.")
NO_PHONE = N_("This participant has no phone number on file.")
EXPIRED = N_(
    "The check that the participant is on the phone has expired. Send a new code and ask them "
    "to read it out."
)
ANSWERS_TOO_LARGE = N_("The answers are too long to send. Shorten them and try again.")


class CodeSent(enum.Enum):
    """What became of a request for a code; the values name it in a page's address."""

    SENT = "sent"
    # Too many codes asked for in the window.
    LIMITED = "limited"
    # The participant's access is locked after too many wrong codes: no code is sent.
    LOCKED = "locked"
    # Locked until a member of staff unlocks it.
    BLOCKED = "blocked"
    NO_PHONE = "no-phone"


CODE_MESSAGES: Mapping[str, str] = {
    CodeSent.SENT.value: N_(
        "The code is on its way to the participant's phone. Ask them to read it out."
    ),
    CodeSent.LIMITED.value: N_(
        "Too many codes were sent to this participant just now. Wait a few minutes and send "
        "a new one."
    ),
    CodeSent.LOCKED.value: N_(
        "The participant's access is locked after too many wrong codes, so no code is sent. "
        "Try again later."
    ),
    CodeSent.BLOCKED.value: N_(
        "The participant's access is blocked after too many wrong codes, so no code is sent. "
        "It has to be unlocked first."
    ),
    CodeSent.NO_PHONE.value: NO_PHONE,
}


def _roles(text: str) -> frozenset[str]:
    return frozenset(role.strip() for role in text.split(",") if role.strip())


def may_assist(settings: Settings, actor: StaffActor) -> bool:
    """Whether this member of staff may complete participants' tasks on the phone."""
    return bool(actor.roles & _roles(settings.staff_assisted_roles))


def why_not(form: TaskForm, descriptor: Descriptor) -> str:
    """Why the task cannot be completed in assisted mode in this form (a msgid), or ""."""
    if check_form(form.schema):
        return UNSUPPORTED
    if signature_keys(form.schema):
        return SIGNATURE
    if file_keys(form.schema):
        return FILES
    if consent_keys(form.schema) and not descriptor.assisted.consents:
        return CONSENTS
    return ""


async def assisted_form(
    session: AsyncSession, task: PanelTask, descriptor: Descriptor, agent: StaffActor
) -> TaskForm:
    """The form the member of staff completes the task in: the descriptor's assisted variant
    for their groups, the task's own otherwise."""
    return await form_for(session, task, descriptor, mode=ASSISTED, groups=agent.groups)


def participant_task(case: Case, task: PanelTask | None) -> Participant | None:
    """The participant whose task of this case it is; None for anything else."""
    if task is None or task.case_id != case.id or task.participant_id is None:
        return None
    return next((p for p in case.participants if p.id == task.participant_id), None)


@dataclass(frozen=True, slots=True)
class PresenceOutcome:
    confirmed: bool
    message: str = ""


def _subject_tag(agent: StaffActor) -> str:
    # The identity provider's subject is an opaque string; a digest keeps key names plain.
    return hashlib.sha256(agent.subject.encode()).hexdigest()[:32]


class PresenceCheck:
    """The code a participant reads out, and the assisted session a correct one opens."""

    def __init__(self, settings: Settings, redis: Redis, clock: Clock) -> None:
        self._settings = settings
        self._redis = redis
        self._store = AttemptStore(redis)
        self._clock = clock

    @staticmethod
    def code_key(task_id: uuid.UUID, agent: StaffActor) -> str:
        return f"panel:auth:assisted:{task_id}:{_subject_tag(agent)}"

    @staticmethod
    def session_key(task_id: uuid.UUID, agent: StaffActor) -> str:
        return f"panel:assisted:session:{task_id}:{_subject_tag(agent)}"

    @staticmethod
    def kept_key(task_id: uuid.UUID, agent: StaffActor) -> str:
        return f"panel:assisted:kept:{task_id}:{_subject_tag(agent)}"

    def _mac(
        self, participant_id: uuid.UUID, task_id: uuid.UUID, agent: StaffActor, code: str
    ) -> str:
        return code_mac(
            self._settings.hash_key,
            purpose=PURPOSE_ASSISTED,
            binding=f"{task_id}|{agent.subject}",
            participant_id=str(participant_id),
            code=code.strip(),
        )

    async def send(
        self,
        session: AsyncSession,
        *,
        case: Case,
        participant: Participant,
        task: PanelTask,
        task_name: str,
        agent: StaffActor,
        client: Client | None,
    ) -> CodeSent:
        """Queue a fresh code to the participant's phone on file, unless they are locked or
        were sent too many; audited either way."""
        s = self._settings
        identity = participant_identity(s.hash_key, participant.id)
        outcome = CodeSent.SENT
        lock = await self._store.lock_state(
            identity,
            now=self._clock.now(),
            max_consecutive_failures=s.login_max_consecutive_failures,
        )
        if not participant.phone_e164:
            outcome = CodeSent.NO_PHONE
        elif lock.until_unlocked:
            outcome = CodeSent.BLOCKED
        elif lock.locked:
            outcome = CodeSent.LOCKED
        elif not await self._store.hit(
            f"send:assisted:{identity}",
            limit=s.otp_resend_limit + 1,
            window_seconds=s.otp_resend_window_seconds,
        ):
            outcome = CodeSent.LIMITED
        if outcome is CodeSent.SENT and participant.phone_e164:
            code = generate_code(s.otp_length)
            await self._store.store_bound_code(
                self.code_key(task.id, agent),
                identity,
                str(participant.id),
                mac=self._mac(participant.id, task.id, agent, code),
                expires_at=self._clock.now() + s.otp_ttl_seconds,
                ttl_seconds=s.otp_ttl_seconds + 60,
            )
            await enqueue_sms(
                session,
                idempotency_key=f"{c.SMS_ASSISTED_CODE}:{task.id}:{secrets.token_hex(8)}",
                purpose=c.SMS_ASSISTED_CODE,
                phone_e164=participant.phone_e164,
                locale=participant.locale,
                context={
                    "code": code,
                    "minutes": s.otp_ttl_seconds // 60,
                    "case_number": case.case_number,
                    "task": task_name,
                },
                participant_id=participant.id,
                case_id=case.id,
                bank_texts=bank_sms(s.branding_file),
            )
        audit.record(
            session,
            audit.ASSISTED_CODE_SENT,
            case_id=case.id,
            participant_id=participant.id,
            actor=agent,
            client=client,
            task=task.element_id,
            outcome=outcome.value,
        )
        return outcome

    async def verify(
        self,
        session: AsyncSession,
        *,
        case: Case,
        participant: Participant,
        task: PanelTask,
        agent: StaffActor,
        code: str,
        client: Client | None,
    ) -> PresenceOutcome:
        """Check and use up the code read out; a correct one opens the assisted session."""
        s = self._settings
        outcome = await self._check(participant, task, agent, code)
        audit.record(
            session,
            audit.ASSISTED_PRESENCE_CONFIRMED if outcome.confirmed else audit.ASSISTED_CODE_REFUSED,
            case_id=case.id,
            participant_id=participant.id,
            actor=agent,
            client=client,
            task=task.element_id,
        )
        if outcome.confirmed:
            expires_at = self._clock.now() + s.assisted_session_seconds
            await self._redis.set(
                self.session_key(task.id, agent),
                msgspec.json.encode({"participant": str(participant.id), "expires_at": expires_at}),
                ex=s.assisted_session_seconds + 60,
            )
        return outcome

    async def _check(
        self, participant: Participant, task: PanelTask, agent: StaffActor, code: str
    ) -> PresenceOutcome:
        s = self._settings
        if not code.strip().isdigit():
            return PresenceOutcome(False, gettext("Enter the code the participant reads out."))
        result = await self._store.verify(
            self.code_key(task.id, agent),
            participant_identity(s.hash_key, participant.id),
            candidate_mac=self._mac(participant.id, task.id, agent, code),
            now=self._clock.now(),
            max_failures_per_code=s.otp_max_failures_per_code,
            max_identity_failures=s.login_max_failures,
            failure_window_seconds=s.login_failure_window_seconds,
            lock_seconds=s.login_lock_seconds,
            max_consecutive_failures=s.login_max_consecutive_failures,
        )
        if result.verdict == Verdict.OK:
            return PresenceOutcome(True)
        if result.verdict == Verdict.USED:
            return PresenceOutcome(
                False, gettext("This code has already been used. Send a new code.")
            )
        if result.verdict == Verdict.LOCKED and result.until_unlocked:
            return PresenceOutcome(
                False,
                gettext(
                    "The participant's access is blocked after too many wrong codes. "
                    "It has to be unlocked before they can continue."
                ),
            )
        if result.verdict == Verdict.LOCKED:
            return PresenceOutcome(
                False,
                gettext(
                    "Too many wrong codes. The participant's access is locked for "
                    "%(minutes)s minutes.",
                    minutes=max(1, result.locked_seconds // 60),
                ),
            )
        return PresenceOutcome(
            False,
            gettext(
                "The code is wrong or has expired. Check it with the participant, or send a "
                "new code."
            ),
        )

    async def seconds_left(
        self, task: PanelTask, agent: StaffActor, participant: Participant
    ) -> int:
        """How long the assisted session for this task and member of staff still lasts; 0
        when there is none (never confirmed, expired, or for another participant)."""
        raw = await self._redis.get(self.session_key(task.id, agent))
        if raw is None:
            return 0
        try:
            stored = msgspec.json.decode(raw, type=dict[str, Any])
            left = float(stored["expires_at"]) - self._clock.now()
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError):
            return 0
        if stored.get("participant") != str(participant.id) or left <= 0:
            return 0
        return int(left)

    async def end(self, task: PanelTask, agent: StaffActor) -> None:
        await self._redis.delete(self.session_key(task.id, agent), self.kept_key(task.id, agent))

    async def keep_answers(
        self, task: PanelTask, agent: StaffActor, answers: Mapping[str, Any]
    ) -> None:
        """Hold what was typed when the session ran out, for the form after the next check;
        never longer than one session."""
        await self._redis.set(
            self.kept_key(task.id, agent),
            msgspec.json.encode(dict(answers)),
            ex=self._settings.assisted_session_seconds,
        )

    async def kept_answers(self, task: PanelTask, agent: StaffActor) -> dict[str, Any]:
        raw = await self._redis.getdel(self.kept_key(task.id, agent))
        if raw is None:
            return {}
        try:
            return msgspec.json.decode(raw, type=dict[str, Any])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}


@dataclass(slots=True)
class AssistedCompletion:
    errors: dict[str, str] = field(default_factory=dict)
    # A msgid: why nothing was stored.
    refused: str = ""
    delivered: bool = False


async def complete(
    session: AsyncSession,
    completions: Outbox[TaskSubmission, Delivery],
    clock: Clock,
    *,
    case: Case,
    participant: Participant,
    task: PanelTask,
    form: TaskForm,
    descriptor: Descriptor,
    agent: StaffActor,
    submitted: Mapping[str, Any],
    client: Client | None,
) -> AssistedCompletion:
    """Complete the participant's task with the answers given on the phone.

    The caller has checked the member of staff's role and the assisted session. Stored as
    the participant's completion, assisted by ``agent``, then delivered to the engine once
    at once; the completion outbox takes it from there.
    """
    if task.state != TaskState.OPEN:
        return AssistedCompletion(refused=NOT_OPEN)
    blocked = why_not(form, descriptor)
    if blocked:
        return AssistedCompletion(refused=blocked)
    answers, errors = judge(
        task,
        submitted,
        variables=await variables_for(session, task, form),
        today=form_today(clock),
        schema=form.schema,
    )
    if errors:
        return AssistedCompletion(errors=errors)
    lease = completions.new_lease()
    actor = ParticipantActor(case.id, participant.id)
    try:
        submission = await send(
            session,
            actor,
            task,
            answers,
            lease=lease,
            client=client,
            schema=form.schema,
            form_key=form.form_key,
            assisted_by=agent,
        )
    except TaskNotOpenError:
        await session.rollback()
        return AssistedCompletion(refused=NOT_OPEN)
    except VariablesTooLargeError:
        await session.rollback()
        return AssistedCompletion(errors={"send": gettext(ANSWERS_TOO_LARGE)})
    if descriptor.assisted.consents:
        record_consents(
            session,
            task,
            participant.id,
            answers,
            schema=form.schema,
            form_key=form.form_key,
            assisted_by=agent.reference,
        )
    try:
        await session.commit()
    except IntegrityError:
        # The participant's own submission from the panel was stored first.
        await session.rollback()
        return AssistedCompletion(refused=NOT_OPEN)
    delivery = await completions.deliver_leased(submission.id, lease)
    return AssistedCompletion(
        delivered=delivery is not None and delivery.outcome is DeliveryOutcome.DELIVERED
    )


# -- the case page's section -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenTask:
    task: PanelTask
    name: str
    who: str
    # Why it cannot be completed on the phone (translated), or "".
    blocked: str
    variant: bool


@dataclass(frozen=True, slots=True)
class AssistedDone:
    occurred_at: datetime
    task: str
    who: str
    # The member of staff who completed it with the participant.
    by: str


@dataclass(frozen=True, slots=True)
class AssistedSection:
    may_assist: bool
    open: list[OpenTask]
    done: list[AssistedDone]


async def case_section(
    session: AsyncSession, settings: Settings, agent: StaffActor, view: CaseView
) -> AssistedSection:
    """What the case page shows of assisted mode: the participants' open tasks, each with
    whether it can be completed on the phone, and the tasks completed that way, by whom."""
    labels = {row.participant.id: row.label for row in view.participants}
    descriptor = view.descriptor
    opened = []
    for row in view.tasks:
        task = row.task
        if task.participant_id is None or task.state != TaskState.OPEN:
            continue
        form = await assisted_form(session, task, descriptor, agent)
        blocked = why_not(form, descriptor)
        opened.append(
            OpenTask(
                task=task,
                name=row.name,
                who=labels.get(task.participant_id, ""),
                blocked=gettext(blocked) if blocked else "",
                variant=form.variant,
            )
        )
    events = await session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.case_id == view.case.id,
            AuditEvent.event == audit.TASK_COMPLETED,
            AuditEvent.actor_kind == "staff",
            AuditEvent.participant_id.is_not(None),
        )
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    done = [
        AssistedDone(
            occurred_at=event.occurred_at,
            task=descriptor.task_name(str((event.details or {}).get("task", "")), ""),
            who=labels.get(event.participant_id, "") if event.participant_id else "",
            by=f"{event.staff_name} ({(event.details or {}).get('username', '')})",
        )
        for event in events
        if (event.details or {}).get("assisted")
    ]
    return AssistedSection(may_assist=may_assist(settings, agent), open=opened, done=done)
