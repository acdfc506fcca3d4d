"""The motcua command: calendar, validate, the make-run path (migrate, seed, serve) and audit."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from backoffice.app import create_app
from engine.config import Settings
from scripts.cli import main
from tests.factories import FIXTURES, PROCESSES


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--received", "2026-11-13T10:00:00+07:00", "--working-days", "3"], "2026-11-18T17:00:00+07:00"),
        (["--received", "2026-11-13T16:00", "--same-day"], "2026-11-16T17:00:00+07:00"),
        (["--received", "2026-11-13T14:00", "--same-day"], "2026-11-13T17:00:00+07:00"),
        (["--received", "2026-04-29T09:00+07:00", "--working-days", "2"], "2026-05-05T17:00:00+07:00"),
    ],
)
def test_calendar_due(runner, args, expected):
    result = runner.invoke(main, ["calendar", "due", *args])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected


def test_calendar_due_refuses_bad_input(runner):
    result = runner.invoke(main, ["calendar", "due", "--received", "yesterday", "--working-days", "3"])
    assert result.exit_code == 2
    assert "--received" in result.output
    result = runner.invoke(main, ["calendar", "due", "--received", "2026-11-13T10:00", "--working-days", "-1"])
    assert result.exit_code == 2


def test_validate_accepts_the_shipped_processes(runner):
    files = [str(p) for p in sorted(PROCESSES.glob("*/*.bpmn"))]
    assert len(files) >= 2
    result = runner.invoke(main, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert f"{len(files)} file(s) valid" in result.output


def test_validate_reports_file_and_line(runner, tmp_path):
    bad = (FIXTURES / "service_timer.bpmn").read_text().replace(
        "<bpmn:script>dossier_status = 'returned'</bpmn:script>",
        "<bpmn:script>import os\nos.system('x')</bpmn:script>",
    )
    path = tmp_path / "bad.bpmn"
    path.write_text(bad)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "import os" in text)
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: mark_done: line 1: import is not allowed" in result.output
    broken = tmp_path / "broken.bpmn"
    broken.write_text("<bpmn:definitions>\n<oops>\n</bpmn:definitions>\n")
    result = runner.invoke(main, ["validate", str(broken)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{broken}:")


def test_make_run_path_migrates_seeds_and_serves(runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {"MOTCUA_DATABASE_URL": url, "MOTCUA_ENV": "test"}
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    first = runner.invoke(main, ["seed", "--demo"], env=env)
    assert first.exit_code == 0, first.output
    assert "onestop.anhoathinh" in first.output
    assert "001099012345" in first.output
    again = runner.invoke(main, ["seed", "--demo"], env=env)  # idempotent
    assert again.exit_code == 0, again.output
    app = create_app(Settings.from_env(env))
    client = app.test_client()
    units = client.get("/api/v1/units").get_json()
    assert [u["code"] for u in units] == ["anhoathinh", "luongphong"]
    assert all(u["agency_code"] and u["name"].startswith("UBND") for u in units)
    page = client.get("/").get_data(as_text=True)
    assert "Hồ sơ theo trạng thái" in page
    assert "Yêu cầu bổ sung: 2" in page  # one supplement-requested demo case per commune
    assert "ngày làm việc" in page
    assert "leader.luongphong" in page
    procedures = {p["code"]: p for p in client.get("/api/v1/procedures").get_json()}
    assert procedures["marital_status_confirmation"]["legal_time"] == {"value": 3.0, "unit": "working_days"}
    verify = runner.invoke(main, ["audit", "verify"], env=env)
    assert verify.exit_code == 0, verify.output
    assert "audit chain ok" in verify.output
    app.extensions["motcua"].engine.dispose()


def test_seed_demo_is_refused_in_production(runner):
    env = {"MOTCUA_ENV": "production", "MOTCUA_SECRET_KEY": "y" * 40, "MOTCUA_SANDBOX": "0",
           "MOTCUA_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/none", "MOTCUA_WORKER": "celery",
           "MOTCUA_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
    result = runner.invoke(main, ["seed", "--demo"], env=env)
    assert result.exit_code == 1
    assert "refused in production" in result.output


def test_bench_inbox_small_run_prints_latencies_and_plans(runner):
    """A smoke run on SQLite: the report's shape and counts, not its speed (benchmarks measure that)."""
    result = runner.invoke(main, ["bench", "inbox", "--cases", "2000", "--requests", "20", "--real-cases", "4",
                                  "--database-url", "sqlite:///unused.db"], env={"MOTCUA_ENV": "test"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["benchmark"] == "inbox"
    assert report["database"] == "sqlite"
    assert report["cases"] == 2000
    assert report["rows"]["synthetic_dossiers"] == 2000
    assert report["rows"]["unit"] == 60
    assert report["rows"]["procedure"] == 13
    assert report["rows"]["task"] > report["rows"]["dossier"] > 2000
    assert 0 < report["rows"]["open_user_tasks"] < report["rows"]["dossier"] // 5
    counts = report["officer_inbox_counts"]
    assert counts["all"] == counts["unit"] + counts["mine"] > 0  # a justice officer of one unit
    expected = {"inbox_mine", "inbox_unit", "inbox_all", "inbox_all_page2", "inbox_search_code",
                "inbox_search_name", "task", "dossier", "case_history"}
    assert set(report["latency_ms"]) == expected
    for stats in report["latency_ms"].values():
        assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    assert set(report["plans"]) == expected
    assert any(name.startswith("ix_task_") for name in report["plans"]["inbox_mine"]["indexes"])
    assert isinstance(report["uses_indexes"], bool)
    assert set(report["goals"]) >= {"inbox_p95_ms", "inbox_ok", "read_p95_ms", "read_ok"}


def test_bench_inbox_refuses_a_million_cases_on_sqlite(runner):
    result = runner.invoke(main, ["bench", "inbox", "--database-url", "sqlite:///unused.db"])
    assert result.exit_code == 1
    assert "--database-url postgresql" in result.output


def test_bench_engine_small_run_reports_the_finished_case_state(runner):
    """A smoke run on SQLite: a case goes through every step to the end and its state is measured."""
    result = runner.invoke(main, ["bench", "engine", "--passes", "6", "--database-url", "sqlite:///unused.db"],
                           env={"MOTCUA_ENV": "test"})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "engine"
    finished = report["finished_case_state"]
    assert finished["user_and_service_tasks"] >= 9  # two receipts, two appraisals, two approvals, signing, hand-back
    assert 0 < finished["stored_bytes"] < finished["json_bytes"]
    assert report["persisted"]["steps"] == report["raw_in_memory"]["steps"] == 12
