"""Configuration: every MOTCUA_* setting, declared once, validated at start-up.

Nothing else in the project reads ``os.environ``; code receives a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET = "dev-secret-change-me"  # noqa: S105 - the known default production refuses
# Database passwords an installer or a copied example leaves in place (README shows PASSWORD).
DEFAULT_DATABASE_PASSWORDS = frozenset({"password", "postgres", "motcua", "changeme", "secret", "admin"})
ENVIRONMENTS = ("development", "test", "production")
WORKERS = ("embedded", "celery")


def _sandbox_secret(name: str) -> str:
    """The known HMAC key the sandbox of a provider uses (development and test only)."""
    return f"sandbox-{name}-secret"


class ConfigError(ValueError):
    """A setting is missing, malformed or not allowed in this environment."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    """Typed settings; ``from_env`` maps ``MOTCUA_<FIELD>`` to each field."""

    # SQLAlchemy URL. SQLite for the embedded default, PostgreSQL in production.
    database_url: str = "sqlite:///instance/motcua.db"
    # Celery broker (RabbitMQ). Required when worker == "celery".
    broker_url: str = ""
    # Celery queue of this deployment (several deployments or test runs can share one broker).
    queue: str = "motcua"
    # Flask session/CSRF secret and the signing key for tokens.
    secret_key: str = DEFAULT_SECRET
    # development | test | production
    env: str = "development"
    # 1 mounts the provider sandboxes under /sandbox (never in production).
    sandbox: bool = True
    # embedded: a thread in the web process runs timers, service tasks and the outbox;
    # celery: Celery workers and beat do it.
    worker: str = "embedded"
    # Seconds between two passes of the embedded worker / the beat schedule.
    worker_interval: float = 2.0
    # Seconds a service call may run before the job gives up (Celery soft time limit too).
    service_timeout: float = 30.0
    # Log SQL statements.
    sql_echo: bool = False
    # Connector endpoints and secrets (used by connectors/; empty = sandbox defaults).
    payment_url: str = ""
    payment_secret: str = ""
    postal_url: str = ""
    postal_secret: str = ""
    sms_url: str = ""
    sms_secret: str = ""
    # National public-service portal: status changes are pushed here (empty: the sandbox ledger).
    portal_url: str = ""
    portal_secret: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "motcua@localhost"
    # Citizens log in with an SMS code after their password (API.md: "when OTP is on").
    citizen_otp: bool = True
    # Reverse proxies in front of the web app whose X-Forwarded-For/-Proto are trusted (0: none).
    proxy_hops: int = 0
    # Where citizens reach this deployment: the QR code of every document links to <url>/verify/<code>.
    public_url: str = "http://127.0.0.1:5000"
    # Test mode only, for fault drills: "OPERATION=SECONDS[,…]" makes a worker wait that long after
    # the connector call returned and before its result is saved, so a drill can kill it there.
    fault_pause_after: str = ""
    # Where npm installed the front-end libraries (bpmn-js); empty = node_modules of the checkout.
    node_modules: str = ""
    # Default UI language (vi); users may switch to en.
    default_locale: str = "vi"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read MOTCUA_* variables, apply overrides, validate."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = f"MOTCUA_{f.name.upper()}"
            if key not in environ:
                continue
            raw = environ[key]
            try:
                if f.type in ("bool", bool):
                    values[f.name] = _bool(raw)
                elif f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("float", float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from exc
        known = {f"MOTCUA_{f.name.upper()}" for f in fields(cls)}
        extra = {k: v for k, v in environ.items() if k.startswith("MOTCUA_") and k not in known}
        values["extra"] = extra
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A validated copy with some settings changed."""
        settings = replace(self, **changes)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse impossible or unsafe combinations."""
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"MOTCUA_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.worker not in WORKERS:
            raise ConfigError(f"MOTCUA_WORKER must be one of {', '.join(WORKERS)}, not {self.worker!r}")
        if not self.database_url:
            raise ConfigError("MOTCUA_DATABASE_URL is empty")
        if self.worker == "celery" and not self.broker_url:
            raise ConfigError("MOTCUA_WORKER=celery needs MOTCUA_BROKER_URL")
        if self.default_locale not in ("vi", "en"):
            raise ConfigError("MOTCUA_DEFAULT_LOCALE must be vi or en")
        if self.worker_interval <= 0:
            raise ConfigError("MOTCUA_WORKER_INTERVAL must be positive")
        if self.fault_pause_after:
            if self.env != "test":
                raise ConfigError("MOTCUA_FAULT_PAUSE_AFTER is a test-mode drill (MOTCUA_ENV=test only)")
            self.fault_pauses()
        if self.env == "production":
            if DEFAULT_SECRET in self.secret_key or len(self.secret_key) < 32:
                raise ConfigError("production refuses the default or a short MOTCUA_SECRET_KEY (32+ chars)")
            if self.sandbox:
                raise ConfigError("production refuses MOTCUA_SANDBOX=1: sandboxes play fake providers")
            if self.database_url.startswith("sqlite"):
                raise ConfigError("production needs PostgreSQL in MOTCUA_DATABASE_URL, not SQLite")
            if self.worker == "embedded":
                raise ConfigError("production needs MOTCUA_WORKER=celery and a broker")
            database = urlsplit(self.database_url)
            # No password at all is fine (peer or certificate authentication); a guessable one is not.
            if database.password is not None and database.password.lower() in {
                    "", (database.username or "").lower(), *DEFAULT_DATABASE_PASSWORDS}:
                raise ConfigError("production refuses a default database password in MOTCUA_DATABASE_URL")
            for name in ("payment", "postal", "sms", "portal"):
                secret = getattr(self, f"{name}_secret")
                if getattr(self, f"{name}_url") and len(secret) < 16:
                    raise ConfigError(f"production needs MOTCUA_{name.upper()}_SECRET (16+ chars) to sign "
                                      f"and check {name} messages")
                if secret == _sandbox_secret(name):
                    raise ConfigError(f"production refuses the sandbox's MOTCUA_{name.upper()}_SECRET: "
                                      "the key is public")

    def connector_secret(self, name: str) -> str | None:
        """The HMAC key of a provider's messages (payment, postal, sms). Only the sandbox (no
        provider URL, not production) falls back to a known key. None: callbacks are refused."""
        configured = getattr(self, f"{name}_secret")
        if configured:
            return str(configured)
        if self.env == "production" or getattr(self, f"{name}_url"):
            return None  # a real provider always has its own key
        return _sandbox_secret(name)

    def fault_pauses(self) -> dict[str, float]:
        """MOTCUA_FAULT_PAUSE_AFTER as {operation: seconds}."""
        pauses: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in self.fault_pause_after.split(","))):
            operation, sep, seconds = item.partition("=")
            try:
                value = float(seconds)
            except ValueError:
                value = -1.0
            if not sep or not operation.strip() or value < 0:
                raise ConfigError(f"MOTCUA_FAULT_PAUSE_AFTER: {item!r} is not OPERATION=SECONDS")
            pauses[operation.strip()] = value
        return pauses

    @property
    def is_test(self) -> bool:
        return self.env == "test"


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process of ours (a benchmark's worker or web server): this
    process's environment without its ``MOTCUA_`` settings, plus ``settings``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}, **settings}
