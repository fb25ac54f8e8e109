from __future__ import annotations

from panel_core.settings import Settings, load_settings


def test_defaults_run_the_demo_without_other_services_configured() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert settings.secure_cookies is True
    assert settings.demo_mode is False


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
