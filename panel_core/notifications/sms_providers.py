"""SMS providers: where a queued message actually goes.

SMSAPI.pl (``POST /sms.do``, bearer token, JSON answers) is the production adapter. Its error
codes are classified so that nothing that an operator can fix is thrown away:

* sent: a message list in the answer, or error 53 (this ``idx`` was sent already: an
  earlier attempt got through and only its answer was lost);
* rejected for good: 11 (message empty or too long), 12 (too many parts), 13 (no valid
  recipient number), 14 (sender name not allowed), 57 and 59 (number on a blacklist);
* try again later: every other code — 101/102 (credentials), 103 (no credits), 105 (IP
  filter), 52 (too many messages to one number), 201-203 and 999 (provider trouble) — and
  any HTTP 5xx or 429, timeout or connection failure.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
from redis.asyncio import Redis

from panel_core.settings import Settings

DEV_OUTBOX_KEY = "dev:sms-outbox"
DEV_OUTBOX_SIZE = 200
# Every message reference the dev provider was asked to send, with how many times: like
# SMSAPI's idx, a second request for the same reference sends nothing.
DEV_SENT_KEY = "dev:sms-sent"

SMSAPI_SENT_ALREADY = frozenset({53})
SMSAPI_PERMANENT = frozenset({11, 12, 13, 14, 57, 59})


class SendOutcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    provider_message_id: str | None = None
    detail: str = ""


class SmsProvider(Protocol):
    name: str

    async def send(self, phone_e164: str, text: str, reference: str) -> SendResult:
        """Send one message; ``reference`` is stable across retries of the same message."""
        ...


# KEYS: sent hash, outbox list. ARGV: reference, entry, outbox size.
_DEV_SEND = """
local times = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if times == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
end
return times
"""


class DevOutboxProvider:
    """Demo mode only: messages land in a Redis list that /dev/outbox shows, like a mail
    catcher. A reference is sent once, however often it is asked for, as SMSAPI does."""

    name = "dev"

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._send = redis.register_script(_DEV_SEND)

    async def send(self, phone_e164: str, text: str, reference: str) -> SendResult:
        entry = json.dumps({"id": reference, "to": phone_e164, "text": text, "at": time.time()})
        times = int(
            await self._send(
                keys=[DEV_SENT_KEY, DEV_OUTBOX_KEY], args=[reference, entry, DEV_OUTBOX_SIZE]
            )
        )
        detail = "" if times == 1 else f"sent already ({times - 1} earlier request(s))"
        return SendResult(SendOutcome.SENT, provider_message_id=reference, detail=detail)


class SmsApiProvider:
    name = "smsapi"

    def __init__(
        self, client: httpx.AsyncClient, *, base_url: str, token: str, sender: str
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/sms.do"
        self._token = token
        self._sender = sender

    async def send(self, phone_e164: str, text: str, reference: str) -> SendResult:
        form = {
            "to": phone_e164.lstrip("+"),
            "message": text,
            "format": "json",
            "encoding": "utf-8",
            # SMSAPI refuses a second message with the same idx: a retry after a lost answer
            # cannot send the code twice.
            "idx": reference,
            "check_idx": "1",
        }
        if self._sender:
            form["from"] = self._sender
        try:
            response = await self._client.post(
                self._url, data=form, headers={"Authorization": f"Bearer {self._token}"}
            )
        except httpx.HTTPError as exc:
            return SendResult(SendOutcome.RETRY, detail=f"{type(exc).__name__}: {exc}")
        if response.status_code >= 500 or response.status_code == 429:
            return SendResult(SendOutcome.RETRY, detail=f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            return SendResult(SendOutcome.RETRY, detail=f"HTTP {response.status_code}: not JSON")
        if isinstance(body, dict) and "error" in body:
            code = int(body.get("error") or 0)
            detail = f"SMSAPI error {code}: {body.get('message', '')}"
            if code in SMSAPI_SENT_ALREADY:
                return SendResult(SendOutcome.SENT, detail=detail)
            if code in SMSAPI_PERMANENT:
                return SendResult(SendOutcome.REJECTED, detail=detail)
            return SendResult(SendOutcome.RETRY, detail=detail)
        entries = body.get("list") if isinstance(body, dict) else None
        if response.is_success and entries:
            return SendResult(SendOutcome.SENT, provider_message_id=str(entries[0].get("id")))
        return SendResult(
            SendOutcome.RETRY, detail=f"HTTP {response.status_code}: unexpected answer"
        )


class SmsConfigurationError(RuntimeError):
    pass


def build_provider(settings: Settings, redis: Redis, client: httpx.AsyncClient) -> SmsProvider:
    if settings.sms_provider == "dev":
        if not settings.demo_mode:
            raise SmsConfigurationError(
                "PANEL_SMS_PROVIDER=dev keeps messages in Redis and works only in demo mode; "
                "configure a real provider (PANEL_SMS_PROVIDER=smsapi and PANEL_SMSAPI_TOKEN)."
            )
        return DevOutboxProvider(redis)
    if settings.sms_provider == "smsapi":
        if not settings.smsapi_token:
            raise SmsConfigurationError("PANEL_SMSAPI_TOKEN is required for the SMSAPI provider.")
        return SmsApiProvider(
            client,
            base_url=settings.smsapi_base_url,
            token=settings.smsapi_token,
            sender=settings.sms_sender_name,
        )
    raise SmsConfigurationError(f"Unknown SMS provider {settings.sms_provider!r}.")
