"""docker-compose.yml, Dockerfile and README.md against the code they describe.

Docker is not needed: the compose file is read with PyYAML and every command it runs is resolved
against the real entry points (the ``motcua`` click group, the gunicorn app factory), and the
services' environment is fed to ``Settings.from_env`` under the production rules.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from flask import Flask
from sqlalchemy.engine import make_url

from engine.config import ConfigError, Settings
from scripts.cli import main as motcua_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
README = REPO_ROOT / "README.md"

INFRA_SERVICES = ("postgres", "rabbitmq")
APP_SERVICES = ("migrate", "web", "worker", "beat", "interagency")
LONG_RUNNING = ("web", "worker", "beat")
SETTING_VARIABLES = sorted(f"MOTCUA_{f.name.upper()}" for f in fields(Settings) if f.name != "extra")

# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# What an operator would export: long enough for the production secret rule (32+ chars), URL-safe.
DUMMY_SECRET = "0123456789abcdef" * 3


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "no services in docker-compose.yml"
    return data


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def interpolate(value: str) -> str:
    """Resolve compose placeholders as if every required variable were exported with a dummy secret."""
    value = value.replace("$$", "\0")

    def resolve(match: re.Match[str]) -> str:
        op, arg = match.group("op"), match.group("arg")
        if op in (":-", "-"):
            return arg
        return DUMMY_SECRET

    return PLACEHOLDER.sub(resolve, value).replace("\0", "$")


def environment(service: str) -> dict[str, str]:
    """The service's environment as compose passes it (list or mapping form), not interpolated."""
    raw = SERVICES[service].get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        raw = dict(pairs)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def production_environment(service: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in environment(service).items()}


def invocations(service: str) -> list[list[str]]:
    """Each program call of the service's command; ``sh -c "a && b"`` gives two calls."""
    command = SERVICES[service].get("command")
    assert command, f"{service} has no command (the image's default is not checked here)"
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and "-c" in argv:
        script = argv[argv.index("-c") + 1]
        parts = re.split(r"&&|\|\||;|\n", script)
        return [shlex.split(part) for part in parts if part.strip()]
    return [argv]


def all_invocations() -> Iterator[tuple[str, list[str]]]:
    for service in APP_SERVICES:
        for argv in invocations(service):
            yield service, argv


def resolve_motcua_command(args: list[str]) -> click.Command:
    """Walk the click group like ``motcua`` would and parse the leaf's options (without running it)."""
    ctx = click.Context(motcua_cli, info_name="motcua")
    command: click.Command = motcua_cli
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"`motcua {' '.join(args)}` names no subcommand"
        assert not rest[0].startswith("-"), f"`motcua {' '.join(args)}` names no subcommand"
        name = rest.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`motcua {' '.join(args)}`: no subcommand {name!r} under {ctx.command_path!r}"
        ctx = click.Context(sub, info_name=name, parent=ctx)
        command = sub
    # Options and arguments must parse: an unknown option of a strict command fails here.
    command.make_context(ctx.info_name, rest, parent=ctx.parent)
    return command


def gunicorn_app_spec(argv: list[str]) -> str:
    positional = [a for a in argv[1:] if not a.startswith("-")]
    assert len(positional) == 1, (
        f"gunicorn command {argv}: expected exactly one APP_MODULE (write options as --name=value)"
    )
    return positional[0]


def load_gunicorn_target(spec: str) -> tuple[Any, list[Any], dict[str, Any]]:
    """Resolve ``module:name`` or ``module:factory(literal args)`` the way gunicorn's import_app does."""
    module_name, sep, expression = spec.partition(":")
    assert sep, f"{spec!r}: gunicorn needs module:callable"
    assert expression, f"{spec!r}: gunicorn needs module:callable"
    node = ast.parse(expression, mode="eval").body
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name), f"{spec!r}: the factory must be a simple name"
        name = node.func.id
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    else:
        assert isinstance(node, ast.Name), f"{spec!r}: not a name or a factory call"
        name = node.id
    module = importlib.import_module(module_name)
    target = getattr(module, name, None)
    assert target is not None, f"{spec!r}: {module_name} has no attribute {name!r}"
    assert callable(target), f"{spec!r}: {name} is not callable"
    return target, args, kwargs


def test_every_service_is_declared() -> None:
    for name in (*INFRA_SERVICES, *APP_SERVICES):
        assert name in SERVICES, f"docker-compose.yml has no {name!r} service"
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["rabbitmq"]["image"].startswith("rabbitmq:3-management")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_run_the_project_image(service: str) -> None:
    build = SERVICES[service].get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context == ".", f"{service} is not built from the repository's Dockerfile"
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (REPO_ROOT / dockerfile).is_file()


def test_image_installs_the_runtime_dependencies_only() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    installs = re.findall(r"pip install ([^\n\\&]+)", text)
    assert installs, "the Dockerfile installs nothing"
    assert all("[dev]" not in i and "-e " not in i for i in installs), f"dev or editable install: {installs}"
    copied = set(re.findall(r"^COPY (\S+)", text, re.MULTILINE))
    for needed in ("engine", "backoffice", "connectors", "scripts", "processes"):
        assert needed in copied, f"the image lacks {needed}/ (COPY {needed} ./{needed})"
    # processes/ is not package data: the app must be imported from /app, where it sits next to engine/.
    assert re.search(r"^WORKDIR /app$", text, re.MULTILINE)
    assert re.search(r"\bPYTHONPATH=/app\b", text), "engine.catalogue would not find /app/processes"


@pytest.mark.parametrize(
    ("service", "argv"),
    [pytest.param(service, argv, id=f"{service}: {' '.join(argv[:3])}") for service, argv in all_invocations()],
)
def test_commands_name_real_entry_points(service: str, argv: list[str]) -> None:
    program = argv[0]
    if program == "motcua":
        resolve_motcua_command(argv[1:])
    elif program == "gunicorn":
        load_gunicorn_target(gunicorn_app_spec(argv))
    else:
        pytest.fail(f"{service} runs {program!r}: only `motcua ...` and gunicorn are checked entry points")


def test_the_checker_refuses_commands_that_do_not_exist() -> None:
    """The entry-point check above must fail on a misspelt command, not pass everything."""
    resolve_motcua_command(["db", "upgrade"])
    for wrong in (["db", "migrate"], ["serve", "--no-such-option"], ["db"], ["workers"]):
        with pytest.raises((AssertionError, click.ClickException)):
            resolve_motcua_command(wrong)
    with pytest.raises(AssertionError):
        load_gunicorn_target("backoffice.app:no_such_factory()")


def test_expected_roles() -> None:
    """migrate upgrades the schema first; web is gunicorn; worker and beat are the Celery commands."""
    migrate = invocations("migrate")
    assert migrate[0] == ["motcua", "db", "upgrade"]
    web = invocations("web")
    assert web[0][0] == "gunicorn"
    assert gunicorn_app_spec(web[0]) == "backoffice.app:app_factory()"
    assert "--workers=2" in web[0]
    assert "--bind=0.0.0.0:8000" in web[0]
    assert invocations("worker")[0][:2] == ["motcua", "worker"]
    assert "--concurrency=2" in invocations("worker")[0]
    assert invocations("beat")[0][:2] == ["motcua", "beat"]


def test_web_factory_builds_the_production_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Call the factory exactly as gunicorn does, in the web service's environment (nothing connects)."""
    target, args, kwargs = load_gunicorn_target(gunicorn_app_spec(invocations("web")[0]))
    for key in [k for k in os.environ if k.startswith("MOTCUA_")]:
        monkeypatch.delenv(key)
    for key, value in production_environment("web").items():
        monkeypatch.setenv(key, value)
    app = target(*args, **kwargs)
    try:
        assert isinstance(app, Flask)
        settings = app.extensions["motcua"].settings
        assert (settings.env, settings.worker, settings.sandbox) == ("production", "celery", False)
        assert "celery" in app.extensions
        assert app.extensions["motcua"].worker is None, "the web process must not run the embedded worker"
        routes = {rule.rule for rule in app.url_map.iter_rules()}
        assert "/api/v1/health" in routes
        assert not any(r.startswith(("/sandbox", "/api/v1/test")) for r in routes), "sandbox or test mode mounted"
    finally:
        app.extensions["motcua"].engine.dispose()


def test_healthchecks_have_a_test_command() -> None:
    for name, service in SERVICES.items():
        check = service.get("healthcheck")
        if check is None:
            continue
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check.get("test")
        assert test, f"{name}: healthcheck without a test"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"
            assert len(test) > 1, f"{name}: {test}"
            assert all(test[1:]), f"{name}: {test}"
    for name in ("postgres", "rabbitmq", "web"):
        assert "healthcheck" in SERVICES[name], f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert SERVICES["rabbitmq"]["healthcheck"]["test"][1:] == ["rabbitmq-diagnostics", "-q", "ping"]
    assert "/api/v1/health" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_dependencies_wait_for_the_right_condition() -> None:
    """service_healthy needs a healthcheck; service_completed_successfully needs a one-shot service."""
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, spec in depends.items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} health it never reports"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") in ("no", "on-failure"), f"{target} is not one-shot"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert SERVICES[name].get("restart") in ("always", "unless-stopped")


def test_data_lives_in_named_volumes() -> None:
    volumes = COMPOSE.get("volumes") or {}
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("rabbitmq", "/var/lib/rabbitmq")):
        mounts = [str(m).split(":") for m in SERVICES[name].get("volumes", [])]
        assert any(m[0] in volumes and m[1] == path for m in mounts), f"{name} keeps {path} in no named volume"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_are_configured_for_production(service: str) -> None:
    env = environment(service)
    unknown = sorted(k for k in env if k.startswith("MOTCUA_") and k not in SETTING_VARIABLES)
    assert not unknown, f"{service} sets {unknown}: not Settings fields (they would land in Settings.extra)"
    assert not [k for k in env if not k.startswith("MOTCUA_")], f"{service}: only MOTCUA_* configure the app"
    assert env["MOTCUA_ENV"] == "production"
    assert env["MOTCUA_WORKER"] == "celery"
    assert env.get("MOTCUA_SANDBOX", "1").strip().lower() in ("0", "false", "no", "off"), (
        f"{service} leaves MOTCUA_SANDBOX on (its default is 1)"
    )
    # No secret is written in the file: compose refuses to start when it is not exported.
    assert re.fullmatch(r"\$\{MOTCUA_SECRET_KEY:\?[^}]+\}", env["MOTCUA_SECRET_KEY"])
    assert production_environment(service) == production_environment("web"), f"{service} and web disagree"


def test_web_environment_passes_the_production_rules() -> None:
    env = production_environment("web")
    settings = Settings.from_env(env)
    assert (settings.env, settings.sandbox, settings.worker) == ("production", False, "celery")
    assert not settings.extra
    database = make_url(settings.database_url)
    assert (database.get_backend_name(), database.get_driver_name()) == ("postgresql", "psycopg")
    assert database.host in SERVICES
    assert database.database == SERVICES["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == SERVICES["postgres"]["environment"]["POSTGRES_USER"]
    broker = make_url(settings.broker_url.replace("amqp://", "postgresql://", 1))  # parse host and user only
    assert settings.broker_url.startswith("amqp://")
    assert broker.host in SERVICES
    assert broker.username == SERVICES["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    # The same environment without the operator's secret is refused (a short or default key).
    for bad_secret in ("", "dev-secret-change-me", "short"):
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            Settings.from_env({**env, "MOTCUA_SECRET_KEY": bad_secret})


def test_required_passwords_are_not_written_in_the_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for variable in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "MOTCUA_SECRET_KEY"):
        assert re.search(r"\$\{" + variable + r":\?", text), f"{variable} is not required with ${{...:?}}"
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"])


def _pyproject() -> Mapping[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_motcua_command_is_installed_by_the_package() -> None:
    assert _pyproject()["project"]["scripts"]["motcua"] == "scripts.cli:main"


def test_gunicorn_is_installed_by_the_package() -> None:
    """`pip install .` in the Dockerfile must provide the web service's program."""
    names = {re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() for d in _pyproject()["project"]["dependencies"]}
    assert "gunicorn" in names


def test_readme_documents_the_commands_and_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("make run", "make test", "motcua db upgrade", "motcua worker", "motcua beat",
                    "motcua audit verify", "pg_dump", "docker compose"):
        assert command in text, f"README.md does not mention `{command}`"
    missing = [v for v in SETTING_VARIABLES if v not in text]
    assert not missing, f"README.md does not document {missing}"
    unknown = sorted(set(re.findall(r"MOTCUA_[A-Z0-9_]*[A-Z0-9]", text)) - set(SETTING_VARIABLES))
    assert not unknown, f"README.md names settings that engine/config.py does not have: {unknown}"


def test_readme_lists_the_demo_logins() -> None:
    from scripts.seed import CITIZEN, DEMO_PASSWORD, DEMO_UNITS, GLOBAL_USERS, UNIT_ROLES

    text = README.read_text(encoding="utf-8")
    logins = [f"{role.value}.{code}" for code, _name, _agency in DEMO_UNITS for role, _title in UNIT_ROLES]
    logins += [role.value for role, _title in GLOBAL_USERS]
    logins += [CITIZEN["username"], CITIZEN["phone"], DEMO_PASSWORD]
    missing = [login for login in logins if f"`{login}`" not in text]
    assert not missing, f"README.md does not list {missing}"
