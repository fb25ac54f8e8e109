"""Reading the e-mail the local SMTP server received (devtools/smtp_server.py), as a person
reads their mailbox."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from panel_core.notifications import dev_mailbox
from tests.helpers import eventually


async def mails_to(redis_url: str, address: str) -> list[dict[str, Any]]:
    """The mailbox's messages, newest first."""
    redis = Redis.from_url(redis_url)
    try:
        found = await dev_mailbox.received(redis)
    finally:
        await redis.aclose()
    return [mail for mail in found if address in mail["to"]]


async def next_mail(
    redis_url: str, address: str, seen: int, *, within: float = 30
) -> dict[str, Any]:
    """Wait for the mailbox's message number ``seen + 1`` and return it."""

    async def probe() -> dict[str, Any] | None:
        found = await mails_to(redis_url, address)
        return found[0] if len(found) > seen else None

    return await eventually(probe, within=within)


async def attachment_of(
    redis_url: str, mail: dict[str, Any], index: int = 0
) -> tuple[str, str, bytes]:
    """(file name, type, bytes) of one of the message's attachments, as the server got it."""
    redis = Redis.from_url(redis_url)
    try:
        raw = await dev_mailbox.raw_message(redis, mail["id"])
    finally:
        await redis.aclose()
    assert raw is not None, mail
    found = dev_mailbox.attachment(raw, index)
    assert found is not None, mail
    return found
