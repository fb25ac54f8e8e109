"""The outboxes, built from the settings the same way everywhere: the BFF's immediate
attempts, the workers' dispatchers, the command line."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panel_core.cases.service import case_instance_started
from panel_core.db.models import EmailMessage, EngineCommand, SmsMessage, TaskSubmission
from panel_core.engine.commands import CommandResult, EngineCommandOutbox
from panel_core.engine.rest import CamundaRestClient, Delivery
from panel_core.notifications.email_dispatcher import EmailOutbox, EmailSender
from panel_core.notifications.sms_dispatcher import SmsOutbox
from panel_core.notifications.sms_providers import SendResult, SmsProvider
from panel_core.outbox.dispatcher import Outbox, lease_for
from panel_core.settings import Settings
from panel_core.tasks.completions import CompletionOutbox


@dataclass(frozen=True, slots=True)
class EngineOutboxes:
    completions: Outbox[TaskSubmission, Delivery]
    commands: Outbox[EngineCommand, CommandResult]


def engine_outboxes(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: CamundaRestClient,
    redis: Redis | None,
) -> EngineOutboxes:
    lease = lease_for(settings.camunda_request_timeout_seconds)
    completions = CompletionOutbox(
        engine,
        redis=redis,
        retry_initial_seconds=settings.completion_retry_initial_seconds,
        retry_max_seconds=settings.completion_retry_max_seconds,
        lease_seconds=lease,
    )
    commands = EngineCommandOutbox(
        engine,
        on_started=case_instance_started,
        retry_initial_seconds=settings.command_retry_initial_seconds,
        retry_max_seconds=settings.command_retry_max_seconds,
        lease_seconds=lease,
    )
    return EngineOutboxes(
        completions=Outbox(sessions, completions, concurrency=4),
        commands=Outbox(sessions, commands, concurrency=4),
    )


def sms_outbox(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], provider: SmsProvider
) -> Outbox[SmsMessage, SendResult]:
    kind = SmsOutbox(
        provider,
        max_attempts=settings.sms_max_attempts,
        retry_initial_seconds=settings.sms_retry_initial_seconds,
        retry_max_seconds=settings.sms_retry_max_seconds,
        lease_seconds=lease_for(settings.sms_request_timeout_seconds),
    )
    return Outbox(sessions, kind, concurrency=2)


def email_outbox(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], sender: EmailSender
) -> Outbox[EmailMessage, SendResult]:
    kind = EmailOutbox(
        sender,
        mail_from=settings.mail_from,
        max_attempts=settings.email_max_attempts,
        retry_initial_seconds=settings.email_retry_initial_seconds,
        retry_max_seconds=settings.email_retry_max_seconds,
        lease_seconds=lease_for(settings.smtp_timeout_seconds),
    )
    return Outbox(sessions, kind, concurrency=2)
