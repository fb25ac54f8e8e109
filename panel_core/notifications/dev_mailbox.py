"""Demo mode's mailbox: what the local SMTP server (``devtools/smtp_server.py``) received, kept
in Redis like the demo SMS provider's messages, for the demo's outbox page and the tests.

The list holds each message's summary, newest first; the message itself (its raw bytes,
attachments included) is kept under a key of its own for a day.
"""

from __future__ import annotations

import json
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from redis.asyncio import Redis

DEV_MAIL_OUTBOX_KEY = "dev:mail-outbox"
DEV_MAIL_OUTBOX_SIZE = 100
# Every Message-ID the server was given, with how many times: a message delivered again is
# listed once, as a mail client shows it.
DEV_MAIL_SEEN_KEY = "dev:mail-seen"
DEV_MAIL_RAW_PREFIX = "dev:mail-raw:"
DEV_MAIL_RAW_TTL_SECONDS = 24 * 3600


def raw_key(entry_id: str) -> str:
    return f"{DEV_MAIL_RAW_PREFIX}{entry_id}"


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _payload(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def summary(entry_id: str, raw: bytes, recipients: list[str], at: float) -> dict[str, Any]:
    """What the outbox page lists of one message."""
    message = parse(raw)
    body = message.get_body(preferencelist=("plain",))
    return {
        "id": entry_id,
        "message_id": str(message.get("Message-ID", "")),
        "from": str(message.get("From", "")),
        "to": recipients,
        "subject": str(message.get("Subject", "")),
        "text": body.get_content() if isinstance(body, EmailMessage) else "",
        "attachments": [
            {
                "name": part.get_filename() or "",
                "type": part.get_content_type(),
                "size": len(_payload(part)),
            }
            for part in message.iter_attachments()
        ],
        "at": at,
    }


async def received(redis: Redis, limit: int = DEV_MAIL_OUTBOX_SIZE) -> list[dict[str, Any]]:
    """The messages received, newest first."""
    return [json.loads(item) for item in await redis.lrange(DEV_MAIL_OUTBOX_KEY, 0, limit - 1)]


async def raw_message(redis: Redis, entry_id: str) -> bytes | None:
    if not entry_id.isalnum():
        return None
    raw = await redis.get(raw_key(entry_id))
    if raw is None:
        return None
    return raw if isinstance(raw, bytes) else str(raw).encode()


def attachment(raw: bytes, index: int) -> tuple[str, str, bytes] | None:
    """(file name, type, bytes) of a message's attachment number ``index``."""
    parts = list(parse(raw).iter_attachments())
    if not 0 <= index < len(parts):
        return None
    part = parts[index]
    return (
        part.get_filename() or "attachment",
        part.get_content_type(),
        _payload(part),
    )
