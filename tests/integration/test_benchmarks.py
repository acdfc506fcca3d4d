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
    assert report["waiting_timers_of_generated_cases"] == 400  # both deadline timers of 200 open cases
    assert report["due_during_run"] == 60
    assert report["burst"]["timers"] == report["burst"]["fired"] == 30
    assert report["spread"]["timers"] == report["spread"]["fired"] == 30
    assert report["fired"] == 60  # each once: the run stops when every due timer fired
    lateness = report["lateness_s"]
    assert 0 <= lateness["min"] <= lateness["p50"] <= lateness["p99"] <= lateness["max"]  # none fired early


def test_lifecycle_bench_completes_every_task_through_gunicorn_and_the_engine(settings):
    report = run_lifecycle_bench(settings, completions=40, raw=10, clients=4)
    assert report["api"]["statuses"] == {"200": 40}  # no client error, no conflict, no 5xx
    assert report["api"]["completions_per_s"] > 0
    assert report["engine_in_process"]["completions"] == 10
    assert report["audit_chain"]["ok"] is True
    latency = report["api"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["load"]["generated"]["stages"] == {"receive": 10, "work": 20, "approve": 10, "hand_back": 10}
