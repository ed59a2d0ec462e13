"""Input that cannot break outputs: refused at create/edit with the field named (422 over HTTP).

Each case here once published (and broke the Atom feed, the HTML or the e-mail header) or
answered 500; see issue 12.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain import clock
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import parse_release
from orchestrator.settings import Settings
from orchestrator.usecases import golive, releases
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import RecordingQueue, approve_all, release_input

META = {"index_number": "11440000/2026-00001", "issuing_body": "省人民政府办公厅",
        "disclosure": "主动公开"}


def problems_of(**change) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as err:
        release_input(**change)
    return err.value.problems


# ------------------------------------------------------------------ characters


@pytest.mark.parametrize(("change", "field"), [
    ({"title": "关于\x0b冬季安全生产"}, "title"),
    ({"title": "标题\r\nBcc: evil@example.com"}, "title"),
    ({"title": "标题\n第二行"}, "title"),
    ({"title": "标题\u2028第二行"}, "title"),
    ({"title": "标题\x85"}, "title"),
    ({"title": "标题\x9b31m"}, "title"),
    ({"title": "标题\ufffe"}, "title"),
    ({"title": "标题\ud800"}, "title"),
    ({"summary": "摘要\r第二行"}, "summary"),
    ({"summary": "摘要\u2029"}, "summary"),
    ({"column": "新闻\n发布"}, "column"),
    ({"group": "g\r1"}, "group"),
    ({"metadata": {**META, "issuing_body": "办公厅\n伪造"}}, "metadata.issuing_body"),
    ({"metadata": {**META, "index_number": "1\x00"}}, "metadata.index_number"),
    ({"metadata": {**META, "validity": "有效\x1b[2J"}}, "metadata.validity"),
    ({"metadata": {**META, "subject_category": "综合\u2028政务"}}, "metadata.subject_category"),
    ({"body": "正文\x00"}, "body"),
    ({"body": "正文\x0b第二段"}, "body"),
    ({"body": "正文\x1b[31m"}, "body"),
    ({"body": "正文\x9b"}, "body"),
    ({"body": "正文\uffff"}, "body"),
    ({"body": "正文\udfff"}, "body"),
    ({"channels": ["alpha\n"]}, "channels.0"),
    ({"overrides": {"alpha": {"title": "网站标题\r\n"}}}, "overrides.alpha.title"),
    ({"overrides": {"alpha": {"slugline": "稿\n"}}}, "overrides.alpha.slugline"),
    ({"overrides": {"alpha": {"headline": "稿\u2028"}}}, "overrides.alpha.headline"),
    ({"overrides": {"alpha": {"column": "栏目\r"}}}, "overrides.alpha.column"),
    ({"overrides": {"alpha": {"author": "作者\n"}}}, "overrides.alpha.author"),
    ({"overrides": {"alpha": {"digest": "摘要\n"}}}, "overrides.alpha.digest"),
    ({"overrides": {"alpha": {"text": "微博\x0b"}}}, "overrides.alpha.text"),
    ({"overrides": {"alpha": {"title": 5}}}, "overrides.alpha.title"),
    ({"overrides": {"alpha": {"extra": {"deep": ["ok", "坏\ufffe"]}}}},
     "overrides.alpha.extra.deep.1"),
    ({"overrides": {"alpha": {"bad\ud800key": "x"}}}, "overrides.alpha"),
    ({"overrides": {"al\npha": {"title": "x"}}}, "overrides"),
])
def test_control_and_broken_characters_are_refused_naming_the_field(change, field):
    problems = problems_of(**change)
    assert any(f == field for f, _ in problems), problems


def test_pasted_windows_line_endings_in_the_body_become_lf_and_tabs_stay():
    data = release_input(body="第一段\r\n\r\n第二段\r第三段\t表格",
                         overrides={"alpha": {"text": "微博第一行\r\n第二行"}})
    assert data.body == "第一段\n\n第二段\n第三段\t表格"
    assert data.overrides["alpha"]["text"] == "微博第一行\n第二行"


def test_ordinary_chinese_text_and_a_tab_in_a_title_are_accepted():
    data = release_input(title="关于印发《某省促进民营经济发展若干措施》的通知\t（全文）",
                         overrides={"alpha": {"title": "网站标题", "version": 2}})
    assert data.title.endswith("（全文）")


# ------------------------------------------------------------------ ids


@pytest.mark.parametrize(("change", "field"), [
    ({"parent": 2**53 + 1}, "parent"),
    ({"parent": 2**70}, "parent"),
    ({"parent": 0}, "parent"),
    ({"parent": -1}, "parent"),
    ({"corrects": 2**64}, "corrects"),
    ({"corrects": 0}, "corrects"),
])
def test_ids_out_of_range_are_refused(change, field):
    assert any(f == field for f, _ in problems_of(**change))


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
def client(ctx, people, memory_channels):
    return TestClient(make_app(ctx), raise_server_exceptions=False), people


def body_with(**change) -> dict:
    data = {"title": "关于做好冬季安全生产工作的通知", "body": "正文", "metadata": META,
            "channels": ["alpha"]}
    data.update(change)
    return data


@pytest.mark.parametrize(("change", "field"), [
    ({"title": "标题\x0b"}, "title"),
    ({"title": "标题\r\n"}, "title"),
    ({"parent": 2**70}, "parent"),
    ({"corrects": 2**63}, "corrects"),
    ({"go_live_at": "0001-01-01T00:00:00+14:00"}, "go_live_at"),
    ({"go_live_at": "9999-12-31T23:59:59-14:00"}, "go_live_at"),
    ({"go_live_at": "2000-01-01T00:00:00+08:00"}, "go_live_at"),
])
def test_api_create_answers_422_naming_the_field(client, change, field):
    http, people = client
    auth = {"Authorization": f"Bearer {people['press']}"}
    answer = http.post("/api/v1/releases", json=body_with(**change), headers=auth)
    assert answer.status_code == 422, answer.text
    fields = {p.get("field") or ".".join(map(str, p.get("loc", [])[1:]))
              for p in answer.json().get("problems", answer.json().get("detail", []))}
    assert field in fields, answer.json()
    assert http.get("/api/v1/releases", headers=auth).json() == []  # nothing half-written


def test_api_edit_refuses_a_control_character_and_keeps_the_release(client):
    http, people = client
    auth = {"Authorization": f"Bearer {people['press']}"}
    created = http.post("/api/v1/releases", json=body_with(), headers=auth).json()
    answer = http.put(f"/api/v1/releases/{created['id']}", json=body_with(title="新\x0b标题"),
                      headers=auth)
    assert answer.status_code == 422
    shown = http.get(f"/api/v1/releases/{created['id']}", headers=auth).json()
    assert shown["title"] == "关于做好冬季安全生产工作的通知" and shown["revision"] == 1


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                "2000-01-01T00:00:00Z"])
def test_api_schedule_with_an_edge_date_is_422_not_500(client, ctx, at):
    http, people = client
    auth = {"Authorization": f"Bearer {people['press']}"}  # its author asks for the time
    created = http.post("/api/v1/releases", json=body_with(), headers=auth).json()
    approve_all(ctx, created["id"])
    answer = http.post(f"/api/v1/releases/{created['id']}/schedule", json={"at": at},
                       headers=auth)
    assert answer.status_code == 422, answer.text
    assert [p["field"] for p in answer.json()["problems"]] == ["at"]


# ------------------------------------------------------------------ go-live horizon


def in_days(days: float) -> str:
    return (clock.utcnow() + dt.timedelta(days=days)).isoformat()


def test_go_live_in_the_past_or_beyond_the_horizon_is_refused(ctx, new_release):
    with pytest.raises(InvalidInput, match="go_live_at"):
        new_release(go_live_at=in_days(-1 / 24))
    with pytest.raises(InvalidInput, match="go_live_at"):
        new_release(go_live_at=in_days(91))
    assert new_release(go_live_at=in_days(89))


def test_the_horizon_is_a_setting_and_follows_the_injected_clock(tmp_path, people,
                                                                 memory_channels, ctx):
    short = Settings(var_dir=tmp_path, database_url=ctx.settings.database_url,
                     go_live_horizon_days=7, _env_file=None)
    short_ctx = Context(ctx.engine, short, RecordingQueue())
    at = in_days(8)
    with UnitOfWork(short_ctx) as uow, pytest.raises(InvalidInput, match="go_live_at"):
        releases.create(uow, release_input(go_live_at=at, channels=["alpha"]), "press")
    clock.travel(2 * 86400)  # two days on, the same moment is within seven days
    with UnitOfWork(short_ctx) as uow:
        assert releases.create(uow, release_input(go_live_at=at, channels=["alpha"]), "press")


def test_schedule_beyond_the_horizon_is_refused(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="at"):
        golive.schedule(uow, rid, dt.datetime.fromisoformat(in_days(400)), "press")


def test_parse_release_without_a_clock_still_accepts_a_future_time():
    """The file is read before any clock or setting applies: the use case checks the time."""
    data = parse_release({**body_with(), "go_live_at": "2099-01-01T09:00:00+08:00"})
    assert data.go_live_at is not None


@pytest.mark.parametrize("path", ["/api/v1/releases/409/force-go-live",
                                  "/api/v1/releases/9007199254740992/force-go-live"])
def test_force_go_live_of_no_release_is_404(client, path):
    """Found by the schemathesis stateful run: the row lock raised NoResultFound (500)."""
    http, people = client
    answer = http.post(path, json={"reason": "0"},
                       headers={"Authorization": f"Bearer {people['leader']}"})
    assert answer.status_code == 404, answer.text


# ------------------------------------------------------------------ the CLI


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("r.json", '{"title": "标题\\u000b", "body": "正文", "channels": ["alpha"], "metadata": '
               '{"index_number": "1", "issuing_body": "办公厅", "disclosure": "主动公开"}}',
     "title"),
    ("r.yaml", 'title: "标题\\r\\nBcc: x"\nbody: 正文\nchannels: [alpha]\nmetadata: '
               '{index_number: "1", issuing_body: 办公厅, disclosure: 主动公开}\n', "title"),
    ("r.yaml", b"title: \xff\xfe\n", "utf-8"),
])
def test_cli_create_refuses_in_one_line_naming_the_field(tmp_path, settings, people, name,
                                                        content, needle):
    import subprocess
    import sys

    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    env = {"TONGFA_VAR_DIR": str(tmp_path), "TONGFA_DATABASE_URL": settings.resolved_database_url,
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "release", "create",
                             str(path), "--as", "press"], capture_output=True, text=True, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and needle in lines[0], result.stderr
    assert result.stdout == ""


# ------------------------------------------- a NUL character: PostgreSQL refuses it in text

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@ON_POSTGRES
@pytest.mark.parametrize(("who", "method", "url", "field"), [
    ("press", "GET", "/api/v1/releases?state=%00", "state"),
    ("auditor", "GET", "/api/v1/audit?actor=%00", "actor"),
    ("auditor", "GET", "/api/v1/audit?action=%00", "action"),
    ("auditor", "GET", "/api/v1/audit?channel=%00", "channel"),
    ("auditor", "GET", "/api/v1/attempts?channel=%00", "channel"),
    ("auditor", "GET", "/api/v1/attempts?outcome=%00", "outcome"),
    ("admin_ops", "POST", "/api/v1/channels/%00/pause", "name"),
    ("admin_ops", "POST", "/api/v1/channels/a%00b/test", "name"),
])
def test_a_nul_in_a_path_or_query_parameter_is_a_422_naming_it(client, who, method, url, field):
    api, people = client
    got = api.request(method, url, headers={"Authorization": f"Bearer {people[who]}"})
    assert got.status_code == 422, (got.status_code, got.text[:300])
    assert [p["field"] for p in got.json()["problems"]] == [field]


@ON_POSTGRES
def test_a_nul_in_a_co_author_is_a_422_naming_it(client):
    api, people = client
    got = api.post("/api/v1/releases", json=body_with(co_authors=["press2\u0000"]),
                   headers={"Authorization": f"Bearer {people['press']}"})
    assert got.status_code == 422, (got.status_code, got.text[:300])
    assert [p["field"] for p in got.json()["problems"]] == ["co_authors"]


@ON_POSTGRES
def test_a_nul_in_the_console_sign_in_is_a_refused_sign_in(ctx, people):
    from tests.test_console import app_for, csrf_of

    console = TestClient(app_for(ctx), raise_server_exceptions=False)
    answer = console.post("/console/login", data={"csrf": csrf_of(console), "name": "press\x00",
                                                  "password": "x"}, follow_redirects=False)
    assert answer.status_code in (401, 403, 200) and "press" not in answer.headers.get(
        "set-cookie", "").split("=")[0], answer.status_code
    assert console.get("/console/login?next=%00").status_code == 422
