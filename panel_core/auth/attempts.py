"""Login attempts, code checks and failure counters in Redis.

Every check-and-consume is one Lua script, so it is atomic: of many parallel submissions of
the right code exactly one succeeds, and no failure escapes the counters.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from redis.asyncio import Redis

_PREFIX = "panel:login"

# KEYS: attempt, identity failures, identity lock
# ARGV: candidate mac, now, max failures per code, max identity failures, failure window,
#       lock seconds
_VERIFY = """
local lock_ttl = redis.call('TTL', KEYS[3])
if lock_ttl > 0 then
  return {'locked', 0, lock_ttl}
end
local a = redis.call('HMGET', KEYS[1], 'mac', 'expires_at', 'participant_id')
local outcome = 'wrong'
if a[1] then
  if tonumber(a[2]) >= tonumber(ARGV[2]) and a[1] ~= '' and a[1] == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return {'ok', a[3], 0}
  end
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[3]) or tonumber(a[2]) < tonumber(ARGV[2]) then
    redis.call('DEL', KEYS[1])
  end
end
local total = redis.call('INCR', KEYS[2])
if total == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
if total >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[6])
  redis.call('DEL', KEYS[2])
  return {'locked', total, tonumber(ARGV[6])}
end
return {outcome, total, 0}
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
# not buy new guesses).
_REPLACE_CODE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
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


@dataclass(frozen=True, slots=True)
class VerifyResult:
    verdict: Verdict
    participant_id: str = ""
    identity_failures: int = 0
    locked_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: str
    identity: str
    participant_id: str
    case_id: str


class AttemptStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._verify = redis.register_script(_VERIFY)
        self._hit = redis.register_script(_HIT)
        self._replace = redis.register_script(_REPLACE_CODE)

    @staticmethod
    def attempt_key(attempt_id: str) -> str:
        return f"{_PREFIX}:attempt:{attempt_id}"

    @staticmethod
    def invitation_key(participant_id: str) -> str:
        return f"{_PREFIX}:invitation:{participant_id}"

    @staticmethod
    def failures_key(identity: str) -> str:
        return f"{_PREFIX}:failures:{identity}"

    @staticmethod
    def lock_key(identity: str) -> str:
        return f"{_PREFIX}:lock:{identity}"

    async def create(
        self, attempt: Attempt, *, mac: str, expires_at: float, ttl_seconds: int
    ) -> None:
        key = self.attempt_key(attempt.attempt_id)
        await self._redis.hset(
            key,
            mapping={
                "identity": attempt.identity,
                "participant_id": attempt.participant_id,
                "case_id": attempt.case_id,
                "mac": mac,
                "expires_at": repr(expires_at),
                "failures": 0,
            },
        )
        await self._redis.expire(key, ttl_seconds)

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
        await self._redis.hset(
            key,
            mapping={
                "identity": identity,
                "participant_id": participant_id,
                "mac": mac,
                "expires_at": repr(expires_at),
                "failures": 0,
            },
        )
        await self._redis.expire(key, ttl_seconds)

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
    ) -> VerifyResult:
        raw = await self._verify(
            keys=[key, self.failures_key(identity), self.lock_key(identity)],
            args=[
                candidate_mac,
                repr(now),
                max_failures_per_code,
                max_identity_failures,
                failure_window_seconds,
                lock_seconds,
            ],
        )
        verdict = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
        detail = raw[1].decode() if isinstance(raw[1], bytes) else raw[1]
        if verdict == "ok":
            return VerifyResult(Verdict.OK, participant_id=str(detail))
        if verdict == "locked":
            return VerifyResult(
                Verdict.LOCKED, identity_failures=int(detail), locked_seconds=int(raw[2])
            )
        return VerifyResult(Verdict.WRONG, identity_failures=int(detail))

    async def lock_remaining(self, identity: str) -> int:
        ttl = int(await self._redis.ttl(self.lock_key(identity)))
        return max(ttl, 0)

    async def failures(self, identity: str) -> int:
        value = await self._redis.get(self.failures_key(identity))
        return int(value or 0)

    async def hit(self, counter: str, *, limit: int, window_seconds: int) -> bool:
        """Count one event in a fixed window; False once the limit is exceeded."""
        allowed = await self._hit(keys=[f"{_PREFIX}:rate:{counter}"], args=[limit, window_seconds])
        return bool(allowed)

    async def unlock(self, identity: str) -> None:
        # Staff unlock also gives back the codes the person used up while locked out.
        await self._redis.delete(
            self.lock_key(identity), self.failures_key(identity), f"{_PREFIX}:rate:send:{identity}"
        )
