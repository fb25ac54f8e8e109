from __future__ import annotations

import pytest

from panel_core.settings import Settings, SettingsError, load_settings


def test_demo_mode_runs_on_defaults_alone() -> None:
    settings = load_settings({"PANEL_DEMO_MODE": "true"})
    assert settings == Settings(demo_mode=True)
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert settings.secure_cookies is True


def test_outside_demo_mode_the_hash_key_must_be_set() -> None:
    with pytest.raises(SettingsError, match="PANEL_HASH_KEY"):
        load_settings({})
    assert load_settings({"PANEL_HASH_KEY": "x" * 40}).demo_mode is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PANEL_OTP_TTL_SECONDS", "601", "OTP_TTL_SECONDS"),
        ("PANEL_OTP_TTL_SECONDS", "0", "OTP_TTL_SECONDS"),
        ("PANEL_OTP_LENGTH", "4", "OTP_LENGTH"),
        ("PANEL_OTP_MAX_FAILURES_PER_CODE", "6", "FAILURES_PER_CODE"),
        ("PANEL_SESSION_IDLE_TIMEOUT_SECONDS", "7200", "idle timeout"),
    ],
)
def test_values_that_would_break_a_security_rule_are_refused(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"PANEL_DEMO_MODE": "true", variable: value})


def test_environment_overrides_are_typed() -> None:
    settings = load_settings(
        {
            "PANEL_DEMO_MODE": "true",
            "PANEL_SECURE_COOKIES": "false",
            "PANEL_WORKER_MAX_CONCURRENCY": "4",
            "PANEL_CAMUNDA_REQUEST_TIMEOUT_SECONDS": "2.5",
            "PANEL_UNRELATED": "ignored",
        }
    )
    assert settings.demo_mode is True
    assert settings.secure_cookies is False
    assert settings.worker_max_concurrency == 4
    assert settings.camunda_request_timeout_seconds == 2.5
