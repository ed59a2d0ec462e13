"""schemathesis drives every /api/v1 operation from the OpenAPI document: no answer is a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck

from orchestrator.bootstrap import make_app


def everyone(ctx) -> str:
    """A person holding every role, so the fuzz gets past every role check and duty
    (docs/security.md) and reaches what each operation does."""
    from orchestrator.domain.review import ROLES
    from orchestrator.usecases import users
    from orchestrator.usecases.unit_of_work import UnitOfWork

    with UnitOfWork(ctx) as uow:
        return users.add_user(uow, "fuzzer", list(ROLES))


@pytest.fixture
def api(ctx, people, memory_channels):
    return make_app(ctx), everyone(ctx)


def test_no_operation_answers_5xx(api):
    app, token = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
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


# ------------------------------------------------------------------ stateful


def test_stateful_runs_never_answer_5xx(ctx, people, memory_channels, new_release):
    """schemathesis links operations (a created release's id feeds show/edit/submit/...)
    and hypothesis walks sequences of calls; no step may answer 5xx.

    Deterministic: derandomize=True, no example database, bounded examples and steps."""
    from hypothesis import settings as hsettings
    from hypothesis.stateful import run_state_machine_as_test

    token = everyone(ctx)  # every role, admin too: the walk gets past every check
    from tests.conftest import approve_all, drain

    draft, published = new_release(), new_release()  # rows for small ids to reach
    approve_all(ctx, published)
    drain(ctx)
    assert draft == 1
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(ctx))
    calls, failures, statuses = [], [], {}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response, case, **kwargs):
            calls.append((case.method, case.path))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.body,
                                 response.text[:300]))
            assert response.status_code < 500, failures[-1]

    run_state_machine_as_test(Workflow, settings=hsettings(
        derandomize=True, database=None, deadline=None, max_examples=40,
        stateful_step_count=8, suppress_health_check=list(HealthCheck)))
    assert failures == []
    print(f"stateful: {len(calls)} calls, {len(set(calls))} operations, statuses {statuses}")
    linked = [c for c in calls if "{release_id}" in c[1] or "{delivery_id}" in c[1]]
    assert len(calls) >= 100 and linked, (len(calls), statuses)
    assert any(s < 300 for s in statuses), statuses  # the walk got somewhere
