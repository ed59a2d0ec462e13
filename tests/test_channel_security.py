"""Channel configuration cannot be turned into a weapon (issue 12).

A channel admin may change where a channel points, but not to walk away with what is
stored: moving an endpoint needs the credentials again; endpoints are https unless a
sandbox on loopback; outbound HTTP refuses private and link-local addresses (also when a
name re-resolves between the check and the connection); a website writes only under the
allowed directories; WeChat's callback token is a secret and old callbacks are refused;
a connection test never repeats what the remote side said.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlmodel import select
from standardwebhooks import Webhook

from channels import contract
from channels.cms_push import CmsPushAdapter
from channels.contract import ChannelError
from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app as weibo_sandbox
from channels.weibo import WeiboAdapter
from orchestrator.bootstrap import make_app
from orchestrator.domain import clock
from orchestrator.domain.errors import InvalidInput
from orchestrator.settings import Settings
from orchestrator.store.models import AuditEvent, Delivery
from orchestrator.usecases import channels, integrity
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.test_console import console, signed_in  # noqa: F401  (fixture and helper)

TOKEN = "weibo-token-stored-only-here"
APPSECRET = "wechat-appsecret-stored-only-here"
UID = "5000000001"


# ------------------------------------------------------------------ the attacker's server


def attacker_app() -> tuple[FastAPI, list[str]]:
    """Answers anything like a friendly platform would, and keeps every byte it was sent."""
    seen: list[str] = []
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def anything(path: str, request: Request) -> JSONResponse:
        seen.append(f"{request.method} {request.url} {(await request.body()).decode(errors='replace')}")
        if "stable_token" in path or "token" in path:
            return JSONResponse({"access_token": "attacker-issued", "expires_in": 7200})
        return JSONResponse({"statuses": [], "errcode": 0})

    return app, seen


@pytest.fixture
def attacker() -> Iterator[tuple[SandboxServer, list[str]]]:
    app, seen = attacker_app()
    with SandboxServer(app) as server:
        yield server, seen


@pytest.fixture
def weibo_platform() -> Iterator[SandboxServer]:
    with SandboxServer(weibo_sandbox(accounts={UID: TOKEN})) as server:
        yield server


def weibo_config(url: str, **changes: Any) -> dict[str, Any]:
    return {"api_base": url, "safe_domain": "127.0.0.1", "uid": UID, "sandbox": True, **changes}


@pytest.fixture
def api(ctx: Context, people: dict[str, str]) -> TestClient:
    client = TestClient(make_app(ctx))
    client.as_ = lambda who: {"Authorization": f"Bearer {people[who]}"}  # type: ignore[attr-defined]
    return client


def save(ctx: Context, name: str, kind: str, config: dict[str, Any],
         credentials: dict[str, Any] | None) -> None:
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, name, kind, config, credentials, "admin_ops")


# ------------------------------------------------------ moving an endpoint needs credentials


def test_pointing_a_weibo_account_at_another_server_does_not_hand_it_the_token(
        ctx, api, attacker, weibo_platform):
    server, seen = attacker
    save(ctx, "weibo-office", "weibo", weibo_config(weibo_platform.url), {"access_token": TOKEN})
    moved = api.put("/api/v1/channels/weibo-office", headers=api.as_("admin_ops"),
                    json={"kind": "weibo", "config": weibo_config(server.url)})
    tested = api.post("/api/v1/channels/weibo-office/test", headers=api.as_("admin_ops"))
    stolen = [line for line in seen if TOKEN in line]
    assert not stolen, f"the stored token reached the attacker: {stolen}"
    assert moved.status_code == 422
    assert [p["field"] for p in moved.json()["problems"]] == ["config.api_base"]
    assert tested.json()["ok"] is True  # still the real platform, still its token
    # the admin who knows the account's token may move it: nothing stored leaves
    again = api.put("/api/v1/channels/weibo-office", headers=api.as_("admin_ops"), json={
        "kind": "weibo", "config": weibo_config(server.url),
        "credentials": {"access_token": "typed-in-again"}})
    assert again.status_code == 200
    with UnitOfWork(ctx) as uow:
        assert channels.get_channel(uow.session, "weibo-office").config["api_base"] == server.url


def test_pointing_wechat_elsewhere_in_the_console_does_not_hand_it_the_appsecret(
        console, attacker, tmp_path, monkeypatch):  # noqa: F811
    server, seen = attacker
    resolver(monkeypatch, "api.weixin.qq.com", ["101.226.212.27"])  # no DNS on a test machine
    config = {"api_base": "https://api.weixin.qq.com", "appid": "wx0001",
              "token_store": str(tmp_path / "private" / "tokens")}
    save(console, "wechat", "wechat", config, {"appsecret": APPSECRET})
    client, csrf = signed_in(console, "admin_ops")
    moved = client.post("/console/channels/wechat/edit", data={
        "csrf": csrf, "kind": "wechat", "credentials": "",
        "config": json.dumps({**config, "api_base": server.url, "sandbox": True})})
    client.post("/console/channels/wechat/test", data={"csrf": csrf})
    stolen = [line for line in seen if APPSECRET in line]
    assert not stolen, f"the stored appsecret reached the attacker: {stolen}"
    assert moved.status_code == 422 and "config.api_base" in moved.text
    assert "重新填写凭据" in moved.text
    # the token store is where the platform's access tokens go: it is an endpoint too
    elsewhere = client.post("/console/channels/wechat/edit", data={
        "csrf": csrf, "kind": "wechat", "credentials": "",
        "config": json.dumps({**config, "token_store": "redis://127.0.0.1:6379/9"})})
    assert elsewhere.status_code == 422 and "config.token_store" in elsewhere.text


def test_the_cli_refuses_to_move_an_endpoint_without_credentials(tmp_path, attacker):
    server, _ = attacker
    env = {**os.environ, "TONGFA_VAR_DIR": str(tmp_path / "var"),
           "TONGFA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def tongfa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                              capture_output=True, text=True, env=env, timeout=60)

    first = tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config",
                   json.dumps(weibo_config("http://127.0.0.1:9")),
                   "--credentials", json.dumps({"access_token": TOKEN}))
    assert first.returncode == 0, first.stderr
    moved = tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config",
                   json.dumps(weibo_config(server.url)))
    assert moved.returncode == 1 and moved.stderr.startswith("refused:")
    assert "config.api_base" in moved.stderr


def test_the_kind_of_an_existing_channel_cannot_change(ctx, memory_channels):
    with pytest.raises(InvalidInput) as refused, UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "alpha", "weibo", weibo_config("http://127.0.0.1:9"),
                              {"access_token": "x"}, "admin_ops")
    assert [f for f, _ in refused.value.problems] == ["kind"]
    with UnitOfWork(ctx) as uow:
        assert channels.get_channel(uow.session, "alpha").kind == "memory"


def test_newsfeed_hosts_are_endpoints_too(ctx):
    config = {"delivery": ["email"], "sandbox": True,
              "email": {"host": "127.0.0.1", "port": 2525, "username": "press",
                        "from_addr": "press@example.gov.cn", "to_addrs": ["desk@example.cn"]}}
    save(ctx, "newsfeed", "newsfeed", config, {"smtp_password": "mail-secret"})
    moved = {**config, "email": {**config["email"], "port": 2526}}
    with pytest.raises(InvalidInput) as refused, UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "newsfeed", "newsfeed", moved, None, "admin_ops")
    assert [f for f, _ in refused.value.problems] == ["config.email.port"]
    save(ctx, "newsfeed", "newsfeed", {**config, "formats": ["nitf"]}, None)  # not an endpoint


# ------------------------------------------------------------ a password inside a config URL

URL_SECRET = "hunter2Sup3rS3cret"


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("wechat", {"api_base": f"http://wxuser:{URL_SECRET}@127.0.0.1:9", "appid": "wx0123456789",
                "sandbox": True}, "api_base"),
    ("wechat", {"api_base": "http://127.0.0.1:9", "appid": "wx0123456789", "sandbox": True,
                "token_store": f"redis://:{URL_SECRET}@127.0.0.1:6379/0"}, "token_store"),
    ("weibo", {"api_base": f"http://u:{URL_SECRET}@127.0.0.1:9", "safe_domain": "127.0.0.1",
               "sandbox": True}, "api_base"),
])
def test_a_password_in_a_config_url_is_never_shown_and_a_new_one_needs_credentials(
        ctx, api, kind, config, field):
    save(ctx, "c1", kind, config, None)
    listed = api.get("/api/v1/channels", headers=api.as_("admin_ops"))
    assert listed.status_code == 200 and URL_SECRET not in listed.text
    shown = next(c for c in listed.json() if c["name"] == "c1")
    assert ":***@" in shown["config"][field]
    # the view sent back as it was shown (an edit form) keeps the stored password
    again = api.put("/api/v1/channels/c1", headers=api.as_("admin_ops"),
                    json={"kind": kind, "config": shown["config"]})
    assert again.status_code == 200, again.text
    with UnitOfWork(ctx) as uow:
        assert channels.get_channel(uow.session, "c1").config == config
        audited = json.dumps([e.before for e in uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "channel.saved")).all()] + [e.after for e in uow.session.exec(
                select(AuditEvent).where(AuditEvent.action == "channel.saved")).all()])
    assert URL_SECRET not in audited
    # a new password is a credential of its own: typed in with the credentials, not slipped in
    changed = api.put("/api/v1/channels/c1", headers=api.as_("admin_ops"), json={
        "kind": kind, "config": {**config, field: config[field].replace(URL_SECRET, "other")}})
    assert changed.status_code == 422
    assert [p["field"] for p in changed.json()["problems"]] == [f"config.{field}"]


# ---------------------------------------------------------------------- https or sandbox


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("weibo", {"api_base": "http://api.weibo.com", "safe_domain": "gov.cn"}, "api_base"),
    ("weibo", {"api_base": "http://127.0.0.1:9", "safe_domain": "gov.cn"}, "api_base"),
    ("weibo", {"api_base": "https://api.weibo.com", "safe_domain": "gov.cn", "sandbox": True},
     "api_base"),
    ("wechat", {"api_base": "http://api.weixin.qq.com", "appid": "wx1"}, "api_base"),
    ("cms_push", {"endpoint": "http://www.example.gov.cn/api"}, "endpoint"),
    ("newsfeed", {"delivery": ["sftp"], "sandbox": True, "sftp": {
        "host": "desk.example.cn", "username": "d", "host_key": "ssh-ed25519 AAAA"}}, "sftp.host"),
])
def test_endpoints_are_https_unless_a_sandbox_on_loopback(kind, config, field, ctx):
    from channels.registry import adapter_class

    with pytest.raises(contract.InvalidConfig) as refused:
        adapter_class(kind)(config, {})
    assert [p.field for p in refused.value.problems] == [field]
    with pytest.raises(InvalidInput) as saved, UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "c", kind, config, {}, "admin_ops")
    assert [f for f, _ in saved.value.problems] == [f"config.{field}"]


def test_https_and_loopback_sandboxes_are_accepted():
    WeiboAdapter({"api_base": "https://api.weibo.com", "safe_domain": "gov.cn"})
    WeiboAdapter({"api_base": "http://127.0.0.1:9", "safe_domain": "gov.cn", "sandbox": True})
    WeiboAdapter({"api_base": "http://localhost:9", "safe_domain": "gov.cn", "sandbox": True})
    WeiboAdapter({"api_base": "http://[::1]:9", "safe_domain": "gov.cn", "sandbox": True})


# ---------------------------------------------------------------- private addresses refused


def resolver(monkeypatch: pytest.MonkeyPatch, name: str, *answers: list[str]) -> list[int]:
    """Make `name` resolve to each list of addresses in turn (the last one stays)."""
    real, calls = socket.getaddrinfo, [0]

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        addresses = answers[min(calls[0], len(answers) - 1)]
        calls[0] += 1
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port or 443), 0, 0) if ":" in a else (a, int(port or 443)))
                for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.mark.parametrize("url", [
    "https://10.1.2.3/api", "https://169.254.169.254/latest", "https://[fe80::1]/x",
    "https://[::ffff:192.168.1.1]/x", "https://100.64.0.1/x", "https://0.0.0.0/x",
    "https://127.0.0.1/x", "https://cms.example.gov.cn/api",
])
def test_private_and_link_local_endpoints_are_refused_at_save(url, ctx, monkeypatch):
    resolver(monkeypatch, "cms.example.gov.cn", ["93.184.216.34", "10.0.0.5"])  # one is private
    with pytest.raises(InvalidInput) as refused, UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "cms", "cms_push", {"endpoint": url},
                              {"secret": "whsec_" + "A" * 32}, "admin_ops")
    assert [f for f, _ in refused.value.problems] == ["config.endpoint"]


def test_the_allow_list_names_private_hosts_and_networks(ctx, monkeypatch):
    resolver(monkeypatch, "cms.intranet", ["10.0.0.5"])
    settings = Settings(**{**ctx.settings.model_dump(),
                           "outbound_allow": ("10.1.0.0/16", "cms.intranet")})
    allowed = Context(ctx.engine, settings, ctx.queue)
    for url in ("https://10.1.2.3/api", "https://cms.intranet/api"):
        with UnitOfWork(allowed) as uow:
            channels.save_channel(uow, "cms", "cms_push", {"endpoint": url},
                                  {"secret": "whsec_" + "A" * 32}, "admin_ops")


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


def accepted(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_a_name_that_rebinds_to_loopback_after_the_check_gets_no_connection(ctx, monkeypatch):
    from tests.channels.test_cms_push import release

    sock = listener()
    port = sock.getsockname()[1]
    calls = resolver(monkeypatch, "cms.example.gov.cn", ["93.184.216.34"], ["127.0.0.1"])
    endpoint = f"https://cms.example.gov.cn:{port}/api"
    with UnitOfWork(ctx) as uow:  # at save time the name is a public address
        row = channels.save_channel(uow, "cms", "cms_push", {"endpoint": endpoint},
                                    {"secret": "whsec_" + "A" * 32}, "admin_ops")
        adapter = channels.adapter_for(ctx.settings, row)
    assert isinstance(adapter, CmsPushAdapter)
    payload = adapter.render(release())
    with pytest.raises(ChannelError) as refused:
        adapter.publish(payload, {}, "key-1")
    assert accepted(sock) == 0, "the push connected to loopback after the name rebound"
    assert refused.value.code == "outbound_refused" and calls[0] >= 2
    sock.close()


def test_integrity_read_back_does_not_follow_a_rebound_name(ctx, new_release, monkeypatch):
    sock = listener()
    port = sock.getsockname()[1]
    resolver(monkeypatch, "api.weibo.example.cn", ["93.184.216.34"], ["127.0.0.1"])
    save(ctx, "weibo", "weibo", {"api_base": f"https://api.weibo.example.cn:{port}",
                                 "safe_domain": "127.0.0.1"}, {"access_token": TOKEN})
    rid = new_release()
    with UnitOfWork(ctx) as uow:
        uow.session.add(Delivery(release_id=rid, revision=1, channel="weibo", kind="weibo",
                                 state="published", idempotency_key="k", remote_id="1",
                                 payload={"text": "x", "marker": "m"},
                                 receipt={"remote_id": "1", "url": None,
                                          "published_at": "2026-01-01T00:00:00+00:00"}))
        uow.commit()
    assert integrity.check(ctx, every_seconds=0) == []
    assert accepted(sock) == 0, "the read-back connected to loopback after the name rebound"
    sock.close()


def test_the_alert_webhook_refuses_a_private_address_unless_allowed(ctx):
    from orchestrator import notify

    received: list[tuple[bytes, dict[str, str]]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((await request.body(), dict(request.headers)))
        return {"ok": True}

    alert = {"id": 7, "kind": "integrity", "channel": "website", "release_id": 1,
             "message": "+spam"}
    secret = "whsec_" + "B" * 32
    with SandboxServer(app) as server:
        plain = Settings(**{**ctx.settings.model_dump(), "alert_webhook_url": f"{server.url}/hook",
                            "alert_webhook_secret": secret})
        assert notify.operator_alerts(plain, [alert]) == set()
        assert received == []
        allowed = Settings(**{**plain.model_dump(), "outbound_allow": ("127.0.0.1",)})
        assert notify.operator_alerts(allowed, [alert]) == {7}
    [(data, headers)] = received
    assert headers["webhook-id"] == "alert-7"  # verified as any receiver would, by the library
    assert Webhook(secret).verify(data, headers)["text"] == "+spam"
    unsigned = Settings(**{**allowed.model_dump(), "alert_webhook_secret": None})
    assert notify.operator_alerts(unsigned, [alert]) == set() and len(received) == 1  # never sent unsigned


# ------------------------------------------------------------------------- the web root


def test_a_web_root_outside_the_allowed_directories_is_refused(ctx, tmp_path):
    site = ctx.settings.resolved_site_root
    site.mkdir(parents=True, exist_ok=True)
    (site / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for root in (tmp_path / "elsewhere", site / ".." / "elsewhere", site / "escape" / "www",
                 "/etc"):
        with pytest.raises(InvalidInput) as refused, UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website", {"web_root": str(root)}, None,
                                  "admin_ops")
        assert [f for f, _ in refused.value.problems] == ["config.web_root"], root
    save(ctx, "website", "website", {"web_root": str(site / "www")}, None)
    save(ctx, "website", "website", {"web_root": str(site)}, None)
    other = Settings(**{**ctx.settings.model_dump(), "web_roots": (tmp_path / "elsewhere",)})
    with UnitOfWork(Context(ctx.engine, other, ctx.queue)) as uow:
        channels.save_channel(uow, "website", "website",
                              {"web_root": str(tmp_path / "elsewhere" / "gov")}, None, "admin_ops")


# ------------------------------------------------------------------- WeChat's callback token


def wechat_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def test_the_wechat_callback_token_is_a_secret_and_old_callbacks_are_refused(ctx, api):
    config = {"api_base": "http://127.0.0.1:9", "appid": "wx1", "sandbox": True}
    api_saved = api.put("/api/v1/channels/wechat", headers=api.as_("admin_ops"), json={
        "kind": "wechat", "config": config,
        "credentials": {"appsecret": "s", "callback_token": "cb-token-secret"}})
    assert api_saved.status_code == 200
    listed = api.get("/api/v1/channels", headers=api.as_("admin_ops")).text
    assert "cb-token-secret" not in listed and "cb-token-secret" not in api_saved.text
    with UnitOfWork(ctx) as uow:
        events = uow.session.exec(select(AuditEvent)).all()
    assert events and all("cb-token-secret" not in json.dumps(
        [e.before, e.after, e.detail], ensure_ascii=False) for e in events)
    in_config = api.put("/api/v1/channels/wechat", headers=api.as_("admin_ops"), json={
        "kind": "wechat", "config": {**config, "callback_token": "cb-token-secret"},
        "credentials": {"appsecret": "s", "callback_token": "cb-token-secret"}})
    assert in_config.status_code == 422 and "cb-token-secret" not in in_config.text
    assert [p["field"] for p in in_config.json()["problems"]] == ["config.callback_token"]

    url = "/api/v1/channels/wechat/wechat-events"
    xml = b"<xml><Event>PUBLISHJOBFINISH</Event></xml>"
    now = str(int(clock.utcnow().timestamp()))
    fresh = api.post(url, content=xml, params={
        "signature": wechat_signature("cb-token-secret", now, "n1"), "timestamp": now,
        "nonce": "n1"})
    assert fresh.status_code == 200
    clock.travel(301)  # the same, correctly signed callback five minutes later: a replay
    replayed = api.post(url, content=xml, params={
        "signature": wechat_signature("cb-token-secret", now, "n1"), "timestamp": now,
        "nonce": "n1"})
    assert replayed.status_code == 403
    ahead = str(int(clock.utcnow().timestamp()) + 301)
    assert api.post(url, content=xml, params={
        "signature": wechat_signature("cb-token-secret", ahead, "n2"), "timestamp": ahead,
        "nonce": "n2"}).status_code == 403


# ------------------------------------------------------- a test never echoes the remote body


ECHO = "<script>alert('x')</script>REMOTE-SAID-THIS"


@pytest.mark.parametrize(("kind", "config", "status", "answer"), [
    ("weibo", {"safe_domain": "127.0.0.1"}, 200, {"error": ECHO, "error_code": 21327}),
    ("weibo", {"safe_domain": "127.0.0.1"}, 502, None),
    ("wechat", {"appid": "wx1"}, 200, {"errcode": 40013, "errmsg": ECHO}),
    ("cms_push", {}, 401, {"error": ECHO}),
    ("cms_push", {}, 400, {"detail": ECHO}),
])
def test_a_connection_test_never_repeats_what_the_remote_side_said(
        kind, config, status, answer, ctx, tmp_path):
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(path: str) -> Any:
        from fastapi.responses import HTMLResponse

        if answer is None:
            return HTMLResponse(f"<html>{ECHO}</html>", status)
        return JSONResponse(answer, status)

    with SandboxServer(app) as server:
        base = {"weibo": "api_base", "wechat": "api_base", "cms_push": "endpoint"}[kind]
        creds = {"weibo": {"access_token": "t"}, "wechat": {"appsecret": "s"},
                 "cms_push": {"secret": "whsec_" + "A" * 32}}[kind]
        extra = {"token_store": str(tmp_path / "private" / "tokens")} if kind == "wechat" else {}
        save(ctx, "c", kind, {base: server.url, "sandbox": True, **config, **extra}, creds)
        with UnitOfWork(ctx) as uow:
            ok, message = channels.test_channel(uow, "c", "admin_ops")
    assert not ok and "REMOTE-SAID-THIS" not in message and "script" not in message
    code = str((answer or {}).get("error_code") or (answer or {}).get("errcode") or status)
    assert code in message
    with UnitOfWork(ctx) as uow:
        tested = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "channel.tested")).one()
    assert "REMOTE-SAID-THIS" not in json.dumps(tested.after, ensure_ascii=False)


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("weibo", {"api_base": "https://[::1", "safe_domain": "gov.cn"}, "config.api_base"),
    ("weibo", {"api_base": "https://exa\x00mple.cn", "safe_domain": "gov.cn"}, "config.api_base"),
    ("website", {"web_root": "/srv/www\x00/x"}, "config.web_root"),
])
def test_malformed_endpoints_and_paths_are_a_422_not_a_500(kind, config, field, api):
    saved = api.put("/api/v1/channels/c", headers=api.as_("admin_ops"),
                    json={"kind": kind, "config": config, "credentials": {}})
    assert saved.status_code == 422, saved.text
    assert [p["field"] for p in saved.json()["problems"]] == [field]


# --------------------------------------- every key of the credential route needs them again

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SFTP = {"delivery": ["sftp"], "sandbox": True,
        "sftp": {"host": "127.0.0.1", "port": 2222, "username": "desk", "host_key": HOST_KEY}}
MAIL = {"delivery": ["email"], "sandbox": True,
        "email": {"host": "127.0.0.1", "port": 2525, "username": "press",
                  "from_addr": "press@example.gov.cn", "to_addrs": ["desk@example.cn"]}}
ROUTE_CASES = [  # (kind, config, credentials, dotted key, new value)
    ("newsfeed", SFTP, {"sftp_password": "p"}, "sftp.username", "someone-else"),
    ("newsfeed", SFTP, {"sftp_password": "p"}, "sftp.host_key",
     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtOCh8nl0Tb8NqLDRbsg8W7HqmFDnNVlwvjdJgmjQ6G"),
    ("newsfeed", SFTP, {"sftp_password": "p"}, "sftp.accept_any_host_key", True),
    ("newsfeed", MAIL, {"smtp_password": "p"}, "email.username", "someone-else"),
    ("newsfeed", MAIL, {"smtp_password": "p"}, "email.starttls", True),
    ("newsfeed", MAIL, {"smtp_password": "p"}, "email.use_ssl", True),
    ("newsfeed", MAIL, {"smtp_password": "p"}, "email.ca_file", "PRIVATE/ca.pem"),
    ("wechat", {"api_base": "http://127.0.0.1:9", "appid": "wx0001", "sandbox": True},
     {"appsecret": "s"}, "appid", "wx0002"),
    ("cms_push", {"endpoint": "https://127.0.0.1:9/api"}, {}, "sandbox", True),
]


@pytest.mark.parametrize(("kind", "config", "credentials", "key", "value"), ROUTE_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in ROUTE_CASES])
def test_every_key_that_decides_where_secrets_go_needs_them_again(
        kind, config, credentials, key, value, ctx, api):
    allowed = Settings(**{**ctx.settings.model_dump(), "outbound_allow": ("127.0.0.1",)})
    ctx = Context(ctx.engine, allowed, ctx.queue)
    client = TestClient(make_app(ctx))
    if isinstance(value, str):
        value = value.replace("PRIVATE", str(allowed.allowed_private_roots[0]))
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "c", kind, config, credentials, "admin_ops")
    assert key in channels.credential_route(kind, config)
    changed = json.loads(json.dumps(config))
    section, _, leaf = key.rpartition(".")
    (changed[section] if section else changed)[leaf] = value
    headers = api.as_("admin_ops")
    refused = client.put("/api/v1/channels/c", headers=headers,
                         json={"kind": kind, "config": changed})
    assert refused.status_code == 422, refused.text
    assert [p["field"] for p in refused.json()["problems"]] == [f"config.{key}"]
    assert "重新填写凭据" in refused.json()["problems"][0]["message"]
    with UnitOfWork(ctx) as uow:
        assert channels.get_channel(uow.session, "c").config == config  # nothing half-written
    again = client.put("/api/v1/channels/c", headers=headers,
                       json={"kind": kind, "config": changed, "credentials": credentials})
    assert again.status_code == 200, again.text


def test_the_credential_route_of_each_kind_names_its_transport():
    assert set(channels.credential_route("newsfeed", {**SFTP, **MAIL, "delivery": ["sftp"]})) \
        >= {"sandbox", "sftp.host", "sftp.port", "sftp.username", "sftp.host_key",
            "sftp.accept_any_host_key", "email.host", "email.port", "email.starttls",
            "email.use_ssl", "email.username", "email.ca_file"}
    assert set(channels.credential_route("wechat", {"api_base": "https://a", "appid": "w"})) \
        >= {"sandbox", "api_base", "appid", "token_store"}
    assert set(channels.credential_route("cms_push", {"endpoint": "https://a"})) \
        >= {"sandbox", "endpoint"}
    assert set(channels.credential_route("weibo", {"api_base": "https://a"})) \
        >= {"sandbox", "api_base"}
    # the defaults count: leaving out what was set to its default moves nothing
    route = channels.credential_route("newsfeed", SFTP)
    assert route["sftp.accept_any_host_key"] is False and route["email.host"] is None


# ------------------------------------------------------------- files read from this disk

def test_files_named_in_a_config_must_lie_under_the_private_roots(ctx, api, tmp_path):
    private = ctx.settings.allowed_private_roots
    assert private == ((ctx.settings.var_dir / "private").resolve(),)
    private[0].mkdir(parents=True, exist_ok=True)
    (private[0] / "escape").symlink_to("/etc", target_is_directory=True)
    headers = api.as_("admin_ops")
    mail = {**MAIL, "email": {**MAIL["email"]}}
    wechat = {"api_base": "http://127.0.0.1:9", "appid": "wx0001", "sandbox": True}
    probes = [("newsfeed", mail, "email.ca_file", {"smtp_password": "p"}),
              ("wechat", wechat, "token_store", {"appsecret": "s"})]
    for kind, config, key, creds in probes:
        section, _, leaf = key.rpartition(".")
        for path in ("/etc/passwd", "/etc", str(ctx.settings.var_dir / "secret.key"),
                     str(private[0] / ".." / "secret.key"), str(private[0] / "escape" / "passwd"),
                     "relative/ca.pem"):
            bad = json.loads(json.dumps(config))
            (bad[section] if section else bad)[leaf] = path
            answer = api.put("/api/v1/channels/c", headers=headers,
                             json={"kind": kind, "config": bad, "credentials": creds})
            assert answer.status_code == 422, (key, path, answer.text)
            assert [p["field"] for p in answer.json()["problems"]] == [f"config.{key}"], path
            assert "TONGFA_PRIVATE_ROOTS" in answer.json()["problems"][0]["message"]
        assert not (tmp_path / "relative").exists() and not os.path.exists("relative")
        good = json.loads(json.dumps(config))
        (good[section] if section else good)[leaf] = str(private[0] / "wechat")
        answer = api.put("/api/v1/channels/c", headers=headers,
                         json={"kind": kind, "config": good, "credentials": creds})
        assert answer.status_code == 200, answer.text
        with UnitOfWork(ctx) as uow:
            uow.session.delete(channels.get_channel(uow.session, "c"))
            uow.commit()
    # a channel stored before the rule (or written past it) is refused when used, not read
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "old", "newsfeed", mail, {"smtp_password": "p"}, "admin_ops")
        row = channels.get_channel(uow.session, "old")
        row.config = {**mail, "email": {**mail["email"], "ca_file": "/etc/passwd"}}
        uow.session.add(row)
        uow.commit()
        with pytest.raises(contract.InvalidConfig) as refused:
            channels.adapter_for(ctx.settings, channels.get_channel(uow.session, "old"))
    assert [p.field for p in refused.value.problems] == ["email.ca_file"]
