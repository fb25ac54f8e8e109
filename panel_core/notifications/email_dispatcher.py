"""The e-mail outbox: a relay outage delays messages but loses none.

Messages go to the bank's SMTP relay through aiosmtplib. SMTP has no idempotency key: a relay
that accepted a message whose answer was lost gets it again on the next attempt. Every attempt
carries the same Message-ID, which mail clients and most relays recognise, so a copy delivered
twice reads as one message.

The relay's answers are classified so that nothing an operator can fix is thrown away:

* sent: the relay accepted the message (``250`` after ``DATA``);
* rejected for good: a recipient refused with a 5xx code (no such mailbox, a domain that takes
  no mail) or the message refused with a 5xx code after ``DATA`` (too large, refused content);
* try again later: everything else — 4xx answers, the relay down or slow, TLS failures, a
  sender or credentials refused (the bank's configuration, fixed by an operator).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate
from typing import Any, ClassVar, Protocol

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from panel_core.db.models import EmailMessage, EmailState, utcnow
from panel_core.notifications.sms_providers import SendOutcome, SendResult
from panel_core.outbox.dispatcher import AfterCommit, OutboxKind
from panel_core.settings import Settings

log = logging.getLogger(__name__)

SECURITY = ("starttls", "tls", "none")


class EmailConfigurationError(RuntimeError):
    pass


class EmailSender(Protocol):
    name: str

    async def send(self, message: MimeMessage) -> SendResult:
        """Hand one message to the relay."""
        ...


def mime_message(row: EmailMessage, mail_from: str) -> MimeMessage:
    """The message as it leaves: plain text in UTF-8, the attachment if the row has one.

    The default policy refuses a header with a line break in it, so nothing a row holds can
    add a header.
    """
    message = MimeMessage()
    message["From"] = mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject or ""
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = row.message_id
    message["Content-Language"] = row.locale
    # RFC 3834: an automatic message, so auto-responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.body or "", charset="utf-8")
    if row.attachment is not None:
        maintype, _, subtype = (row.attachment_type or "application/octet-stream").partition("/")
        message.add_attachment(
            row.attachment,
            maintype=maintype,
            subtype=subtype,
            filename=row.attachment_name or "document",
        )
    return message


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class SmtpSender:
    """The bank's relay over SMTP (STARTTLS, implicit TLS, or plain on a trusted network)."""

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        timeout_seconds: float,
    ) -> None:
        if security not in SECURITY:
            raise EmailConfigurationError(
                f"PANEL_SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {security!r}."
            )
        self._host = host
        self._port = port
        self._security = security
        self._username = username or None
        self._password = password or None
        self._timeout = timeout_seconds

    async def send(self, message: MimeMessage) -> SendResult:
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._security == "tls",
                start_tls=self._security == "starttls",
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            outcome = SendOutcome.REJECTED if all(map(_permanent, codes)) else SendOutcome.RETRY
            return SendResult(outcome, detail=f"recipient refused: {detail}")
        except aiosmtplib.SMTPRecipientRefused as exc:
            outcome = SendOutcome.REJECTED if _permanent(exc.code) else SendOutcome.RETRY
            return SendResult(outcome, detail=f"recipient refused: {exc.code} {exc.message}")
        except aiosmtplib.SMTPDataError as exc:
            outcome = SendOutcome.REJECTED if _permanent(exc.code) else SendOutcome.RETRY
            return SendResult(outcome, detail=f"message refused: {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(SendOutcome.RETRY, detail=f"{type(exc).__name__}: {exc}")
        return SendResult(SendOutcome.SENT, provider_message_id=str(message["Message-ID"]))


def email_configured(settings: Settings) -> bool:
    """Whether the panel sends e-mail at all (a relay is set)."""
    return bool(settings.smtp_host.strip())


def build_sender(settings: Settings) -> SmtpSender:
    if not email_configured(settings):
        raise EmailConfigurationError("PANEL_SMTP_HOST is not set: the panel sends no e-mail.")
    return SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout_seconds=settings.smtp_timeout_seconds,
    )


class EmailOutbox(OutboxKind[EmailMessage, SendResult]):
    name: ClassVar[str] = "email"
    model: ClassVar[type[Any]] = EmailMessage

    def __init__(
        self,
        sender: EmailSender,
        *,
        mail_from: str,
        max_attempts: int = 10,
        retry_initial_seconds: float = 5.0,
        retry_max_seconds: float = 600.0,
        lease_seconds: float = 90.0,
    ) -> None:
        super().__init__(
            lease_seconds=lease_seconds,
            retry_initial_seconds=retry_initial_seconds,
            retry_max_seconds=retry_max_seconds,
        )
        self._sender = sender
        self._mail_from = mail_from
        self._max_attempts = max_attempts

    async def send(self, row: EmailMessage) -> SendResult:
        return await self._sender.send(mime_message(row, self._mail_from))

    def outcome_of_error(self, row: EmailMessage, error: BaseException) -> SendResult:
        return SendResult(SendOutcome.RETRY, detail=f"{type(error).__name__}: {error}")

    async def settle(
        self, session: AsyncSession, row: EmailMessage, outcome: SendResult
    ) -> AfterCommit:
        row.attempts += 1
        if outcome.outcome is SendOutcome.SENT:
            row.state = EmailState.SENT
            row.sent_at = utcnow()
            row.last_error = None
            _clear(row)
            return None
        row.last_error = outcome.detail
        if outcome.outcome is SendOutcome.REJECTED or row.attempts >= self._max_attempts:
            row.state = EmailState.FAILED
            _clear(row)
            log.error(
                "e-mail %s (%s) given up after %s attempt(s): %s",
                row.id,
                row.purpose,
                row.attempts,
                outcome.detail,
            )
            return None
        self.retry_later(row, outcome.detail)
        return None


def _clear(row: EmailMessage) -> None:
    # What the message said and the document it carried stay only as long as it may still be
    # sent; the row keeps that it was sent, when and to whom.
    row.body = None
    row.attachment = None
