"""Who may read and change what: the API and the console obey the one policy function
(orchestrator/domain/access.py), and docs/security.md is that function's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.api.app import create_app
from orchestrator.domain.access import Op, Principal, Resource, decide
from orchestrator.usecases import releases, review, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import PEOPLE, approve_all, drain, release_input
from tests.test_console import PASSWORD, ROLES_OF, console, signed_in  # noqa: F401

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


@pytest.fixture
def api(ctx: Context, people: dict[str, str]) -> Any:
    client = TestClient(create_app(ctx))
    client.as_ = lambda who: {"Authorization": f"Bearer {people[who]}"}
    return client


def _draft(ctx: Context) -> int:
    with UnitOfWork(ctx) as uow:
        return releases.create(uow, release_input(title="未提交的草稿"), "press")


# ------------------------------------------------------------------ drafts are their authors'


def test_a_draft_is_read_by_its_authors_and_auditors_only_over_the_api(ctx, api, memory_channels):
    rid = _draft(ctx)
    for name in PEOPLE:
        allowed = name in ("press", "auditor")
        for path in (f"/api/v1/releases/{rid}", f"/api/v1/releases/{rid}/preview",
                     f"/api/v1/releases/{rid}/checks", f"/api/v1/releases/{rid}/deliveries"):
            status = api.get(path, headers=api.as_(name)).status_code
            assert status == (200 if allowed else 404), (name, path, status)
        listed = [r["id"] for r in api.get("/api/v1/releases", headers=api.as_(name)).json()]
        assert (rid in listed) == allowed, name


def test_a_draft_is_read_by_its_authors_only_in_the_console(console, new_release):
    rid = _draft(console)
    for name in ROLES_OF:
        client, _ = signed_in(console, name)
        listed = client.get("/console/press").text
        assert ("未提交的草稿" in listed) == (name == "press"), name
        for path in (f"/console/press/{rid}", f"/console/press/{rid}/board.json",
                     f"/console/press/{rid}/edit", f"/console/review/{rid}",
                     f"/console/audit/release/{rid}"):
            answer = client.get(path, follow_redirects=False)
            seen = answer.status_code == 200
            expected = name == "press" and "review" not in path if "audit" not in path else (
                name == "auditor")
            assert seen == expected, (name, path, answer.status_code)
            if not seen:
                assert "未提交的草稿" not in answer.text
