"""The live benchmarks run end to end at a small size (their figures come from full runs, not here).

``motcua bench timers`` (a Celery worker with beat fires generated cases' deadline warnings) and
``motcua bench lifecycle`` (gunicorn serving task completions) on PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import pytest

from engine.config import Settings
from scripts.bench_live import run_lifecycle_bench, run_timers_bench

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_settings: Settings, broker_url: str) -> Settings:
    return pg_settings.with_(broker_url=broker_url)


def test_timers_bench_fires_every_timer_due_during_the_run(settings):
    report = run_timers_bench(settings, timers=400, burst=30, spread=30, spread_s=5.0)
    assert report["waiting_timers"] >= 400
    assert report["due_during_run"] == 60
    assert report["fired"] == 60
    assert len(report["burst_lateness_s"]) == len(report["spread_lateness_s"]) == 5
    assert 0 <= report["lateness_s"]["p50"] <= report["lateness_s"]["p99"] <= report["lateness_s"]["max"] < 120
    assert report["goals"]["ok"] == (report["lateness_s"]["p99"] <= 5.0)


def test_lifecycle_bench_completes_every_task_through_gunicorn_and_the_engine(settings):
    report = run_lifecycle_bench(settings, completions=40, raw=10, clients=4)
    assert report["api"]["statuses"] == {"200": 40}
    assert report["api"]["completions_per_s"] > 0
    assert report["engine_in_process"]["completions"] == 10
    assert report["audit_chain"]["ok"] is True
    latency = report["api"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["load"]["generated"]["stages"] == {"receive": 10, "work": 20, "approve": 10, "hand_back": 10}
