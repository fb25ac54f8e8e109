"""Login to a case: case number + PESEL fragment, then a one-time code sent by SMS.

The case number and the fragment are identifiers, not secrets; the code is the only factor.
So every answer before a successful code check is the same whether or not the case and the
participant exist: unknown identities get a decoy attempt that behaves exactly like a real
one (same counters, same limits, same pages), except that no SMS leaves.
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core import constants as c
from panel_core.audit import log as audit
from panel_core.branding import bank_sms
from panel_core.cases import closure
from panel_core.cases.numbers import normalize_case_number
from panel_core.clock import Clock
from panel_core.db.models import Case, Participant
from panel_core.identity.actors import Client
from panel_core.identity.attempts import Attempt, AttemptStore, LockState, Verdict, VerifyResult
from panel_core.identity.codes import code_mac, generate_code, identity_key
from panel_core.identity.pesel import fragment_hash, is_fragment_shape
from panel_core.notifications.sms_outbox import enqueue_sms
from panel_core.settings import Settings

PURPOSE_LOGIN = "login"
PURPOSE_INVITATION = "invitation"


class Outcome(enum.Enum):
    CODE_SENT = "code-sent"
    SIGNED_IN = "signed-in"
    WRONG = "wrong"
    LOCKED = "locked"
    # The right code, sent again after it signed someone in: no failure, no second session.
    ALREADY_USED = "already-used"
    TOO_MANY_CODES = "too-many-codes"
    RATE_LIMITED = "rate-limited"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: Outcome
    attempt_id: str = ""
    identity: str = ""
    participant_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    locked_seconds: int = 0
    # LOCKED until a member of staff unlocks: the person is told to call the bank.
    until_unlocked: bool = False
    # Set when few wrong codes remain before the access locks, so the person is warned.
    attempts_before_lock: int | None = None
    # The language the bank registered for the person signed in: their pages speak it.
    locale: str = ""


def participant_identity(key: str, participant_id: uuid.UUID | str) -> str:
    return identity_key(key, f"participant|{participant_id}")


def client_network(ip: str | None) -> str:
    """The client a rate limit counts: its IPv4 address, or its IPv6 /64.

    An IPv6 subscriber is given a whole /64 and can pick any address in it, so counting single
    addresses would give one person 2**64 budgets.
    """
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _locked(identity: str, lock: LockState) -> LoginResult:
    return LoginResult(
        Outcome.LOCKED,
        identity=identity,
        locked_seconds=lock.seconds,
        until_unlocked=lock.until_unlocked,
    )


class LoginService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._store = AttemptStore(redis)
        self._clock = clock

    @property
    def store(self) -> AttemptStore:
        return self._store

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def _resolve(
        self, session: AsyncSession, case_number: str, fragment: str
    ) -> tuple[str, Participant | None, Case | None]:
        key = self._settings.hash_key
        case = await session.scalar(select(Case).where(Case.case_number == case_number))
        if case is not None and closure.participant_access(case, self._now()) is None:
            # A case whose access has ended answers exactly as a case that never existed.
            case = None
        participant = None
        if case is not None and is_fragment_shape(fragment, self._settings.pesel_fragment_length):
            participant = await session.scalar(
                select(Participant).where(
                    Participant.case_id == case.id,
                    Participant.pesel_fragment_hash == fragment_hash(key, case.id, fragment),
                )
            )
        if participant is None:
            return identity_key(key, f"unknown|{case_number}|{fragment}"), None, None
        return participant_identity(key, participant.id), participant, case

    async def _ip_allowed(self, client: Client) -> bool:
        s = self._settings
        return await self._store.hit(
            f"ip:{client_network(client.ip)}",
            limit=s.login_ip_limit,
            window_seconds=s.login_ip_window_seconds,
        )

    async def _lock_state(self, identity: str) -> LockState:
        return await self._store.lock_state(
            identity,
            now=self._clock.now(),
            max_consecutive_failures=self._settings.login_max_consecutive_failures,
        )

    async def _send_allowed(self, identity: str) -> bool:
        s = self._settings
        return await self._store.hit(
            f"send:{identity}",
            limit=s.otp_resend_limit + 1,
            window_seconds=s.otp_resend_window_seconds,
        )

    def _mac(self, purpose: str, binding: str, participant_ref: str, code: str) -> str:
        return code_mac(
            self._settings.hash_key,
            purpose=purpose,
            binding=binding,
            participant_id=participant_ref,
            code=code.strip(),
        )

    async def _check(self, key: str, identity: str, candidate_mac: str) -> VerifyResult:
        s = self._settings
        return await self._store.verify(
            key,
            identity,
            candidate_mac=candidate_mac,
            now=self._clock.now(),
            max_failures_per_code=s.otp_max_failures_per_code,
            max_identity_failures=s.login_max_failures,
            failure_window_seconds=s.login_failure_window_seconds,
            lock_seconds=s.login_lock_seconds,
            max_consecutive_failures=s.login_max_consecutive_failures,
        )

    async def _send_login_code(
        self,
        session: AsyncSession,
        participant: Participant,
        *,
        attempt_id: str,
        code: str,
        client: Client,
        resend: bool,
    ) -> None:
        assert participant.phone_e164
        await enqueue_sms(
            session,
            # A resend is a new message of the same attempt.
            idempotency_key=f"{c.SMS_LOGIN_CODE}:{attempt_id}:{secrets.token_hex(4)}",
            purpose=c.SMS_LOGIN_CODE,
            phone_e164=participant.phone_e164,
            locale=participant.locale,
            context={"code": code, "minutes": self._settings.otp_ttl_seconds // 60},
            participant_id=participant.id,
            case_id=participant.case_id,
            bank_texts=bank_sms(self._settings.branding_file),
        )
        audit.record(
            session,
            audit.LOGIN_CODE_SENT,
            case_id=participant.case_id,
            participant_id=participant.id,
            client=client,
            resend=resend,
        )
        await session.commit()

    async def _within_rate_limits(self, client: Client, case_number: str) -> bool:
        s = self._settings
        ip_ok = await self._ip_allowed(client)
        # Per case *and* client: a stranger who knows only the case number and sends random
        # fragments uses up their own budget, never that of a participant elsewhere. It cannot
        # depend on whether the fragment is right, or the answer over the limit would tell
        # who is a participant.
        case_ok = await self._store.hit(
            f"case:{case_number}:from:{client_network(client.ip)}",
            limit=s.login_case_limit,
            window_seconds=s.login_case_window_seconds,
        )
        return ip_ok and case_ok

    def _warning(self, identity_failures: int) -> int | None:
        left = self._settings.login_max_failures - identity_failures
        return left if 0 < left <= self._settings.login_warn_when_attempts_left else None

    async def start(self, case_number: str, fragment: str, client: Client) -> LoginResult:
        """Step one: find the participant and send a code — or pretend to, identically."""
        s = self._settings
        case_number = normalize_case_number(case_number)
        if not await self._within_rate_limits(client, case_number):
            return LoginResult(Outcome.RATE_LIMITED)
        async with self._sessions() as session:
            identity, participant, case = await self._resolve(session, case_number, fragment)
            lock = await self._lock_state(identity)
            if lock.locked:
                return _locked(identity, lock)
            if not await self._send_allowed(identity):
                return LoginResult(Outcome.TOO_MANY_CODES, identity=identity)
            attempt_id = secrets.token_urlsafe(16)
            code = generate_code(s.otp_length)
            participant_ref = str(participant.id) if participant is not None else ""
            # The code and its MAC are made for decoys too, so both paths do the same work.
            mac = self._mac(PURPOSE_LOGIN, attempt_id, participant_ref, code)
            real = participant is not None and bool(participant.phone_e164)
            await self._store.create(
                Attempt(attempt_id, identity, participant_ref, str(case.id) if case else ""),
                mac=mac if real else "",
                expires_at=self._clock.now() + s.otp_ttl_seconds,
                ttl_seconds=s.otp_ttl_seconds + 60,
            )
            if real and participant is not None:
                await self._send_login_code(
                    session,
                    participant,
                    attempt_id=attempt_id,
                    code=code,
                    client=client,
                    resend=False,
                )
        return LoginResult(Outcome.CODE_SENT, attempt_id=attempt_id, identity=identity)

    async def resend(self, attempt_id: str, identity: str, client: Client) -> LoginResult:
        """A new code for the same attempt; the failures so far still count."""
        s = self._settings
        lock = await self._lock_state(identity)
        if lock.locked:
            return _locked(identity, lock)
        if not await self._ip_allowed(client):
            return LoginResult(Outcome.RATE_LIMITED)
        if not await self._send_allowed(identity):
            return LoginResult(Outcome.TOO_MANY_CODES, attempt_id=attempt_id, identity=identity)
        attempt = await self._store.load(attempt_id)
        if attempt is None or attempt.identity != identity:
            # The attempt ran out (expired or voided): the person starts again at step one.
            return LoginResult(Outcome.WRONG, identity=identity)
        code = generate_code(s.otp_length)
        mac = self._mac(PURPOSE_LOGIN, attempt_id, attempt.participant_id, code)
        real = bool(attempt.participant_id)
        replaced = await self._store.replace_code(
            attempt_id,
            mac=mac if real else "",
            expires_at=self._clock.now() + s.otp_ttl_seconds,
            ttl_seconds=s.otp_ttl_seconds + 60,
        )
        if not replaced:
            # Gone or used since it was loaded: a code sent now would open nothing.
            return LoginResult(Outcome.WRONG, identity=identity)
        if real:
            async with self._sessions() as session:
                participant = await session.get(Participant, uuid.UUID(attempt.participant_id))
                if participant is not None and participant.phone_e164:
                    await self._send_login_code(
                        session,
                        participant,
                        attempt_id=attempt_id,
                        code=code,
                        client=client,
                        resend=True,
                    )
        return LoginResult(Outcome.CODE_SENT, attempt_id=attempt_id, identity=identity)

    async def verify_code(
        self, attempt_id: str, identity: str, code: str, client: Client
    ) -> LoginResult:
        """Step two: check and consume the code, atomically."""
        if not await self._ip_allowed(client):
            return LoginResult(Outcome.RATE_LIMITED)
        attempt = await self._store.load(attempt_id)
        participant_ref = attempt.participant_id if attempt else ""
        result = await self._check(
            self._store.attempt_key(attempt_id),
            identity,
            self._mac(PURPOSE_LOGIN, attempt_id, participant_ref, code),
        )
        return await self._conclude(result, identity, client, attempt_id=attempt_id)

    async def verify_invitation(
        self, case_number: str, fragment: str, code: str, client: Client
    ) -> LoginResult:
        """The invitation link's shortcut: case number, fragment and the invitation code."""
        case_number = normalize_case_number(case_number)
        if not await self._within_rate_limits(client, case_number):
            return LoginResult(Outcome.RATE_LIMITED)
        async with self._sessions() as session:
            identity, participant, _case = await self._resolve(session, case_number, fragment)
        participant_ref = str(participant.id) if participant is not None else "none"
        result = await self._check(
            self._store.invitation_key(participant_ref),
            identity,
            self._mac(PURPOSE_INVITATION, participant_ref, participant_ref, code),
        )
        return await self._conclude(result, identity, client, invitation=True)

    async def _conclude(
        self,
        result: VerifyResult,
        identity: str,
        client: Client,
        *,
        attempt_id: str = "",
        invitation: bool = False,
    ) -> LoginResult:
        if result.verdict is Verdict.USED:
            return LoginResult(Outcome.ALREADY_USED, attempt_id=attempt_id, identity=identity)
        async with self._sessions() as session:
            if result.verdict is Verdict.OK:
                participant = await session.get(Participant, uuid.UUID(result.participant_id))
                if participant is None:  # deleted between the steps
                    return LoginResult(Outcome.WRONG, identity=identity)
                audit.record(
                    session,
                    audit.LOGIN_SUCCEEDED,
                    case_id=participant.case_id,
                    participant_id=participant.id,
                    client=client,
                    invitation=invitation,
                )
                await session.commit()
                return LoginResult(
                    Outcome.SIGNED_IN,
                    identity=identity,
                    participant_id=participant.id,
                    case_id=participant.case_id,
                    locale=participant.locale,
                )
            participant_id = await self._participant_of(session, identity, attempt_id)
            audit.record(
                session,
                audit.LOGIN_LOCKED if result.verdict is Verdict.LOCKED else audit.LOGIN_FAILED,
                case_id=participant_id[1] if participant_id else None,
                participant_id=participant_id[0] if participant_id else None,
                client=client,
                invitation=invitation,
                identity_failures=result.identity_failures,
            )
            await session.commit()
        if result.verdict is Verdict.LOCKED:
            return _locked(
                identity, LockState(result.locked_seconds, until_unlocked=result.until_unlocked)
            )
        return LoginResult(
            Outcome.WRONG,
            attempt_id=attempt_id,
            identity=identity,
            attempts_before_lock=self._warning(result.identity_failures),
        )

    async def _participant_of(
        self, session: AsyncSession, identity: str, attempt_id: str
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """For the audit log only: whose access a failed attempt was aimed at, if anyone's."""
        if not attempt_id:
            return None
        attempt = await self._store.load(attempt_id)
        if attempt is None or not attempt.participant_id:
            return None
        participant = await session.get(Participant, uuid.UUID(attempt.participant_id))
        return (participant.id, participant.case_id) if participant else None

    async def issue_invitation_code(self, participant: Participant) -> str:
        """Create the invitation code of a participant; a new one replaces an older one."""
        s = self._settings
        code = generate_code(s.otp_length)
        participant_ref = str(participant.id)
        mac = self._mac(PURPOSE_INVITATION, participant_ref, participant_ref, code)
        await self._store.store_invitation(
            participant_ref,
            participant_identity(s.hash_key, participant.id),
            mac=mac,
            expires_at=self._clock.now() + s.invitation_code_ttl_seconds,
            ttl_seconds=s.invitation_code_ttl_seconds + 60,
        )
        return code

    async def unlock(self, participant_id: uuid.UUID) -> None:
        """Staff unlock: lifts any lock, the hard one too, and clears the failure counts."""
        await self._store.unlock(participant_identity(self._settings.hash_key, participant_id))
