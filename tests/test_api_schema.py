"""schemathesis drives every /api/v1 operation from the OpenAPI document: no answer is a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck

from orchestrator.api.app import create_app


@pytest.fixture
def api(ctx, people, memory_channels):
    return create_app(ctx), people


def test_no_operation_answers_5xx(api):
    app, people = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    token = people["admin_ops"]
    failures, calls, paths = [], 0, set()
    for operation in schema.get_all_operations():
        op = operation.ok()
        if not op.path.startswith("/api/v1"):
            continue

        for case in _cases(op, 15):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls += 1
            paths.add((op.method, op.path))
            if response.status_code >= 500:
                failures.append((op.method, op.path, response.status_code, response.text[:200]))
    assert failures == []
    assert len(paths) >= 12 and calls >= 100  # it really drove every operation


def _cases(operation, count):
    from hypothesis import given
    from hypothesis import settings as hsettings

    found = []

    @hsettings(max_examples=count, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def collect(case):
        found.append(case)

    collect()
    return found
