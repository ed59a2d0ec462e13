"""People and keys: API tokens that can be listed, revoked and expire; roles taken away;
people disabled; console sessions that end at sign-out and at a password change; a
sign-in throttle that counts per account and per address, shared by every API process,
and that believes a proxy's X-Forwarded-For only when a setting names the proxy."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from orchestrator.domain import clock
from orchestrator.domain.access import Op, may_ever
from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound
from orchestrator.settings import Settings
from orchestrator.usecases import access, audit, releases, review, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import release_input
from tests.test_console import app_for, console, csrf_of, login, signed_in

__all__ = ["console"]  # the fixture, shared with test_console

COOKIE = "tongfa_console"
DAY = 86400


def api(ctx: Context, token: str) -> int:
    client = TestClient(app_for(ctx))
    return client.get("/api/v1/releases", headers={"Authorization": f"Bearer {token}"}).status_code


def events(ctx: Context, action: str | None = None) -> list[dict[str, Any]]:
    return [e for e in audit.export(ctx.engine) if action is None or e["action"] == action]


# ------------------------------------------------------------------ console sessions


def test_a_copied_cookie_is_no_session_after_sign_out(console: Context) -> None:
    client, token = signed_in(console, "auditor")
    copied = client.cookies.get(COOKIE)
    assert client.post("/console/logout", data={"csrf": token},
                       follow_redirects=False).status_code == 303
    thief = TestClient(app_for(console))
    thief.cookies.set(COOKIE, copied, path="/console")
    assert thief.get("/console/audit", follow_redirects=False).status_code == 303
    again, _ = signed_in(console, "auditor")  # signing in again gives a working session
    assert again.get("/console/audit", follow_redirects=False).status_code == 200


def test_a_password_change_ends_every_console_session(console: Context) -> None:
    office, _ = signed_in(console, "auditor")
    home, _ = signed_in(console, "auditor")  # the same person on a second computer
    with UnitOfWork(console) as uow:
        users.set_password(uow, "auditor", "a-brand-new-password", "root")
    for client in (office, home):
        assert client.get("/console/audit", follow_redirects=False).status_code == 303
    fresh = TestClient(app_for(console))
    assert login(fresh, "auditor", "a-brand-new-password").status_code == 303
    assert fresh.get("/console/audit", follow_redirects=False).status_code == 200


def test_a_stale_cookie_cannot_sign_out_the_current_session(console: Context) -> None:
    old, old_token = signed_in(console, "auditor")
    old_cookie = old.cookies.get(COOKIE)
    old.post("/console/logout", data={"csrf": old_token})
    current, _ = signed_in(console, "auditor")
    replay = TestClient(app_for(console))
    replay.cookies.set(COOKIE, old_cookie, path="/console")
    replay.post("/console/logout", data={"csrf": old_token})
    assert current.get("/console/audit", follow_redirects=False).status_code == 200


# ------------------------------------------------------------------ disabling people


def test_a_disabled_person_is_shut_out_of_api_console_and_sign_off(
        console: Context, people: dict[str, str], new_release: Any) -> None:
    rid = new_release()
    with UnitOfWork(console) as uow:
        releases.submit(uow, rid, "press")
    browser, _ = signed_in(console, "reviewer")
    assert api(console, people["reviewer"]) == 200
    with UnitOfWork(console) as uow:
        users.set_disabled(uow, "reviewer", True, actor="root")
    assert api(console, people["reviewer"]) == 401
    assert browser.get("/console/review", follow_redirects=False).status_code == 303
    assert login(TestClient(app_for(console)), "reviewer").status_code == 401
    with UnitOfWork(console) as uow, pytest.raises(Forbidden, match="disabled"):
        review.approve(uow, rid, "reviewer")
    with UnitOfWork(console) as uow:
        users.set_disabled(uow, "press", True, actor="root")
    with UnitOfWork(console) as uow, pytest.raises(Forbidden, match="disabled"):
        releases.create(uow, release_input(), "press")

    with UnitOfWork(console) as uow:
        users.set_disabled(uow, "reviewer", False, actor="root")
    assert api(console, people["reviewer"]) == 200
    assert login(TestClient(app_for(console)), "reviewer").status_code == 303
    assert browser.get("/console/review", follow_redirects=False).status_code == 303  # stays ended
    with UnitOfWork(console) as uow:
        assert review.approve(uow, rid, "reviewer") == "in_review"
    shown = [(e["subject_id"], e["after"]) for e in events(console)
             if e["action"] in ("user.disabled", "user.enabled")]
    assert shown == [("reviewer", {"disabled": True}), ("press", {"disabled": True}),
                     ("reviewer", {"disabled": False})]
    assert [u.name for u in _listed(console) if u.disabled] == ["press"]


def _listed(ctx: Context) -> list[Any]:
    with UnitOfWork(ctx) as uow:
        return users.list_users(uow.session)


# ------------------------------------------------------------------ roles


def test_roles_can_be_removed_and_set(ctx: Context, people: dict[str, str]) -> None:
    with UnitOfWork(ctx) as uow:
        assert users.change_roles(uow, "allrounder", "root", remove=["approver"]) == [
            "reviewer", "secrecy"]
    with UnitOfWork(ctx) as uow:  # the policy sees the roles held now
        assert not may_ever(access.principal(uow.session, "allrounder"), Op.FORCE)
    with UnitOfWork(ctx) as uow:
        assert users.change_roles(uow, "allrounder", "root", add=["auditor"],
                                  remove=["secrecy"]) == ["auditor", "reviewer"]
    with UnitOfWork(ctx) as uow:
        assert users.change_roles(uow, "allrounder", "root", exact=["approver"]) == ["approver"]
    for bad in ({"remove": ["approver"]}, {"exact": []}, {"add": ["king"]},
                {"exact": ["approver"], "add": ["auditor"]}):
        with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="role"):
            users.change_roles(uow, "allrounder", "root", **bad)
    with UnitOfWork(ctx) as uow, pytest.raises(NotFound):
        users.change_roles(uow, "nobody", "root", add=["auditor"])
    changed = events(ctx, "user.roles_changed")
    assert [(e["before"], e["after"]) for e in changed] == [
        ({"roles": ["approver", "reviewer", "secrecy"]}, {"roles": ["reviewer", "secrecy"]}),
        ({"roles": ["reviewer", "secrecy"]}, {"roles": ["auditor", "reviewer"]}),
        ({"roles": ["auditor", "reviewer"]}, {"roles": ["approver"]})]


# ------------------------------------------------------------------ API tokens


def test_tokens_are_named_by_a_prefix_revoked_and_expire(ctx: Context,
                                                         people: dict[str, str]) -> None:
    first = people["press"]
    with UnitOfWork(ctx) as uow:
        short = users.new_token(uow, "press", "root", label="CMS 桥接", expires_days=1)
    with UnitOfWork(ctx) as uow:
        listed = users.list_tokens(uow.session, "press")
    assert [t["label"] for t in listed] == ["", "CMS 桥接"]
    assert all(t["state"] == "active" and t["last_used_at"] is None for t in listed)
    assert first.startswith(listed[0]["id"]) and short.startswith(listed[1]["id"])
    assert len(listed[0]["id"]) < 16 and first not in json.dumps(listed)
    created = dt_of(listed[0]["created_at"])
    assert (dt_of(listed[0]["expires_at"]) - created).days == ctx.settings.api_token_days == 90

    assert api(ctx, short) == 200
    with UnitOfWork(ctx) as uow:
        assert users.list_tokens(uow.session, "press")[1]["last_used_at"] is not None
    clock.travel(DAY + 1)
    assert (api(ctx, short), api(ctx, first)) == (401, 200)
    with UnitOfWork(ctx) as uow:
        assert users.list_tokens(uow.session, "press")[1]["state"] == "expired"

    with UnitOfWork(ctx) as uow:
        users.revoke_token(uow, listed[0]["id"], "root")
    assert api(ctx, first) == 401
    with UnitOfWork(ctx) as uow:
        assert [t["state"] for t in users.list_tokens(uow.session, "press")] == [
            "revoked", "expired"]
    with UnitOfWork(ctx) as uow, pytest.raises(NotFound):
        users.revoke_token(uow, "tf_nosuchtok", "root")
    for bad in (0, -1, 100_000):
        with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="expires_days"):
            users.new_token(uow, "press", "root", expires_days=bad)

    with UnitOfWork(ctx) as uow:
        later = users.new_token(uow, "leader", "root")
    clock.travel(90 * DAY + 1)
    assert api(ctx, later) == 401  # the default expiry, from the settings

    trail = json.dumps(events(ctx), ensure_ascii=False)
    for token in (first, short, later, *people.values()):
        assert token not in trail
    assert [e["subject_id"] for e in events(ctx, "token.revoked")] == [listed[0]["id"]]
    made = [e for e in events(ctx, "token.created") if e["after"]["user"] == "press"]
    assert [e["subject_id"] for e in made] == [t["id"] for t in listed]
    with UnitOfWork(ctx) as uow:
        assert audit.verify(uow.session)["ok"]


def test_the_default_token_lifetime_is_a_setting(tmp_path: Any) -> None:
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}",
                        api_token_days=7, _env_file=None)
    from orchestrator.store.db import engine_for

    ctx = Context(engine_for(settings.resolved_database_url), settings)
    with UnitOfWork(ctx) as uow:
        token = users.add_user(uow, "press", ["author"])
    clock.travel(7 * DAY - 60)
    assert api(ctx, token) == 200
    clock.travel(120)
    assert api(ctx, token) == 401
    with pytest.raises(ValueError):
        Settings(api_token_days=0, _env_file=None)


def dt_of(value: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(value)


# ------------------------------------------------------------------ the sign-in throttle


def client_at(ctx: Context, address: str) -> TestClient:
    return TestClient(app_for(ctx), client=(address, 50000))


def test_spraying_one_password_over_many_accounts_from_one_address_is_throttled(
        console: Context) -> None:
    sprayer = client_at(console, "198.51.100.7")
    for n in range(users.LOGIN_LIMITS.per_address):
        assert login(sprayer, f"person{n}", "Spring2026!").status_code == 401
    refused = login(sprayer, "press")
    assert refused.status_code == 429 and "登录失败次数过多" in refused.text
    assert login(client_at(console, "198.51.100.8"), "press").status_code == 303


def test_guesses_at_one_account_from_many_addresses_are_throttled(console: Context) -> None:
    for n in range(users.LOGIN_LIMITS.per_account):
        assert login(client_at(console, f"198.51.100.{n + 1}"), "leader", "guess").status_code == 401
    assert login(client_at(console, "192.0.2.1"), "leader").status_code == 429
    assert login(client_at(console, "192.0.2.1"), "auditor").status_code == 303


def test_the_throttle_forgets_after_its_window_on_the_injected_clock(console: Context) -> None:
    client = client_at(console, "198.51.100.7")
    for _ in range(users.LOGIN_LIMITS.per_account_and_address):
        login(client, "press", "wrong-password")
    locked = login(client, "press")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= users.LOGIN_LIMITS.window_seconds
    clock.travel(users.LOGIN_LIMITS.window_seconds + 1)
    assert login(client, "press").status_code == 303


def test_the_throttle_holds_across_api_processes(console: Context) -> None:
    """Each app below has its own memory, as each uvicorn worker process has: only the
    shared database sees all the failures."""
    one, two = client_at(console, "198.51.100.7"), client_at(console, "198.51.100.7")
    for n in range(users.LOGIN_LIMITS.per_account_and_address):
        login(one if n % 2 else two, "press", "wrong-password")
    assert login(one, "press").status_code == 429
    assert login(two, "press").status_code == 429


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(console: Context) -> None:
    client = client_at(console, "203.0.113.9")
    for n in range(users.LOGIN_LIMITS.per_account_and_address):
        login(client, "press", "wrong-password", headers={"X-Forwarded-For": f"192.0.2.{n}"})
    assert login(client, "press", headers={"X-Forwarded-For": "192.0.2.200"}).status_code == 429


@pytest.fixture
def behind_proxy(console: Context) -> Context:
    settings = console.settings.model_copy(update={"trusted_proxies": ("10.0.0.0/8",)})
    return Context(console.engine, settings, console.queue)


def test_a_trusted_proxys_forwarded_for_is_honoured(behind_proxy: Context) -> None:
    proxy = client_at(behind_proxy, "10.1.2.3")
    for _ in range(users.LOGIN_LIMITS.per_account_and_address):
        login(proxy, "press", "wrong-password", headers={"X-Forwarded-For": "198.51.100.1"})
    # the client put its own X-Forwarded-For in front; the proxy appended the real address
    spoof = {"X-Forwarded-For": "192.0.2.99, 198.51.100.1"}
    assert login(proxy, "press", headers=spoof).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.2"}  # another person behind the same proxy
    assert login(proxy, "press", headers=other).status_code == 303


def test_the_served_api_ignores_a_forwarded_for_from_loopback(console: Context) -> None:
    """As `tongfa serve` runs it: uvicorn itself must not trust X-Forwarded-For from
    127.0.0.1 (its default), or any local client chooses its own address."""
    import httpx

    from orchestrator.cli.stack import api_server_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(api_server_config(app_for(console), console.settings, port=port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(users.LOGIN_LIMITS.per_account_and_address + 1):
                answer = client.post("/console/login", data={
                    "csrf": csrf_of(client), "name": "press", "password": "wrong-password"},
                    headers={"X-Forwarded-For": f"192.0.2.{n}"})
            assert answer.status_code == 429
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ------------------------------------------------------------------ where an action came from


def test_api_and_console_actions_say_where_they_came_from(console: Context,
                                                          people: dict[str, str]) -> None:
    client = TestClient(app_for(console))
    made = client.post("/api/v1/releases", json=json.loads(release_input().model_dump_json()),
                       headers={"Authorization": f"Bearer {people['press']}"})
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    press, token = signed_in(console, "press")
    press.post(f"/console/press/{rid}/submit", data={"csrf": token})
    by_action = {e["action"]: e for e in events(console) if e["release_id"] == rid}
    assert by_action["release.created"]["detail"] == {"via": "api"}
    assert by_action["release.submitted"]["detail"]["via"] == "console"
    with UnitOfWork(console) as uow:  # a use case called directly (a worker) adds nothing
        users.set_disabled(uow, "auditor", True, actor="root")
    assert events(console, "user.disabled")[-1]["detail"] is None
    with UnitOfWork(console) as uow:
        assert audit.verify(uow.session)["ok"]



@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_tokens_made_before_the_upgrade_get_a_name_and_an_expiry(backend: str, tmp_path: Any) -> None:
    from contextlib import nullcontext

    from sqlalchemy import text

    from orchestrator.store.db import make_engine, upgrade
    from tests.services import fresh_postgres_database

    where = (nullcontext(f"sqlite:///{tmp_path / 'old.db'}") if backend == "sqlite"
             else fresh_postgres_database())
    with where as url:
        upgrade(url, "0008")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO \"user\" (id, name, display_name, roles, password_hash,"
                              " created_at) VALUES (1, 'press', '', '[\"author\"]', '', :t)"),
                         {"t": clock.utcnow()})
            for n in (1, 2):
                conn.execute(text("INSERT INTO apitoken (id, user_id, token_hash, created_at) "
                                  "VALUES (:n, 1, :h, :t)"), {"n": n, "h": f"{n:064x}",
                                                                "t": clock.utcnow()})
        upgrade(url)
        from sqlmodel import Session

        with Session(engine) as session:
            listed = users.list_tokens(session, "press")
            assert not users.get_user(session, "press").disabled
        engine.dispose()
    assert [t["id"] for t in listed] == ["legacy-1", "legacy-2"]
    assert all(t["state"] == "active" for t in listed)
    assert 89 <= (dt_of(listed[0]["expires_at"]) - clock.utcnow()).days <= 90
