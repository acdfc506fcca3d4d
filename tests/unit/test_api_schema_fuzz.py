"""Schemathesis against the API's own OpenAPI document: generated requests to every operation, as
an officer of the dossier's unit and as an auditor, never get a server error and every answer
matches the schema the document gives for its status (or the common error schema)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from scripts.seed import DEMO_PASSWORD
from tests.factories import api_token, counter_case, demo_app

PROCEDURE = "marital_status_confirmation"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EXAMPLES = 4  # per operation and caller, derandomized (the same requests on every run)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    for application in demo_app(tmp_path_factory, "fuzz", sandbox=True):
        counter_case(application)  # a dossier and a task for the generated requests to find
        yield application


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def tokens(fuzz_app) -> dict[str, str]:
    client = fuzz_app.test_client()
    return {who: api_token(client, who, DEMO_PASSWORD) for who in ("justice.anhoathinh", "auditor")}


def test_generated_requests_get_no_server_error_and_match_the_schema(api_schema, tokens):
    """Every operation of the document, EXAMPLES generated requests each (hypothesis, derandomized:
    the same requests on every run), called as each user. Schemathesis's pytest plugin does not
    load under this pytest, so the operations are walked here."""
    headers = [{"Authorization": f"Bearer {token}"} for token in tokens.values()]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 40

    statuses: Counter[int] = Counter()
    reached: set[str] = set()
    spent: dict[str, float] = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        # no shrinking: a failure is reported at once, with schemathesis's curl line to reproduce it
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=(Phase.explicit, Phase.generate),
                  suppress_health_check=list(HealthCheck))
        def run(case):
            for header in headers:
                response = case.call_and_validate(headers=header, checks=CHECKS)
                statuses[response.status_code] += 1
                if response.status_code < 300:
                    reached.add(case.operation.label)

        began = time.perf_counter()
        run()
        spent[operation.label] = round(time.perf_counter() - began, 2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis.json").write_text(json.dumps(
        {"statuses": dict(statuses), "seconds_per_operation": spent}, indent=2, sort_keys=True))
    # The requests got through to the handlers, not only to the authorization and validation layers.
    assert sum(statuses.values()) >= len(operations) * 2
    assert statuses[200] > 0, statuses
    assert statuses[422] > 0, statuses
    assert statuses[403] > 0, statuses
    # random codes and ids mostly name nothing (404): the public and list operations answer 2xx
    assert len(reached) >= 8, sorted(reached)
