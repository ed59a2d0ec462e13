"""The console over HTTP (no browser). Every route is walked for every role, and a route
added without a place in the matrix fails the suite; then sessions, CSRF, throttling."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain.access import Op, Principal, Resource, decide
from orchestrator.domain.clock import utcnow
from orchestrator.store import secrets
from orchestrator.usecases import releases, review, users
from orchestrator.usecases.channels import get_channel
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.console import console_app
from tests import fakes
from tests.conftest import PEOPLE, approve_all, drain, release_input

PASSWORD = "console-pass-123"
EXTRA = {"root": ["admin"], "chief": ["author", "reviewer"]}
ROLES_OF = {**PEOPLE, **EXTRA}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NewRelease = Callable[..., int]


@pytest.fixture
def console(ctx: Context, people: dict[str, str], memory_channels: list[str],
            monkeypatch: pytest.MonkeyPatch) -> Context:
    # real argon2, at test strength: ten people sign up per test
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    for name, roles in EXTRA.items():
        with UnitOfWork(ctx) as uow:
            users.add_user(uow, name, roles)
    for name in ROLES_OF:
        with UnitOfWork(ctx) as uow:
            users.set_password(uow, name, PASSWORD, "root")
    return ctx


def app_for(ctx: Context) -> FastAPI:
    return make_app(ctx)


def csrf_of(client: TestClient, path: str = "/console/login") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD, **extra: Any) -> Any:
    data = {"csrf": csrf_of(client), "name": name, "password": password, **extra.pop("data", {})}
    return client.post("/console/login", data=data, follow_redirects=False, **extra)


def signed_in(ctx: Context, name: str, **kwargs: Any) -> tuple[TestClient, str]:
    client = TestClient(app_for(ctx), **kwargs)
    answer = login(client, name)
    assert answer.status_code == 303, answer.text
    return client, csrf_of(client, "/console/")


def rejected_release(ctx: Context, new_release: NewRelease) -> int:
    """A release no POST of the matrix can move on (not in review, not approved)."""
    rid = new_release()
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, rid, "press")
    with UnitOfWork(ctx) as uow:
        review.reject(uow, rid, "reviewer", "请补充依据")
    return rid


# admin (root) is channel admin and people admin: no other room (domain/access.py DUTIES)
PRESS = {"press", "press2", "chief"}
REVIEW = {"reviewer", "secrecy", "leader", "allrounder", "chief"}
CHANNEL_ADMINS = {"admin_ops", "root"}
AUDITORS = {"auditor"}
EVERYONE = set(ROLES_OF)

R = "/{release_id}"
GETS = [
    ("/", EVERYONE), ("/press", PRESS), ("/press/new", PRESS), (f"/press{R}", PRESS),
    (f"/press{R}/edit", PRESS), (f"/press{R}/board.json", PRESS), ("/review", REVIEW),
    (f"/review{R}", REVIEW), ("/channels", CHANNEL_ADMINS), ("/channels/new", CHANNEL_ADMINS),
    ("/channels/{name}/edit", CHANNEL_ADMINS), ("/audit", AUDITORS),
    (f"/audit/release{R}", AUDITORS), ("/audit/export.{fmt}", AUDITORS),
]
# each body is refused or harmless for those allowed, so the walk changes nothing
POSTS = [
    ("/press/preview", PRESS, {}), ("/press/new", PRESS, {}), (f"/press{R}/edit", PRESS, {}),
    (f"/press{R}/submit", PRESS, {}), (f"/press{R}/schedule", PRESS, {"at": "someday"}),
    (f"/press{R}/consent", PRESS, {"accept": "1"}),
    (f"/press{R}/group-remove", PRESS, {"comment": "不再同步"}),
    (f"/review{R}/force", {"leader", "allrounder"}, {"reason": "x"}),
    (f"/review{R}/reschedule", {"leader", "allrounder"}, {"approve": "1"}),
    (f"/review{R}/approve", REVIEW, {}), (f"/review{R}/reject", REVIEW, {}),
    ("/channels/new", CHANNEL_ADMINS, {}),
    ("/channels/{name}/edit", CHANNEL_ADMINS, {"kind": "memory", "config": "{"}),
    ("/channels/{name}/test", CHANNEL_ADMINS, {}),
    ("/channels/{name}/pause", CHANNEL_ADMINS, {"paused": "0"}),
    ("/deliveries/{delivery_id}/resend", CHANNEL_ADMINS, {}),
    ("/deliveries/{delivery_id}/cancel", CHANNEL_ADMINS, {}),
    ("/deliveries/{delivery_id}/mark-published", CHANNEL_ADMINS, {"url": ""}),
    ("/audit/verify", AUDITORS, {}),
]
POST_OPS = {f"/press{R}/submit": Op.SUBMIT, f"/press{R}/edit": Op.EDIT,
            f"/press{R}/schedule": Op.SCHEDULE, f"/review{R}/force": Op.FORCE,
            f"/review{R}/approve": Op.SIGN, f"/review{R}/reject": Op.SIGN,
            f"/review{R}/reschedule": Op.SIGN_RESCHEDULE, f"/press{R}/group-remove": Op.CONSENT}
OUTSIDE_THE_MATRIX = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}


def test_the_matrix_names_every_console_route(ctx: Context) -> None:
    paths = console_app(ctx).openapi()["paths"]  # every route, included routers too
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    walked = {("GET", p) for p, _ in GETS} | {("POST", p) for p, *_ in POSTS}
    assert routes - OUTSIDE_THE_MATRIX == walked


def test_every_role_gets_its_rooms_and_a_403_elsewhere(console: Context, new_release: NewRelease) -> None:
    rid = rejected_release(console, new_release)
    fill = {"release_id": rid, "name": "alpha", "fmt": "csv", "delivery_id": 999999}
    for name in ROLES_OF:
        client, token = signed_in(console, name)
        who = Principal.of(name, ROLES_OF[name], ("root",))
        rejected = Resource("rejected", author="press", unit=("root",))
        for path, allowed in GETS:
            answer = client.get("/console" + path.format(**fill), follow_redirects=False)
            expected = 200 if name in allowed else 403
            if expected == 200 and R in path:  # the release itself: the access policy decides
                expected = 404 if not decide(who, Op.READ, rejected) else (
                    303 if path.endswith("/edit") and not decide(who, Op.EDIT, rejected) else 200)
            assert answer.status_code == expected, (name, path, answer.status_code)
        for path, allowed, body in POSTS:
            answer = client.post("/console" + path.format(**fill), data={"csrf": token, **body},
                                 follow_redirects=False)
            if name in allowed:
                ok = {200, 303, 422}
                op = POST_OPS.get(path)
                verdict = decide(who, op, rejected) if op else None
                if verdict is not None and not verdict and not verdict.not_now and decide(
                        who, Op.HEADER, rejected):
                    ok.add(403)  # not this person's to do (e.g. submit someone else's)
                assert answer.status_code in ok, (name, path, answer.text[:300])
            else:
                assert answer.status_code == 403, (name, path, answer.status_code)
    with UnitOfWork(console) as uow:
        assert releases.get_release(uow.session, rid).state == "rejected"


def test_anyone_not_signed_in_is_sent_to_the_sign_in_form(console: Context) -> None:
    client = TestClient(app_for(console))
    fill = {"release_id": 1, "name": "alpha", "fmt": "csv", "delivery_id": 1}
    for path, _ in GETS:
        answer = client.get("/console" + path.format(**fill), follow_redirects=False)
        if path.endswith(".json"):
            assert answer.status_code == 401
        else:
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/login?next=/console")
    token = csrf_of(client)
    for path, _, body in POSTS:
        answer = client.post("/console" + path.format(**fill), data={"csrf": token, **body})
        assert answer.status_code == 401, path


def test_a_post_without_the_csrf_token_is_refused(console: Context) -> None:
    client, token = signed_in(console, "press")
    form = {"title": "无校验码", "body": "正文", "md_index_number": "1",
            "md_issuing_body": "省政府", "md_disclosure": "主动公开", "channels": ["alpha"]}
    assert client.post("/console/press/new", data=form).status_code == 403
    assert client.post("/console/press/new", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post("/console/logout").status_code == 403
    other, _ = signed_in(console, "press2")  # another session's token is not this one's
    assert other.post("/console/press/new", data={**form, "csrf": token}).status_code == 403
    fresh = TestClient(app_for(console))
    assert fresh.post("/console/login", data={"name": "press", "password": PASSWORD}
                      ).status_code == 403
    with UnitOfWork(console) as uow:
        assert releases.list_releases(uow.session) == []
    assert client.post("/console/press/new", data={**form, "csrf": token},
                       follow_redirects=False).status_code == 303


def test_five_failed_sign_ins_lock_that_user_at_that_address(console: Context) -> None:
    client = TestClient(app_for(console))
    for _ in range(5):
        answer = login(client, "press", "wrong-password")
        assert answer.status_code == 401 and "用户名或密码不正确" in answer.text
    locked = login(client, "press")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "登录失败次数过多" in locked.text
    assert login(client, "auditor").status_code == 303  # another user from the same address


def test_the_session_cookie_is_httponly_lax_and_secure_behind_tls(console: Context) -> None:
    def cookie(client: TestClient, **headers: str) -> str:
        answer = login(client, "press", headers=headers)
        assert answer.status_code == 303
        return answer.headers["set-cookie"].lower()

    plain = cookie(TestClient(app_for(console)))
    assert "httponly" in plain and "samesite=lax" in plain and "path=/console" in plain
    assert "secure" not in plain
    assert "secure" in cookie(TestClient(app_for(console)), **{"X-Forwarded-Proto": "https"})
    assert "secure" in cookie(TestClient(app_for(console), base_url="https://testserver"))


def test_sign_out_a_forged_cookie_and_next_never_leave_the_console(console: Context) -> None:
    client = TestClient(app_for(console))
    answer = login(client, "press", data={"next": "https://evil.example/"})
    assert answer.headers["location"] == "/console/"
    token = csrf_of(client, "/console/")
    assert client.post("/console/logout", data={"csrf": token},
                       follow_redirects=False).status_code == 303
    assert client.get("/console/press", follow_redirects=False).status_code == 303
    auditor, _ = signed_in(console, "auditor")  # a cookie altered by hand is no session
    value = auditor.cookies.get("tongfa_console")
    auditor.cookies.set("tongfa_console", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"),
                        path="/console")
    assert auditor.get("/console/audit", follow_redirects=False).status_code == 303


def test_credentials_are_never_rendered(console: Context, new_release: NewRelease) -> None:
    client, token = signed_in(console, "admin_ops")
    added = client.post("/console/channels/new", follow_redirects=True, data={
        "csrf": token, "name": "gamma", "kind": "memory", "config": '{"account": "gamma"}',
        "credentials": '{"token": "secret-token-alpha"}'})
    assert "渠道 gamma 已保存" in added.text and 'data-channel="gamma"' in added.text
    pages = [client.get(p).text for p in ("/console/channels", "/console/channels/alpha/edit",
                                          "/console/channels/gamma/edit")]
    assert all("secret-token-alpha" not in page for page in pages)
    assert "已保存" in pages[1]
    saved = client.post("/console/channels/alpha/edit", follow_redirects=True, data={
        "csrf": token, "kind": "memory", "config": '{"account": "alpha"}',
        "credentials": '{"token": "brand-new-secret"}'})
    assert saved.status_code == 200 and "凭据已更新" in saved.text
    kept = client.post("/console/channels/alpha/edit", follow_redirects=True, data={
        "csrf": token, "kind": "memory", "config": '{"account": "alpha"}', "credentials": ""})
    refused = client.post("/console/channels/alpha/edit", data={
        "csrf": token, "kind": "memory", "config": '{"account": "alpha"}',
        "credentials": '{"token": "third-secret", "nope": '})
    assert refused.status_code == 422
    auditor, _ = signed_in(console, "auditor")
    exported = auditor.get("/console/audit/export.json").text
    for page in (saved.text, kept.text, refused.text, client.get("/console/channels").text,
                 client.get("/console/channels/alpha/edit").text, exported):
        assert "brand-new-secret" not in page and "third-secret" not in page
    with UnitOfWork(console) as uow:
        stored = get_channel(uow.session, "alpha").credentials_encrypted
        assert secrets.decrypt(console.settings, stored) == {"token": "brand-new-secret"}


def test_compose_preview_submit_review_and_board(console: Context) -> None:
    press, token = signed_in(console, "press")
    form = {"csrf": token, "title": "关于冬季供暖的通知", "summary": "供暖安排。",
            "body": "各市：\n\n请做好**供暖**保障。", "md_index_number": "11440000/2026-00009",
            "md_issuing_body": "省人民政府办公厅", "md_document_number": "某政办发〔2026〕9号",
            "md_disclosure": "主动公开", "channels": ["alpha", "beta"],
            "ov_text__alpha": "供暖通知 " + "很长" * 300}
    shown = press.post("/console/press/preview", data=form).json()
    assert [c["name"] for c in shown["channels"]] == ["alpha", "beta"]
    assert shown["channels"][0]["problems"] and not shown["ok"]  # over alpha's 500 limit
    form["ov_text__alpha"] = "供暖通知"
    shown = press.post("/console/press/preview", data=form).json()
    assert shown["ok"] and "供暖通知" in shown["channels"][0]["document"]
    page = press.post("/console/press/new", data={**form, "then": "submit"})
    rid = int(re.search(r"/console/press/(\d+)$", str(page.url)).group(1))
    assert "审核中" in page.text
    reviewer, rtoken = signed_in(console, "reviewer")
    assert f"/console/review/{rid}" in reviewer.get("/console/review").text
    with UnitOfWork(console) as uow:
        digest = releases.get_release(uow.session, rid).content_hash
    assert digest in reviewer.get(f"/console/review/{rid}").text
    secrecy, stoken = signed_in(console, "secrecy")
    assert f"/console/review/{rid}" not in secrecy.get("/console/review").text  # not yet
    reviewer.post(f"/console/review/{rid}/approve", data={"csrf": rtoken, "comment": "同意"})
    assert f"/console/review/{rid}" in secrecy.get("/console/review").text
    board = press.get(f"/console/press/{rid}/board.json").json()
    assert board["release"]["state"] == "in_review" and board["deliveries"] == []
    blank = secrecy.post(f"/console/review/{rid}/reject", data={"csrf": stoken, "comment": ""})
    assert "意见：a rejection needs a reason" in blank.text and str(blank.url).endswith(f"/{rid}")
    secrecy.post(f"/console/review/{rid}/reject", data={"csrf": stoken, "comment": "数据需核实"})
    shown = press.get(f"/console/press/{rid}").text
    assert "已退回" in shown and "数据需核实" in shown


def test_a_resubmission_shows_what_changed_since_the_last_review(console: Context, new_release: NewRelease) -> None:
    rid = new_release(overrides={"alpha": {"text": "第一版文案"}})
    with UnitOfWork(console) as uow:
        releases.submit(uow, rid, "press")
    reviewer, token = signed_in(console, "reviewer")
    assert "第一版文案" in reviewer.get(f"/console/review/{rid}").text
    reviewer.post(f"/console/review/{rid}/approve", data={"csrf": token})
    with UnitOfWork(console) as uow:
        releases.edit(uow, rid, release_input(overrides={"alpha": {"text": "第二版文案"}}),
                      "press")
    page = reviewer.get(f"/console/review/{rid}").text
    assert "与上一修订" in page and "有改动" in page and "第二版文案" in page
    assert '第<span class="diff_chg">一</span>版文案' in page  # the old text, marked
    assert '第<span class="diff_chg">二</span>版文案' in page


def test_self_approval_is_refused(console: Context, new_release: NewRelease) -> None:
    chief, token = signed_in(console, "chief")
    with UnitOfWork(console) as uow:
        rid = releases.create(uow, release_input(), "chief")
    with UnitOfWork(console) as uow:
        releases.submit(uow, rid, "chief")
    assert f"/console/review/{rid}" not in chief.get("/console/review").text
    page = chief.get(f"/console/review/{rid}").text
    assert "作者本人不能签发" in page and "同意并签署" not in page
    answer = chief.post(f"/console/review/{rid}/approve", data={"csrf": token})
    assert answer.status_code == 403
    with UnitOfWork(console) as uow:
        assert releases.signoffs_view(uow.session, releases.get_release(uow.session, rid)) == []


def test_channel_admin_resends_a_failed_delivery_and_pauses_a_channel(console: Context, new_release: NewRelease) -> None:
    rid = new_release()
    fakes.plan("beta", "stage", "permanent")
    approve_all(console, rid)
    drain(console)
    admin, token = signed_in(console, "admin_ops")
    page = admin.get("/console/channels").text
    match = re.search(r"/console/deliveries/(\d+)/resend", page)
    assert match, page
    answer = admin.post(match.group(0), data={"csrf": token})
    assert "已重新排队发送" in answer.text
    drain(console)
    with UnitOfWork(console) as uow:
        assert releases.get_release(uow.session, rid).state == "published"
    admin.post("/console/channels/beta/pause", data={"csrf": token, "paused": "1"})
    assert "已暂停" in admin.get("/console/channels").text
    tested = admin.post("/console/channels/alpha/test", data={"csrf": token}).text
    assert "连接测试通过" in tested
    admin.post("/console/channels/beta/pause", data={"csrf": token, "paused": "0"})
    other = new_release()
    fakes.plan("alpha", "publish", "permanent")
    approve_all(console, other)
    drain(console)
    cancel = re.search(r"/console/deliveries/(\d+)/cancel", admin.get("/console/channels").text)
    assert "理由" in admin.post(cancel.group(0), data={"csrf": token}).text  # a reason is needed
    assert "已取消" in admin.post(cancel.group(0), data={"csrf": token,
                                                      "reason": "该栏目已停办"}).text


def test_auditor_searches_exports_and_verifies(console: Context, new_release: NewRelease) -> None:
    rid = new_release()
    approve_all(console, rid)
    drain(console)
    auditor, token = signed_in(console, "auditor")
    page = auditor.get(f"/console/audit?release={rid}&action=review.signed").text
    assert page.count("review.signed") >= 3 and "leader" in page
    timeline = auditor.get(f"/console/audit/release/{rid}").text
    assert "release.created" in timeline and "release.approved" in timeline
    rows = list(csv.reader(io.StringIO(auditor.get(
        f"/console/audit/export.csv?release={rid}").text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["id", "at", "actor", "action"] and len(rows) > 5
    assert {r[6] for r in rows[1:]} == {str(rid)}
    events = json.loads(auditor.get(f"/console/audit/export.json?release={rid}").text)
    assert [e["id"] for e in events] == [int(r[0]) for r in rows[1:]]
    from orchestrator.usecases import transparency

    transparency.checkpoint(console)  # as the scheduler does every second: now in the log
    from orchestrator.usecases import transparency

    transparency.checkpoint(console)  # as the scheduler does every second: now in the log
    verdict = auditor.post("/console/audit/verify", data={"csrf": token}).text
    assert "审计链完整" in verdict
    with console.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_event SET actor = 'someone_else' WHERE id = 3")
    verdict = auditor.post("/console/audit/verify", data={"csrf": token}).text
    assert "审计链异常：第 3 条记录起不可信" in verdict
    bad = auditor.get("/console/audit?since=yesterday")  # the form again, naming the field
    assert bad.status_code == 422 and "起始时间" in bad.text


def test_a_leader_forces_the_go_live_without_a_channel_that_failed(console: Context, new_release: NewRelease) -> None:
    rid = new_release()
    fakes.plan("beta", "stage", "permanent")
    approve_all(console, rid)
    drain(console)
    press, _ = signed_in(console, "press")
    assert "渠道 beta 准备失败" in press.get(f"/console/press/{rid}").text
    reviewer, _ = signed_in(console, "reviewer")
    assert "强制上线" not in reviewer.get(f"/console/review/{rid}").text
    assert "上线受阻" not in reviewer.get("/console/review").text
    leader, token = signed_in(console, "leader")
    assert "渠道 beta 准备失败" in leader.get(f"/console/review/{rid}").text
    queue = leader.get("/console/review").text  # the approver's queue says why, too
    assert "上线受阻" in queue and f"/console/review/{rid}#force" in queue
    refused = leader.post(f"/console/review/{rid}/force", data={"csrf": token, "reason": " "})
    assert "理由" in refused.text
    done = leader.post(f"/console/review/{rid}/force", data={"csrf": token,
                                                             "reason": "微博账号故障，先发网站"})
    assert "已强制上线；未上线的渠道：beta" in done.text
    drain(console)
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 0]
    board = press.get(f"/console/press/{rid}/board.json").json()
    assert {d["channel"]: d["state"] for d in board["deliveries"]} == {
        "alpha": "published", "beta": "cancelled"}


def test_scheduling_from_the_release_page(console: Context, new_release: NewRelease) -> None:
    rid = new_release()
    approve_all(console, rid)
    press, token = signed_in(console, "press")
    empty = press.post(f"/console/press/{rid}/schedule", data={"csrf": token, "set": "1"})
    assert "请填写上线时间" in empty.text
    # a day within the go-live horizon (go_live_horizon_days), at 09:00 Beijing time
    day = (utcnow() + dt.timedelta(days=30)).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    later = press.post(f"/console/press/{rid}/schedule",
                       data={"csrf": token, "set": "1", "at": f"{day}T09:00"})
    # after sign-off the time is signed too: the author asks, a leader signs
    assert f"已申请改为定于 {day} 09:00（北京时间）上线" in later.text
    assert "待领导签发人签署" in later.text
    leader, leader_token = signed_in(console, "leader")
    page = leader.get(f"/console/review/{rid}").text
    assert "签署改期" in page and f"{day} 09:00" in page
    signed = leader.post(f"/console/review/{rid}/reschedule",
                         data={"csrf": leader_token, "approve": "1"})
    assert "改期申请已签署生效" in signed.text
    with UnitOfWork(console) as uow:
        shown = releases.get_release(uow.session, rid)
    assert shown.go_live_at.isoformat().startswith(f"{day}T01:00")  # 09:00 Beijing = 01:00 UTC
    assert shown.state == "scheduled"
    now = press.post(f"/console/press/{rid}/schedule", data={"csrf": token, "now": "1"})
    assert "各渠道就绪后立即同时上线" in now.text
    leader.post(f"/console/review/{rid}/reschedule", data={"csrf": leader_token, "approve": "1"})
    drain(console)
    with UnitOfWork(console) as uow:
        assert releases.get_release(uow.session, rid).state == "published"


def test_channel_admin_decides_a_delivery_the_machine_could_not(console: Context, new_release: NewRelease) -> None:
    from tests.test_reconciliation import run_until_quiet

    fakes.always("alpha", "publish", "unknown_not_posted")
    rid = new_release()
    approve_all(console, rid)
    run_until_quiet(console)
    admin, token = signed_in(console, "admin_ops")
    page = admin.get("/console/channels").text
    match = re.search(r"/console/deliveries/(\d+)/mark-published", page)
    assert match and "待人工决定的投递" in page and "20017" in page, page
    refused = admin.post(match.group(0), data={"csrf": token, "url": "javascript:alert(1)"})
    assert "链接" in refused.text and "应为 https 链接" in refused.text
    done = admin.post(match.group(0), data={"csrf": token, "url": "https://weibo.com/1/AbC",
                                            "note": "后台可见"})
    assert "已标记为已发布" in done.text and "没有待决定的投递" in done.text
    with UnitOfWork(console) as uow:
        assert releases.get_release(uow.session, rid).state == "published"
