"""The ``motcua`` command: serve, migrate, seed, calendar, validate, audit, bench, worker."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from engine.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@click.group()
def main() -> None:
    """motcua — back office for commune one-stop shops (bộ phận một cửa)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the web app (with the embedded worker unless MOTCUA_WORKER=celery)."""
    from backoffice.app import create_app

    settings = _settings()
    app = create_app(settings, start_worker=settings.worker == "embedded")
    click.echo(f"motcua: http://{host}:{port} ({settings.env}, worker={settings.worker})")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to MOTCUA_DATABASE_URL."""
    from engine.migrate import upgrade

    settings = _settings()
    upgrade(settings, revision)
    click.echo(f"database at {revision}: {settings.database_url}")


@main.command()
@click.option("--demo", is_flag=True, help="units, users, procedures, calendar and demo cases")
def seed(demo: bool) -> None:
    """Seed the calendar and the procedure catalogue (and demo data with --demo)."""
    from engine import catalogue, services
    from engine.db import make_engine, make_session_factory, transaction

    settings = _settings()
    if demo and settings.env == "production":
        raise click.ClickException("demo data is refused in production")
    factory = make_session_factory(make_engine(settings))
    if demo:
        from connectors import build_registry
        from scripts.seed import DEMO_PASSWORD, seed_demo

        logins = seed_demo(factory, build_registry(settings, factory),
                           lease=timedelta(seconds=settings.service_timeout), secret_key=settings.secret_key)
    else:
        with transaction(factory) as session:
            services.seed_calendar(session)
            catalogue.sync_catalogue(session, actor=services.SYSTEM_ACTOR)
        logins = []
    if logins:
        click.echo(f"Demo logins (password {DEMO_PASSWORD}):")
        for login in logins:
            unit = f" [{login.unit}]" if login.unit else ""
            click.echo(f"  {login.username:<28} {login.role}{unit}")
        click.echo("Back office: /login. Leaders set up two-step login (an authenticator app, TOTP) "
                   "at their first login; admins manage accounts at /admin/.")


@main.group()
def calendar() -> None:
    """Working-day calendar."""


@calendar.command("due")
@click.option("--received", required=True, help="ISO 8601 moment of receipt (no offset = Vietnam time)")
@click.option("--working-days", type=int, default=0)
@click.option("--same-day", is_flag=True)
@click.option("--hours", type=float, default=None, help="working hours")
@click.option("--calendar-days", type=int, default=None)
@click.option("--from-db", is_flag=True, help="use the holiday table of MOTCUA_DATABASE_URL, not the shipped seed")
def calendar_due(received: str, working_days: int, same_day: bool, hours: float | None,
                 calendar_days: int | None, from_db: bool) -> None:
    """Print the legal due moment (ISO 8601, +07:00)."""
    from engine.calendar import VN_TZ, WorkingCalendar, load_seed_days, parse_iso

    try:
        moment = parse_iso(received)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--received") from exc
    if from_db:
        from engine.db import make_engine, make_session_factory, transaction
        from engine.services import calendar_for

        with transaction(make_session_factory(make_engine(_settings()))) as session:
            cal = calendar_for(session)
    else:
        cal = WorkingCalendar(load_seed_days())
    try:
        due = cal.due(moment, working_days=working_days, same_day=same_day, hours=hours,
                      calendar_days=calendar_days)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(due.astimezone(VN_TZ).isoformat())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate BPMN files; prints ``file:line: message`` per problem, exit 1 on any."""
    from sqlalchemy.orm import sessionmaker

    from connectors import build_registry
    from engine.catalogue import CatalogueError, validation_context
    from engine.config import Settings
    from engine.validation import validate_bpmn

    operations = build_registry(Settings(), sessionmaker()).describe()  # every operation, none called
    problems = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            context = validation_context(path)
        except OSError as exc:
            click.echo(f"{path}:0: cannot read: {exc.strerror}")
            problems += 1
            continue
        except CatalogueError as exc:
            click.echo(str(exc))
            problems += 1
            continue
        for problem in validate_bpmn(text, filename=str(path), operations=operations, **context):
            click.echo(f"{path}:{problem.line or 0}: {problem.message}")
            problems += 1
    if problems:
        sys.exit(1)
    click.echo(f"{len(files)} file(s) valid")


@main.group()
def audit() -> None:
    """Audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain; exit 1 with the first broken event."""
    from engine.audit import verify_chain
    from engine.db import make_engine, make_session_factory, transaction

    with transaction(make_session_factory(make_engine(_settings()))) as session:
        report = verify_chain(session)
    if report.ok:
        click.echo(f"audit chain ok: {report.events} events")
        return
    click.echo(f"audit chain BROKEN at event {report.first_broken_id}: {report.reason} "
               f"({report.events} events verified before it)")
    sys.exit(1)


@main.group()
def signing() -> None:
    """Signing certificates: the authority that is trusted, the leaders' certificates."""


@signing.command("trust")
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def signing_trust(certificate: Path) -> None:
    """Trust CERTIFICATE (PEM) as the authority of the leaders' certificates (replaces the demo CA)."""
    from engine import signing as signing_
    from engine.db import make_engine, make_session_factory, transaction

    try:
        with transaction(make_session_factory(make_engine(_settings()))) as session:
            credential = signing_.import_authority(session, certificate.read_bytes())
            click.echo(f"trusted {credential.subject} (SHA-256 {credential.fingerprint})")
    except signing_.SigningError as exc:
        raise click.ClickException(f"{certificate}: {exc}") from exc


@signing.command("import")
@click.argument("username")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def signing_import(username: str, bundle: Path) -> None:
    """Give USERNAME (a leader) the certificate and key of BUNDLE (PKCS#12, .p12/.pfx); the
    passphrase is asked for (not echoed, never on the command line)."""
    from sqlalchemy import select

    from engine import signing as signing_
    from engine.db import make_engine, make_session_factory, transaction
    from engine.models import User

    settings = _settings()
    passphrase = click.prompt("Passphrase of the .p12 file (empty: none)", hide_input=True, default="",
                              show_default=False)
    try:
        with transaction(make_session_factory(make_engine(settings))) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise click.ClickException(f"no user {username!r}")
            credential = signing_.import_pkcs12(session, user, bundle.read_bytes(),
                                                passphrase.encode() if passphrase else None, settings.secret_key)
            click.echo(f"{username} signs with {credential.fingerprint} until {credential.not_after:%Y-%m-%d}")
    except signing_.SigningError as exc:
        raise click.ClickException(f"{bundle}: {exc}") from exc


@main.group()
def interagency() -> None:
    """Inter-agency messages over RabbitMQ (liên thông)."""


def _broker_settings() -> Settings:
    settings = _settings()
    if not settings.broker_url:
        raise click.ClickException("set MOTCUA_BROKER_URL (amqp://…) to reach RabbitMQ")
    return settings


@interagency.command("replies")
def interagency_replies() -> None:
    """Apply the agencies' answers to their cases (runs until stopped)."""
    from connectors.interagency import consume_replies
    from engine.db import make_engine, make_session_factory

    settings = _broker_settings()
    consume_replies(settings, make_session_factory(make_engine(settings)))


@main.group()
def payments() -> None:
    """Online payments."""


@payments.command("reconcile")
@click.option("--date", "day", default=None, help="the day to check (YYYY-MM-DD, Vietnam time); default yesterday")
def payments_reconcile(day: str | None) -> None:
    """Compare the provider's paid transactions of a day with ours; print JSON, flag differences."""
    import json
    from datetime import date, timedelta

    from connectors.payment import reconcile
    from engine import clock
    from engine.calendar import to_vn
    from engine.db import make_engine, make_session_factory

    try:
        checked = date.fromisoformat(day) if day else to_vn(clock.now()).date() - timedelta(days=1)
    except ValueError:
        raise click.BadParameter("YYYY-MM-DD", param_hint="--date") from None
    settings = _settings()
    report = reconcile(settings, make_session_factory(make_engine(settings)), checked)
    click.echo(json.dumps(report, ensure_ascii=False))


@main.group(name="sandbox")
def sandbox_group() -> None:
    """Providers' sandboxes (development and test only)."""


@sandbox_group.command("agencies")
@click.option("--delay", type=float, default=1.0, show_default=True, help="seconds before each answer")
def sandbox_agencies(delay: float) -> None:
    """Play the police and social insurance: answer each request once, after --delay seconds."""
    from connectors.interagency import run_sandbox_agencies
    from engine.db import make_engine, make_session_factory

    settings = _broker_settings()
    if settings.env == "production":
        raise click.ClickException("sandboxes never run in production")
    run_sandbox_agencies(settings, make_session_factory(make_engine(settings)), delay=delay)


@main.group()
def bench() -> None:
    """Benchmarks; each prints one JSON object."""


@bench.command("engine")
@click.option("--passes", default=150, show_default=True, type=int, help="rework loop passes")
@click.option("--database-url", default=None, help="defaults to MOTCUA_DATABASE_URL")
def bench_engine(passes: int, database_url: str | None) -> None:
    """Raw in-memory Spiff steps/s vs persisted steps/s; step cost at pass N vs pass 1; state size."""
    from scripts.bench import run_engine_bench

    settings = _settings()
    if database_url:
        settings = settings.with_(database_url=database_url)
    result: dict[str, Any] = run_engine_bench(settings, passes=passes)
    click.echo(json.dumps(result, indent=2))


def _bench_settings(database_url: str | None, cases: int) -> Any:
    """The settings of a bulk benchmark: its server (a scratch database is made there), refused on
    SQLite beyond a small run."""
    from sqlalchemy.engine import make_url

    from scripts.bench import SQLITE_MAX_CASES

    settings = _settings()
    if database_url:
        settings = settings.with_(database_url=database_url)
    if make_url(settings.database_url).get_backend_name() == "sqlite" and cases > SQLITE_MAX_CASES:
        raise click.ClickException(
            f"SQLite is for small runs (--cases up to {SQLITE_MAX_CASES:,}); for {cases:,} cases pass "
            "--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres (a scratch database is "
            "created on that server and dropped afterwards)")
    return settings


@bench.command("seed")
@click.option("--cases", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", "seed_", default=20261202, show_default=True, type=int, help="random seed")
@click.option("--database-url", default=None, help="defaults to MOTCUA_DATABASE_URL; the cases are added there")
def bench_seed(cases: int, seed_: int, database_url: str | None) -> None:
    """Add N realistic cases to the database: copies of cases the engine ran, at every stage."""
    from scripts.seedgen import run_seed

    settings = _settings()
    if database_url:
        settings = settings.with_(database_url=database_url)
    try:
        result = run_seed(settings, cases=cases, seed=seed_)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result, indent=2))


@bench.command("timers")
@click.option("--timers", default=100_000, show_default=True, type=click.IntRange(min=100),
              help="waiting deadline timers (two per generated open case)")
@click.option("--burst", default=1_000, show_default=True, type=click.IntRange(min=0),
              help="timers due at the same moment (deadlines fall at 17:00)")
@click.option("--spread", default=2_000, show_default=True, type=click.IntRange(min=0),
              help="timers due one after another over --spread-seconds after the burst")
@click.option("--spread-seconds", default=120.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(min=1),
              help="Celery worker processes")
@click.option("--database-url", default=None,
              help="PostgreSQL server for the scratch database; defaults to MOTCUA_DATABASE_URL")
def bench_timers(timers: int, burst: int, spread: int, spread_seconds: float, concurrency: int,
                 database_url: str | None) -> None:
    """How late deadline timers fire with N waiting: a Celery worker and beat on PostgreSQL."""
    from scripts.bench_live import run_timers_bench

    _live_bench(run_timers_bench, database_url, timers=timers, burst=burst, spread=spread, spread_s=spread_seconds,
                concurrency=concurrency)


@bench.command("lifecycle")
@click.option("--completions", default=3_000, show_default=True, type=click.IntRange(min=10),
              help="task completions through the HTTP API")
@click.option("--raw", default=1_000, show_default=True, type=click.IntRange(min=10),
              help="completions through the case service in the benchmark's process")
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(min=1), help="gunicorn workers")
@click.option("--clients", default=8, show_default=True, type=click.IntRange(min=1), help="concurrent clients")
@click.option("--database-url", default=None,
              help="PostgreSQL server for the scratch database; defaults to MOTCUA_DATABASE_URL")
def bench_lifecycle(completions: int, raw: int, web_workers: int, clients: int, database_url: str | None) -> None:
    """Task completions per second through the API (gunicorn on PostgreSQL) and through the engine."""
    from scripts.bench_live import run_lifecycle_bench

    _live_bench(run_lifecycle_bench, database_url, completions=completions, raw=raw, web_workers=web_workers,
                clients=clients)


def _live_bench(run: Any, database_url: str | None, **options: Any) -> None:
    """Run a benchmark with live processes on the configured (or given) PostgreSQL server; print its JSON."""
    settings = _settings()
    if database_url:
        settings = settings.with_(database_url=database_url)
    try:
        result = run(settings, **options)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result, indent=2))


@bench.command("inbox")
@click.option("--cases", default=1_000_000, show_default=True, type=click.IntRange(min=100),
              help="synthetic dossiers in 60 communes")
@click.option("--requests", "requests_", default=500, show_default=True, type=click.IntRange(min=1),
              help="timed requests per endpoint")
@click.option("--real-cases", default=100, show_default=True, type=click.IntRange(min=0),
              help="cases run through the case service in the officer's commune")
@click.option("--database-url", default=None,
              help="server for the scratch database; defaults to MOTCUA_DATABASE_URL (PostgreSQL for big runs)")
def bench_inbox(cases: int, requests_: int, real_cases: int, database_url: str | None) -> None:
    """p50/p95/p99 of one officer's inbox, task, dossier and history API with CASES dossiers; plans' indexes."""
    from scripts.bench import run_inbox_bench

    settings = _bench_settings(database_url, cases)
    result: dict[str, Any] = run_inbox_bench(settings, cases=cases, requests=requests_, real_cases=real_cases)
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


@bench.command("reports")
@click.option("--cases", default=1_000_000, show_default=True, type=click.IntRange(min=100),
              help="synthetic dossiers in 60 communes over two years")
@click.option("--requests", "requests_", default=300, show_default=True, type=click.IntRange(min=1),
              help="timed auditor searches of each kind")
@click.option("--database-url", default=None,
              help="server for the scratch database; defaults to MOTCUA_DATABASE_URL (PostgreSQL for big runs)")
def bench_reports(cases: int, requests_: int, database_url: str | None) -> None:
    """Time of the province's monthly on-time report (goal ≤ 2 s) and auditor search p95 (goal ≤ 100 ms)."""
    from scripts.bench import run_reports_bench

    settings = _bench_settings(database_url, cases)
    result: dict[str, Any] = run_reports_bench(settings, cases=cases, requests=requests_)
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


def _celery_app() -> Any:
    from backoffice.app import create_app

    settings = _settings()
    if settings.worker != "celery":
        raise click.ClickException("set MOTCUA_WORKER=celery and MOTCUA_BROKER_URL to run Celery")
    return create_app(settings).extensions["celery"]


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (extra arguments go to ``celery worker``)."""
    _celery_app().worker_main(["worker", "--loglevel=INFO", *ctx.args])


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run Celery beat: the timer and service-call sweep every MOTCUA_WORKER_INTERVAL seconds."""
    _celery_app().Beat(loglevel="INFO", **_beat_options(ctx.args)).run()


def _beat_options(args: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for arg in args:
        key, _, value = arg.lstrip("-").partition("=")
        options[key.replace("-", "_")] = value or True
    return options


if __name__ == "__main__":  # pragma: no cover
    main()
