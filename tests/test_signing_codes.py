"""Signing codes share the login codes' counters and rules."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from redis.asyncio import Redis

from panel_core.clock import FakeClock
from panel_core.identity.attempts import AttemptStore
from panel_core.identity.service import participant_identity
from panel_core.tasks.signing import SigningCodes
from tests.conftest import Stack

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

SHA = "ab" * 32


async def store_code(
    codes: SigningCodes, store: AttemptStore, who: uuid.UUID, task: uuid.UUID
) -> str:
    code = "424242"
    await store.store_bound_code(
        codes.key(task),
        participant_identity(codes._settings.hash_key, who),
        str(who),
        mac=codes._mac(who, task, SHA, code),
        expires_at=codes._clock.now() + 300,
        ttl_seconds=360,
    )
    return code


async def test_a_signing_code_sent_twice_is_used_not_wrong(stack: Stack) -> None:
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        store = AttemptStore(redis)
        codes = SigningCodes(stack.settings, store, FakeClock())
        who, task = uuid.uuid4(), uuid.uuid4()
        code = await store_code(codes, store, who, task)
        first = await codes.verify(who, task, SHA, code)
        again = await codes.verify(who, task, SHA, code)
        failures = await store.failures(participant_identity(stack.settings.hash_key, who))
    finally:
        await redis.aclose()
    assert first.signed
    assert not again.signed and "już użyty" in again.message
    assert failures == 0


async def test_the_configured_hard_cap_applies_to_signing_codes(stack: Stack) -> None:
    settings = msgspec.structs.replace(
        stack.settings, login_max_consecutive_failures=3, login_max_failures=50
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        store = AttemptStore(redis)
        codes = SigningCodes(settings, store, FakeClock())
        who, task = uuid.uuid4(), uuid.uuid4()
        outcomes = []
        for _ in range(3):
            await store_code(codes, store, who, task)
            outcomes.append(await codes.verify(who, task, SHA, "000000"))
    finally:
        await redis.aclose()
    assert [o.signed for o in outcomes] == [False, False, False]
    # The third wrong code reaches the cap: blocked until the bank unlocks, no duration.
    assert "Zadzwoń do banku" in outcomes[-1].message
    assert "minut" not in outcomes[-1].message
