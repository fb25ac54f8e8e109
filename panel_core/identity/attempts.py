"""Login attempts, code checks and failure counters in Redis.

Every check-and-consume is one Lua script, so it is atomic: of many parallel submissions of
the right code exactly one succeeds, and no failure escapes the counters.

The rules' times (a code's lifetime, a lock, the failure window) are judged against the
panel's clock, passed in as ``now``; Redis expiries only clear keys once they are past
mattering.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

_PREFIX = "panel:login"

# NIST SP 800-63B §3.2.2 allows at most 100 consecutive failures before the account is locked
# for good; callers pass the configured cap, this is the ceiling when one does not.
NIST_MAX_CONSECUTIVE_FAILURES = 100
# A run of failures is forgotten this long after its latest failure. Nobody can pace guesses
# under the daily limit slowly enough to wait it out between two, and the counters of decoy
# identities do not stay in Redis for ever.
CONSECUTIVE_MEMORY_SECONDS = 90 * 24 * 3600
# How much longer than their rule a counter or lock stays in Redis, so that the key outlives
# the rule however the clocks of the panel and Redis differ.
_CLEANUP_SLACK_SECONDS = 3600
# Value of the lock key when only a member of staff can lift the lock (the scripts spell it out).
_STAFF_ONLY = "staff"

# KEYS: code. ARGV: ttl, then field, value, field, value, … One script, so the code never
# exists without its expiry, and a new code replaces every field of the old one.
_STORE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: code, identity window counter, identity lock, identity consecutive failures
# ARGV: candidate mac, now, max failures per code, max failures per window, window seconds,
#       lock seconds, max consecutive failures, consecutive memory seconds, cleanup slack
_VERIFY = """
local now = tonumber(ARGV[2])
local lock = redis.call('GET', KEYS[3])
if lock == 'staff' then
  return {'blocked', 0, 0}
end
local locked_until = lock and tonumber(lock)
if locked_until and locked_until > now then
  return {'locked', 0, math.ceil(locked_until - now)}
end
local a = redis.call('HMGET', KEYS[1], 'mac', 'expires_at', 'participant_id', 'used')
if a[1] then
  local live = tonumber(a[2]) >= now
  if live and a[1] ~= '' and a[1] == ARGV[1] then
    -- Kept as used rather than deleted, so the same code sent again is known for what it is.
    redis.call('HSET', KEYS[1], 'mac', '', 'used', ARGV[1])
    redis.call('DEL', KEYS[4])
    return {'ok', a[3], 0}
  end
  if live and a[4] and a[4] ~= '' and a[4] == ARGV[1] then
    return {'used', a[3], 0}
  end
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[3]) or not live then
    redis.call('DEL', KEYS[1])
  end
end
local window = redis.call('HMGET', KEYS[2], 'started', 'count')
local total
if window[1] and tonumber(window[1]) + tonumber(ARGV[5]) > now then
  total = redis.call('HINCRBY', KEYS[2], 'count', 1)
else
  total = 1
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'started', ARGV[2], 'count', 1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[9]))
end
local consecutive = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[8])
if consecutive >= tonumber(ARGV[7]) then
  redis.call('SET', KEYS[3], 'staff')
  return {'blocked', total, 0}
end
-- Not reset by the lock: once the window's count is at the limit, every further failure in
-- the window locks again at once.
if total >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[3], tostring(now + tonumber(ARGV[6])), 'EX',
    tonumber(ARGV[6]) + tonumber(ARGV[9]))
  return {'locked', total, tonumber(ARGV[6])}
end
return {'wrong', total, 0}
"""

# KEYS: identity lock, identity consecutive failures. ARGV: max consecutive failures.
# Returns the lock's value. A run that reached the cap under a check given a higher one (a
# caller that passed none) is locked here, before anything more is sent or checked.
_LOCK_STATE = """
local lock = redis.call('GET', KEYS[1])
if lock ~= 'staff' and tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 'staff')
  lock = 'staff'
end
return lock
"""

# KEYS: counter. ARGV: limit, window seconds. Returns 1 when allowed, 0 when over the limit.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if n > tonumber(ARGV[1]) then
  return 0
end
return 1
"""

# KEYS: attempt. ARGV: new mac, new expires_at, ttl. Keeps the failure count (a new code does
# not buy new guesses); an attempt whose code was used stays used.
_REPLACE_CODE = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'used') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'expires_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class Verdict(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"
    # The right code, already used within its lifetime: neither a success nor a failure.
    USED = "used"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    verdict: Verdict
    participant_id: str = ""
    identity_failures: int = 0
    locked_seconds: int = 0
    # A LOCKED verdict that lasts until a member of staff unlocks (``locked_seconds`` is 0).
    until_unlocked: bool = False


@dataclass(frozen=True, slots=True)
class LockState:
    seconds: int = 0
    until_unlocked: bool = False

    @property
    def locked(self) -> bool:
        return self.until_unlocked or self.seconds > 0


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: str
    identity: str
    participant_id: str
    case_id: str


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class AttemptStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._verify = redis.register_script(_VERIFY)
        self._hit = redis.register_script(_HIT)
        self._replace = redis.register_script(_REPLACE_CODE)
        self._store = redis.register_script(_STORE)
        self._lock_state = redis.register_script(_LOCK_STATE)

    @staticmethod
    def attempt_key(attempt_id: str) -> str:
        return f"{_PREFIX}:attempt:{attempt_id}"

    @staticmethod
    def invitation_key(participant_id: str) -> str:
        return f"{_PREFIX}:invitation:{participant_id}"

    @staticmethod
    def window_key(identity: str) -> str:
        return f"{_PREFIX}:window:{identity}"

    @staticmethod
    def consecutive_key(identity: str) -> str:
        return f"{_PREFIX}:consecutive:{identity}"

    @staticmethod
    def lock_key(identity: str) -> str:
        return f"{_PREFIX}:lock:{identity}"

    async def _put(self, key: str, fields: Mapping[str, str | int], ttl_seconds: int) -> None:
        pairs: list[str | int] = []
        for name, value in fields.items():
            pairs += [name, value]
        await self._store(keys=[key], args=[ttl_seconds, *pairs])

    async def create(
        self, attempt: Attempt, *, mac: str, expires_at: float, ttl_seconds: int
    ) -> None:
        await self._put(
            self.attempt_key(attempt.attempt_id),
            {
                "identity": attempt.identity,
                "participant_id": attempt.participant_id,
                "case_id": attempt.case_id,
                "mac": mac,
                "expires_at": repr(expires_at),
                "failures": 0,
            },
            ttl_seconds,
        )

    async def load(self, attempt_id: str) -> Attempt | None:
        values = await self._redis.hmget(
            self.attempt_key(attempt_id), ["identity", "participant_id", "case_id"]
        )
        if values[0] is None:
            return None
        identity, participant_id, case_id = (
            v.decode() if isinstance(v, bytes) else str(v or "") for v in values
        )
        return Attempt(attempt_id, identity, participant_id, case_id)

    async def replace_code(
        self, attempt_id: str, *, mac: str, expires_at: float, ttl_seconds: int
    ) -> bool:
        """False if the attempt is gone (expired, voided) or its code was already used."""
        result = await self._replace(
            keys=[self.attempt_key(attempt_id)], args=[mac, repr(expires_at), ttl_seconds]
        )
        return bool(result)

    async def store_invitation(
        self, participant_id: str, identity: str, *, mac: str, expires_at: float, ttl_seconds: int
    ) -> None:
        await self.store_bound_code(
            self.invitation_key(participant_id),
            identity,
            participant_id,
            mac=mac,
            expires_at=expires_at,
            ttl_seconds=ttl_seconds,
        )

    async def store_bound_code(
        self,
        key: str,
        identity: str,
        participant_id: str,
        *,
        mac: str,
        expires_at: float,
        ttl_seconds: int,
    ) -> None:
        """A code that opens one thing (an invitation, a signature), checked by ``verify``."""
        await self._put(
            key,
            {
                "identity": identity,
                "participant_id": participant_id,
                "mac": mac,
                "expires_at": repr(expires_at),
                "failures": 0,
            },
            ttl_seconds,
        )

    async def verify(
        self,
        key: str,
        identity: str,
        *,
        candidate_mac: str,
        now: float,
        max_failures_per_code: int,
        max_identity_failures: int,
        failure_window_seconds: int,
        lock_seconds: int,
        max_consecutive_failures: int = NIST_MAX_CONSECUTIVE_FAILURES,
    ) -> VerifyResult:
        """Check and consume a code; every failure counts towards the identity's locks.

        ``max_identity_failures`` wrong codes within ``failure_window_seconds`` lock for
        ``lock_seconds``, and each further one in the same window locks again;
        ``max_consecutive_failures`` without a success in between lock until ``unlock``.
        """
        raw = await self._verify(
            keys=[
                key,
                self.window_key(identity),
                self.lock_key(identity),
                self.consecutive_key(identity),
            ],
            args=[
                candidate_mac,
                repr(now),
                max_failures_per_code,
                max_identity_failures,
                failure_window_seconds,
                lock_seconds,
                min(max_consecutive_failures, NIST_MAX_CONSECUTIVE_FAILURES),
                CONSECUTIVE_MEMORY_SECONDS,
                _CLEANUP_SLACK_SECONDS,
            ],
        )
        verdict = _text(raw[0])
        detail = raw[1].decode() if isinstance(raw[1], bytes) else raw[1]
        if verdict == "ok":
            return VerifyResult(Verdict.OK, participant_id=str(detail))
        if verdict == "used":
            return VerifyResult(Verdict.USED, participant_id=str(detail))
        if verdict == "blocked":
            return VerifyResult(Verdict.LOCKED, identity_failures=int(detail), until_unlocked=True)
        if verdict == "locked":
            return VerifyResult(
                Verdict.LOCKED, identity_failures=int(detail), locked_seconds=int(raw[2])
            )
        return VerifyResult(Verdict.WRONG, identity_failures=int(detail))

    async def lock_state(
        self,
        identity: str,
        *,
        now: float,
        max_consecutive_failures: int = NIST_MAX_CONSECUTIVE_FAILURES,
    ) -> LockState:
        value = await self._lock_state(
            keys=[self.lock_key(identity), self.consecutive_key(identity)],
            args=[min(max_consecutive_failures, NIST_MAX_CONSECUTIVE_FAILURES)],
        )
        if value is None:
            return LockState()
        text = _text(value)
        if text == _STAFF_ONLY:
            return LockState(until_unlocked=True)
        try:
            left = float(text) - now
        except ValueError:
            return LockState()
        return LockState(seconds=math.ceil(left)) if left > 0 else LockState()

    async def failures(self, identity: str) -> int:
        """Failures counted in the identity's current (or latest) window."""
        value = await self._redis.hget(self.window_key(identity), "count")
        return int(value or 0)

    async def hit(self, counter: str, *, limit: int, window_seconds: int) -> bool:
        """Count one event in a fixed window; False once the limit is exceeded."""
        allowed = await self._hit(keys=[f"{_PREFIX}:rate:{counter}"], args=[limit, window_seconds])
        return bool(allowed)

    async def unlock(self, identity: str) -> None:
        # Staff unlock also gives back the codes the person used up while locked out.
        await self._redis.delete(
            self.lock_key(identity),
            self.window_key(identity),
            self.consecutive_key(identity),
            f"{_PREFIX}:rate:send:{identity}",
        )
