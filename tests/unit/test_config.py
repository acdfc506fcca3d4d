"""Settings are read once from MOTCUA_* and refuse unsafe combinations."""

from __future__ import annotations

import pytest

from engine.config import DEFAULT_SECRET, ConfigError, Settings

PROD = {
    "MOTCUA_ENV": "production",
    "MOTCUA_SECRET_KEY": "x" * 40,
    "MOTCUA_SANDBOX": "0",
    "MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua@db/motcua",
    "MOTCUA_WORKER": "celery",
    "MOTCUA_BROKER_URL": "amqp://guest:guest@mq:5672//",
}


def test_defaults_are_the_embedded_development_setup():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///instance/motcua.db"
    assert (settings.env, settings.worker, settings.sandbox) == ("development", "embedded", True)


def test_types_are_parsed():
    settings = Settings.from_env({"MOTCUA_SANDBOX": "no", "MOTCUA_WORKER_INTERVAL": "0.5", "MOTCUA_SMTP_PORT": "2525"})
    assert (settings.sandbox, settings.worker_interval, settings.smtp_port) == (False, 0.5, 2525)
    with pytest.raises(ConfigError, match="MOTCUA_SMTP_PORT"):
        Settings.from_env({"MOTCUA_SMTP_PORT": "twenty"})


def test_production_is_accepted_when_complete():
    assert Settings.from_env(PROD).env == "production"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MOTCUA_SECRET_KEY": DEFAULT_SECRET}, "SECRET_KEY"),
        ({"MOTCUA_SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"MOTCUA_SANDBOX": "1"}, "SANDBOX"),
        ({"MOTCUA_DATABASE_URL": "sqlite:///x.db"}, "PostgreSQL"),
        ({"MOTCUA_WORKER": "embedded"}, "celery"),
        ({"MOTCUA_BROKER_URL": ""}, "BROKER"),
        ({"MOTCUA_ENV": "staging"}, "MOTCUA_ENV"),
    ],
)
def test_production_refuses_unsafe_settings(change, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**PROD, **change})


def test_fault_pauses_are_a_test_mode_drill_with_checked_values():
    settings = Settings.from_env({"MOTCUA_ENV": "test", "MOTCUA_FAULT_PAUSE_AFTER": "interagency.send=4, sms.send=0.5"})
    assert settings.fault_pauses() == {"interagency.send": 4.0, "sms.send": 0.5}
    assert Settings.from_env({"MOTCUA_ENV": "test"}).fault_pauses() == {}
    with pytest.raises(ConfigError, match="MOTCUA_ENV=test"):
        Settings.from_env({"MOTCUA_FAULT_PAUSE_AFTER": "interagency.send=4"})
    for bad in ("interagency.send", "=4", "interagency.send=soon", "interagency.send=-1"):
        with pytest.raises(ConfigError, match=f"{bad!r} is not OPERATION=SECONDS"):
            Settings.from_env({"MOTCUA_ENV": "test", "MOTCUA_FAULT_PAUSE_AFTER": bad})
