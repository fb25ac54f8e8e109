"""Reading the SMS the demo-mode provider delivered, as a person reads their phone."""

from __future__ import annotations

import json
import re
from typing import Any

from redis.asyncio import Redis

from tests.helpers import eventually

DEV_OUTBOX = "dev:sms-outbox"
CODE = re.compile(r"(?<![\d-])(\d{6})(?!\d)")


async def messages_to(redis_url: str, phone: str) -> list[dict[str, Any]]:
    redis = Redis.from_url(redis_url)
    try:
        raw = await redis.lrange(DEV_OUTBOX, 0, -1)
    finally:
        await redis.aclose()
    # Newest first, as the provider pushes them.
    return [m for m in (json.loads(r) for r in raw) if m.get("to") == phone]


async def next_message(redis_url: str, phone: str, seen: int, *, within: float = 30) -> str:
    """Wait for the phone's message number ``seen + 1`` and return its text."""

    async def probe() -> str | None:
        found = await messages_to(redis_url, phone)
        return str(found[0]["text"]) if len(found) > seen else None

    return await eventually(probe, within=within)


def code_in(text: str) -> str:
    match = CODE.search(text)
    assert match, text
    return match.group(1)


async def messages_naming(redis_url: str, phone: str, fragment: str) -> list[str]:
    """The phone's messages that contain the fragment, newest first."""
    return [
        str(m["text"]) for m in await messages_to(redis_url, phone) if fragment in str(m["text"])
    ]


async def message_naming(
    redis_url: str, phone: str, fragment: str, *, after: int = 0, within: float = 30
) -> str:
    """Wait for the phone's newest message that contains the fragment (e.g. a document
    fingerprint), once more than ``after`` of them arrived.

    Found by content, not position: an invitation sent moments earlier may still be arriving.
    """

    async def probe() -> str | None:
        found = await messages_naming(redis_url, phone, fragment)
        return found[0] if len(found) > after else None

    return await eventually(probe, within=within)
