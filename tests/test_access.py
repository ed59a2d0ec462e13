"""Who may read and change what: the API and the console obey the one policy function
(orchestrator/domain/access.py), and docs/security.md is that function's table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain.access import (
    WRITE_DUTIES,
    Duty,
    Op,
    Principal,
    Resource,
    decide,
    has_duty,
    require_duty,
)
from orchestrator.domain.errors import Forbidden
from orchestrator.usecases import releases
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.auth import rooms
from tests.conftest import PEOPLE, approve_all, drain, release_input
from tests.test_console import PASSWORD, ROLES_OF, console, signed_in  # noqa: F401


def _days_ahead(days: int) -> str:
    """A go-live time within go_live_horizon_days, at 09:00 Beijing time."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    day = (dt.datetime.now(beijing) + dt.timedelta(days=days)).date()
    return f"{day.isoformat()}T09:00:00+08:00"

ROOT = ("root",)  # the one unit of a single-unit installation (migration 0015)
DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


@pytest.fixture
def api(ctx: Context, people: dict[str, str]) -> Any:
    client = TestClient(make_app(ctx))
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


def test_a_draft_is_read_by_its_authors_only_in_the_console(console, new_release):  # noqa: F811
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


# ------------------------------------------------------------------ the one table


def test_the_documented_matrix_is_the_policy_function():
    from orchestrator.domain.access import markdown_matrix

    text = DOC.read_text(encoding="utf-8")
    begin = text.index("-->", text.index("<!-- access-matrix:begin")) + 4
    end = text.index("<!-- access-matrix:end -->")
    assert text[begin:end] == markdown_matrix(), (
        "docs/security.md is stale: regenerate it with python -m orchestrator.domain.access")


# ------------------------------------------------------------------ every entry point obeys it

PHASES = ("draft", "in_review", "scheduled", "published")


@pytest.fixture
def phases(ctx, people, memory_channels) -> dict[str, int]:
    """One release of press's in each phase (plus a joiner asking into its group)."""
    made = {}
    for phase in PHASES:
        extra = {"go_live_at": _days_ahead(30)} if phase == "scheduled" else {}
        with UnitOfWork(ctx) as uow:
            made[phase] = releases.create(uow, release_input(title=f"稿件-{phase}", **extra),
                                          "press")
        if phase == "in_review":
            with UnitOfWork(ctx) as uow:
                releases.submit(uow, made[phase], "press")
        elif phase != "draft":
            approve_all(ctx, made[phase])
    drain(ctx)
    return made


def _facts(ctx, rid) -> Resource:
    from orchestrator.usecases import access

    with UnitOfWork(ctx) as uow:
        return access.resource(uow.session, releases.get_release(uow.session, rid))


def _expected(who: Principal, op: Op, facts: Resource) -> set[int]:
    """The answers the policy allows for one call: 2xx, or 404/403/409 as `require` maps."""
    verdict = decide(who, op, facts)
    if verdict:
        return {200, 201}
    if not decide(who, Op.HEADER, facts):
        return {404}
    return {409} if verdict.not_now else {403}


READ_CALLS = {Op.HEADER: "/api/v1/releases/{id}", Op.PREVIEW: "/api/v1/releases/{id}/preview",
              Op.CHECKS: "/api/v1/releases/{id}/checks",
              Op.DELIVERIES: "/api/v1/releases/{id}/deliveries"}
# (op, method, path, body): each refused call must change nothing
WRITE_CALLS = [
    (Op.EDIT, "put", "/api/v1/releases/{id}", None),
    (Op.SUBMIT, "post", "/api/v1/releases/{id}/submit", {}),
    (Op.SCHEDULE, "post", "/api/v1/releases/{id}/schedule", {"at": _days_ahead(31)}),
    (Op.HOLD, "post", "/api/v1/releases/{id}/hold", {}),
    (Op.SIGN, "post", "/api/v1/releases/{id}/approve", {}),
    (Op.SIGN, "post", "/api/v1/releases/{id}/reject", {"comment": "不同意"}),
    (Op.SIGN_RESCHEDULE, "post", "/api/v1/releases/{id}/reschedule", {"approve": True}),
    (Op.FORCE, "post", "/api/v1/releases/{id}/force-go-live", {"reason": "测试"}),
    (Op.WITHDRAW, "post", "/api/v1/releases/{id}/withdraw", {"reason": "测试"}),
    (Op.CONSENT, "post", "/api/v1/releases/{id}/group-remove", {"comment": "移出"}),
]


def test_the_api_answers_every_read_as_the_policy_says(ctx, api, phases):
    for name, roles in PEOPLE.items():
        who = Principal.of(name, roles, ROOT)
        listed = {r["id"]: r for r in api.get("/api/v1/releases", headers=api.as_(name)).json()}
        for phase, rid in phases.items():
            facts = _facts(ctx, rid)
            assert (rid in listed) == bool(decide(who, Op.HEADER, facts)), (name, phase)
            if rid in listed:  # in full only for those who read it; else the header alone
                assert ("metadata" in listed[rid]) == bool(decide(who, Op.READ, facts))
            for op, path in READ_CALLS.items():
                status = api.get(path.format(id=rid), headers=api.as_(name)).status_code
                assert status in _expected(who, op, facts), (name, phase, op, status)


def test_the_api_refuses_every_write_the_policy_refuses(ctx, api, phases):
    body = release_input(title="改写").model_dump(mode="json")
    for name, roles in PEOPLE.items():
        who = Principal.of(name, roles, ROOT)
        for phase, rid in phases.items():
            facts = _facts(ctx, rid)
            for op, method, path, payload in WRITE_CALLS:
                if decide(who, op, facts):
                    continue  # allowed: exercised for real in test_gate/test_review/test_golive
                answer = getattr(api, method)(path.format(id=rid), headers=api.as_(name),
                                              json=body if payload is None else payload)
                assert answer.status_code in _expected(who, op, facts), (
                    name, phase, op, answer.status_code, answer.text[:200])
    with UnitOfWork(ctx) as uow:  # nothing was changed by any refused call
        states = {p: releases.get_release(uow.session, rid).state for p, rid in phases.items()}
    assert states == dict(zip(PHASES, PHASES, strict=True))


CONSOLE_PAGES = {"/console/press/{id}": ("press", Op.READ),
                 "/console/press/{id}/board.json": ("press", Op.READ),
                 "/console/review/{id}": ("review", Op.READ),
                 "/console/audit/release/{id}": ("audit", Op.HEADER)}
CONSOLE_POSTS = [(Op.SUBMIT, "/console/press/{id}/submit", {}),
                 (Op.SCHEDULE, "/console/press/{id}/schedule", {"now": "1"}),
                 (Op.SIGN, "/console/review/{id}/approve", {}),
                 (Op.SIGN_RESCHEDULE, "/console/review/{id}/reschedule", {"approve": "1"}),
                 (Op.FORCE, "/console/review/{id}/force", {"reason": "测试"}),
                 (Op.CONSENT, "/console/press/{id}/group-remove", {"comment": "移出"})]


def test_the_console_answers_as_the_policy_says(console, phases):  # noqa: F811
    for name in ROLES_OF:
        who = Principal.of(name, ROLES_OF[name], ROOT)
        client, token = signed_in(console, name)
        for phase, rid in phases.items():
            facts = _facts(console, rid)
            for path, (room, op) in CONSOLE_PAGES.items():
                answer = client.get(path.format(id=rid), follow_redirects=False)
                if not rooms(who)[room]:  # who enters a room is the policy's too
                    assert answer.status_code == 403, (name, path)  # not their room
                    continue
                assert answer.status_code in _expected(who, op, facts) - {201}, (
                    name, phase, path, answer.status_code)
            for op, path, data in CONSOLE_POSTS:
                if decide(who, op, facts):
                    continue
                answer = client.post(path.format(id=rid), data={"csrf": token, **data},
                                     follow_redirects=False)
                # a refusal by the rules is a 403 page; not found or not now is flashed
                expected = _expected(who, op, facts)
                assert answer.status_code in ({403} if expected == {403} else {303, 403}), (
                    name, phase, path, answer.status_code)
    with UnitOfWork(console) as uow:
        states = {p: releases.get_release(uow.session, rid).state for p, rid in phases.items()}
    assert states == dict(zip(PHASES, PHASES, strict=True))


# ------------------------------------------------------------------ duties (not one release)

DUTY_CALLS = [  # (duty, method, path, body); every call is harmless when allowed
    (Duty.CHANNELS, "put", "/api/v1/channels/alpha",
     {"kind": "memory", "config": {"account": "alpha", "retry": {"base_seconds": 0.0}}}),
    (Duty.CHANNELS, "post", "/api/v1/channels/alpha/test", None),
    (Duty.CHANNELS, "post", "/api/v1/channels/alpha/pause", None),
    (Duty.CHANNELS, "post", "/api/v1/channels/alpha/resume", None),
    (Duty.AUDIT, "get", "/api/v1/audit", None),
    (Duty.AUDIT, "get", "/api/v1/attempts", None),
    (Duty.AUDIT, "get", "/api/v1/audit/verify", None),
    (Duty.AUDIT, "get", "/api/v1/audit/export", None),
    (Duty.ALERTS, "get", "/api/v1/alerts", None),
    (Duty.REPORTS, "get", "/api/v1/reports/assessment?quarter=2026Q4", None),
]


def test_every_administrative_call_asks_the_one_policy(ctx, api, memory_channels):
    from orchestrator.usecases import users

    with UnitOfWork(ctx) as uow:
        root = users.add_user(uow, "root", ["admin"])
    tokens = {**{n: api.as_(n) for n in PEOPLE}, "root": {"Authorization": f"Bearer {root}"}}
    roles = {**PEOPLE, "root": ["admin"]}
    for name, headers in tokens.items():
        who = Principal.of(name, roles[name], ROOT)
        for duty, method, path, body in DUTY_CALLS:
            kwargs = {"json": body} if body is not None else {}
            answer = getattr(api, method)(path, headers=headers, **kwargs)
            allowed = has_duty(who, duty)
            assert (answer.status_code == 403) == (not allowed), (
                name, path, answer.status_code, answer.text[:200])
    # admin is the two administrative duties and nothing else; the auditor writes nothing
    admin, auditor = Principal.of("root", ["admin"]), Principal.of("a", ["auditor"])
    assert {d for d in Duty if has_duty(admin, d)} >= {Duty.CHANNELS, Duty.PEOPLE}
    assert not has_duty(admin, Duty.AUDIT) and not has_duty(admin, Duty.REPORTS)
    assert not any(has_duty(auditor, d) for d in WRITE_DUTIES)
    with pytest.raises(Forbidden, match="people"):
        require_duty(Principal.of("ops", ["channel_admin"]), Duty.PEOPLE)
    assert not hasattr(users, "require_role"), "one policy: role checks go through access.py"
