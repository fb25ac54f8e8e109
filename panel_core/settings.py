"""Typed settings, read once from the environment (prefix ``PANEL_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import msgspec

ENV_PREFIX = "PANEL_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting has a default that runs the local demo with no other service to set up."""

    # SQLAlchemy async URL. SQLite is the zero-setup default of the demo only.
    database_url: str = "sqlite+aiosqlite:///./customer-panel.db"
    # Database connections a web process keeps open, and how many more it may open for a
    # burst (closed again when returned): opening one costs PostgreSQL a new backend process,
    # so under steady load every request should find a kept one (docs/operations.md).
    database_pool_size: int = 20
    database_max_overflow: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections one process keeps to Redis at most; a command waits this long for one.
    redis_max_connections: int = 64
    redis_pool_timeout_seconds: float = 5.0
    # Zeebe gateway (gRPC) and the Orchestration Cluster REST API of the same cluster.
    zeebe_address: str = "127.0.0.1:26500"
    camunda_rest_url: str = "http://127.0.0.1:8080"
    camunda_request_timeout_seconds: float = 10.0
    # Demo mode enables the development sign-in and other conveniences that must never reach
    # production.
    demo_mode: bool = False
    # Session cookies must be Secure; only a local http demo may switch that off.
    secure_cookies: bool = True
    session_secret: str = ""
    session_max_age_seconds: int = 3600
    # Workers.
    worker_name: str = "customer-panel-worker"
    worker_max_concurrency: int = 16
    worker_stream_jobs: bool = True
    # The workers' own HTTP port: /health, /ready and /metrics (0 turns it off).
    worker_http_host: str = "127.0.0.1"
    worker_http_port: int = 9464
    exporter_consumer_group: str = "customer-panel"
    # Record consumption split across worker processes: each process applies the records of
    # the process instances that hash to its shard (0..shards-1), in its own consumer group
    # (see the operations guide); every process must be given the same number of shards.
    record_consumer_shards: int = 1
    record_consumer_shard: int = 0
    # A record waiting for another one (a task whose form is not known yet) is set aside in
    # the dead-letter stream once it is this old.
    record_defer_limit_seconds: float = 300.0
    # Delivery of stored task completions to the engine.
    completion_retry_initial_seconds: float = 1.0
    completion_retry_max_seconds: float = 60.0
    completion_dispatch_interval_seconds: float = 1.0
    # Delivery of engine commands (process starts, cancellations of duplicate instances).
    command_retry_initial_seconds: float = 1.0
    command_retry_max_seconds: float = 60.0
    # Bearer token Prometheus presents to the BFF's /metrics; empty turns /metrics off
    # outside demo mode.
    metrics_token: str = ""
    case_number_prefix: str = "KR"
    # The bank's name, helpline, logo, favicon and theme (panel_core/branding.py); none if empty.
    branding_file: str = ""
    # Bearer token of the channels' API (branch, internet banking, call centre). Empty disables
    # that API unless demo mode supplies the demo token.
    channel_api_token: str = ""
    # Networks of the reverse proxies in front of the BFF (comma-separated CIDRs). Only a
    # request arriving from one of them has its X-Forwarded-For header believed; empty means
    # the panel is reached directly and the peer address is the client's.
    trusted_proxies: str = ""
    # Public address of the panel, used in invitation links.
    public_base_url: str = "http://127.0.0.1:8000"

    # Keys. hash_key keys the PESEL-fragment hashes and one-time-code HMACs; it must be set,
    # secret and stable in production (changing it invalidates every stored fragment hash).
    hash_key: str = "demo-only-hash-key-change-me"

    # Login to the case.
    pesel_fragment_length: int = 4
    otp_length: int = 6
    otp_ttl_seconds: int = 300
    invitation_code_ttl_seconds: int = 7 * 24 * 3600
    otp_max_failures_per_code: int = 5
    login_max_failures: int = 10
    # NIST SP 800-63B: after this many consecutive failures (across locks and windows) the
    # access stays locked until a member of staff unlocks it.
    login_max_consecutive_failures: int = 100
    login_failure_window_seconds: int = 24 * 3600
    login_lock_seconds: int = 30 * 60
    login_warn_when_attempts_left: int = 3
    otp_resend_limit: int = 3
    otp_resend_window_seconds: int = 15 * 60
    login_ip_limit: int = 30
    login_ip_window_seconds: int = 60
    login_case_limit: int = 20
    login_case_window_seconds: int = 15 * 60
    # Every answer of the login steps takes at least this long, so timing tells nothing.
    login_min_response_seconds: float = 0.35
    session_idle_timeout_seconds: int = 300
    session_absolute_timeout_seconds: int = 3600
    session_warning_seconds: int = 60

    # The staff dashboard (staff/): staff sign in through OpenID Connect (the bank's Keycloak
    # realm). The issuer is the realm's URL, e.g. https://sso.bank.example/realms/panel.
    staff_oidc_issuer: str = "http://localhost:8180/realms/customer-panel"
    staff_oidc_client_id: str = "staff-dashboard"
    staff_oidc_client_secret: str = ""
    # Where staff reach the dashboard: its OIDC redirect URI is <this>/auth/callback.
    staff_public_base_url: str = "http://127.0.0.1:8001"
    staff_session_secret: str = ""
    # Staff work through a day; a participant's five minutes would be wrong here.
    # How long the author of a staff note may still correct it.
    staff_note_edit_window_seconds: int = 10 * 60
    staff_session_idle_timeout_seconds: int = 30 * 60
    staff_session_absolute_timeout_seconds: int = 12 * 3600
    # Realm roles of the dashboard: every employee has the first; the second sees all tasks.
    staff_role: str = "staff"
    staff_manager_role: str = "team-manager"
    staff_operator_role: str = "operator"
    # Camunda Operate of the same cluster, e.g. https://operate.bank.example: the dashboard's
    # failed steps link each process instance to it. Empty: no links (the demo has none).
    operate_url: str = ""

    # The credit bureau the credit case type's "Check the credit bureau" step asks
    # (workers/routers/bureau.py). Empty: that step fails, and becomes an incident, until it is
    # set. The demo and the tests point it at devtools/bureau_stub.py.
    bureau_url: str = ""
    bureau_timeout_seconds: float = 5.0
    # How long a failed bureau call waits before the engine offers the job again (±20 %).
    bureau_retry_backoff_seconds: float = 10.0
    # Realm roles that book, move and cancel participants' appointments (comma-separated);
    # team managers always may.
    staff_appointment_roles: str = "branch-adviser,call-centre-agent"
    # The reminder SMS of an appointment goes at this hour (Europe/Warsaw) of the day before.
    appointment_reminder_hour: int = 10
    # How often the workers look for reminders that are due (0: never).
    appointment_reminder_interval_seconds: float = 60.0

    # SMS. "dev" keeps messages in a Redis list shown at /dev/outbox (demo mode only);
    # "smsapi" sends through SMSAPI.pl.
    # Uploaded documents: a local directory behind panel_core.documents.storage.
    document_storage_dir: str = "./var/documents"
    document_max_bytes: int = 10 * 1024 * 1024
    # How often the workers run the retention purge of closed cases (0: never; then run
    # ``customer-panel purge`` from the bank's scheduler).
    retention_interval_seconds: float = 3600.0

    # The chat (panel_core/conversations). The team whose queue a case type's conversations
    # join when its descriptor names none.
    chat_default_team: str = "call-centre-agents"
    chat_message_max_chars: int = 2000
    # Messages a participant may send in a window, across their conversations.
    chat_rate_limit_messages: int = 10
    chat_rate_limit_window_seconds: int = 600
    # Hosts whose links in staff answers are made clickable (comma-separated, e.g. the bank's
    # own site); any other address stays plain text.
    chat_link_hosts: str = ""
    # An answer not read this long after it was sent brings the participant one SMS...
    chat_away_sms_after_seconds: float = 900.0
    # ...and at most one such SMS per conversation in this time.
    chat_away_sms_gap_seconds: float = 3600.0
    # How often the workers look for unread answers (0: never).
    chat_away_sms_interval_seconds: float = 60.0
    document_max_files_per_request: int = 5
    # Malware scanner every upload passes: "eicar" (recognises the EICAR test file only, for
    # demos and tests) or "clamd" (ClamAV's daemon, INSTREAM over TCP or a unix socket).
    document_scanner: str = "eicar"
    # host:port, or a path for a unix socket.
    clamd_address: str = "127.0.0.1:3310"
    clamd_timeout_seconds: float = 30.0

    sms_provider: str = "dev"
    smsapi_base_url: str = "https://api.smsapi.pl"
    smsapi_token: str = ""
    sms_sender_name: str = ""
    sms_max_attempts: int = 10
    sms_retry_initial_seconds: float = 2.0
    sms_retry_max_seconds: float = 300.0
    sms_dispatch_interval_seconds: float = 1.0
    sms_request_timeout_seconds: float = 10.0

    # E-mail (panel_core/notifications/email_dispatcher.py): the bank's SMTP relay, reached
    # through aiosmtplib. No host means the panel sends no e-mail: the dashboard offers none.
    smtp_host: str = ""
    smtp_port: int = 587
    # "starttls" (upgrade required), "tls" (implicit TLS, usually port 465) or "none" (only
    # for a relay on the same host, and the demo's local server).
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 30.0
    # The sender every e-mail carries: "Bank <no-reply@bank.example>".
    mail_from: str = "Customer Panel <no-reply@panel.invalid>"
    email_max_attempts: int = 10
    email_retry_initial_seconds: float = 5.0
    email_retry_max_seconds: float = 600.0
    email_dispatch_interval_seconds: float = 1.0
    # Who on the staff may contact participants from the case page (realm roles, comma
    # separated): resend the invitation, lift a login lock, send a templated SMS or e-mail;
    # who may also write their own text; and who may send a case document by e-mail.
    staff_contact_roles: str = "call-centre-agent,branch-adviser,team-manager"
    staff_free_text_roles: str = "call-centre-agent,team-manager"
    staff_document_roles: str = "branch-adviser,team-manager"
    # Assisted mode (panel_core/tasks/assisted.py): who may complete a participant's task with
    # them on the phone (realm roles, comma-separated), and how long one check that the
    # participant is on the line lasts before it must be made again.
    staff_assisted_roles: str = "call-centre-agent,team-manager"
    assisted_session_seconds: int = 15 * 60


class SettingsError(ValueError):
    pass


# NIST SP 800-63B rev. 4 §3.1.3: an out-of-band code is valid for at most 10 minutes.
MAX_OTP_TTL_SECONDS = 600


def check_settings(settings: Settings) -> Settings:
    """Refuse values that would break a security rule rather than run with them."""
    if not 0 < settings.otp_ttl_seconds <= MAX_OTP_TTL_SECONDS:
        raise SettingsError(f"PANEL_OTP_TTL_SECONDS must be between 1 and {MAX_OTP_TTL_SECONDS}.")
    if settings.otp_length < 6:
        raise SettingsError("PANEL_OTP_LENGTH must be at least 6.")
    if settings.otp_max_failures_per_code > 5:
        raise SettingsError("PANEL_OTP_MAX_FAILURES_PER_CODE must be at most 5 (PSD2 RTS Art. 4).")
    if settings.session_idle_timeout_seconds > settings.session_absolute_timeout_seconds:
        raise SettingsError("The idle timeout cannot be longer than the absolute session lifetime.")
    if (
        settings.staff_session_idle_timeout_seconds
        > settings.staff_session_absolute_timeout_seconds
    ):
        raise SettingsError("The staff idle timeout cannot be longer than the staff session.")
    if not 0 <= settings.appointment_reminder_hour <= 23:
        raise SettingsError("PANEL_APPOINTMENT_REMINDER_HOUR must be an hour from 0 to 23.")
    if settings.chat_message_max_chars < 1 or settings.chat_rate_limit_messages < 1:
        raise SettingsError(
            "PANEL_CHAT_MESSAGE_MAX_CHARS and PANEL_CHAT_RATE_LIMIT_MESSAGES must be positive."
        )
    if not settings.chat_default_team.strip():
        raise SettingsError("PANEL_CHAT_DEFAULT_TEAM must name a staff group.")
    if not 0 <= settings.record_consumer_shard < settings.record_consumer_shards:
        raise SettingsError(
            "PANEL_RECORD_CONSUMER_SHARD must be from 0 to PANEL_RECORD_CONSUMER_SHARDS - 1."
        )
    if not settings.demo_mode and settings.hash_key == Settings().hash_key:
        raise SettingsError("Set PANEL_HASH_KEY to a long random secret outside demo mode.")
    return settings


def _coerce(raw: str, kind: Any) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return msgspec.convert(raw, type=kind, strict=False)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``PANEL_*`` variables; unknown variables are ignored."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        key = ENV_PREFIX + field.name.upper()
        if key in env:
            values[field.name] = _coerce(env[key], field.type)
    return check_settings(Settings(**values))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
