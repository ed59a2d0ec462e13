"""Integrity watch: what the public sees, on every kind of channel, is what was approved.

Read back from the platform's side (the website over HTTP as served, the Weibo post, the
WeChat article, the desk's SFTP drop, the CMS's page); no false alarm after a correction,
a withdrawal or a body with CR/LF line breaks; an alert for a real defacement of each kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlmodel import select

from channels.sandbox.desk import PASSWORD, USER, SftpServer
from channels.sandbox.server import SandboxServer
from orchestrator.domain import clock
from orchestrator.domain.errors import InvalidInput
from orchestrator.settings import Settings
from orchestrator.store.models import AuditEvent, Delivery, IntegrityAlert, Release
from orchestrator.usecases import (
    channels,
    corrections,
    integrity,
    recovery,
    releases,
    scheduler,
    work,
)
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.channels import weibo_mid
from tests.conftest import approve_all, drain, release_input

SPAM = "<p>博彩 六合彩 网上赌场 百家乐 真人荷官 时时彩 北京赛车 体育投注</p>"


@pytest.fixture
def settings(tmp_path, database_url: str) -> Settings:
    """The sandboxes and the web server run on this machine: reading back goes to loopback."""
    return Settings(var_dir=tmp_path, database_url=database_url,
                    site_base_url="http://127.0.0.1:8000/site", outbound_allow=("127.0.0.1",),
                    integrity_interval_seconds=0, _env_file=None)


class Site:
    """The public web server in front of the web root; `served_with` is what a
    compromised server (or CDN) adds to every page while the files stay intact;
    `answers_with` what it answers instead of any page (a redirect, a refusal, an error)."""

    def __init__(self, root: Path) -> None:
        self.root, self.served_with, self.crlf = root, "", False
        self.answers_with: Response | None = None
        self.app = FastAPI()

        @self.app.get("/site/{path:path}")
        def page(path: str) -> Response:
            if self.answers_with is not None:
                return self.answers_with
            file = self.root / path
            if not file.is_file():
                return Response(status_code=404)
            data = file.read_bytes()
            if self.served_with:
                data = data.replace(b"<main>", b"<main>" + self.served_with.encode())
            if self.crlf:  # a server that writes Windows line ends (e.g. an ASCII-mode copy)
                data = data.replace(b"\n", b"\r\n")
            return Response(data, media_type="text/html; charset=utf-8")


@dataclass
class Kind:
    config: dict[str, Any]
    credentials: dict[str, Any] | None
    deface: Callable[[Delivery], None]  # what an attacker does to the live item
    site: Site | None = None  # the website's web server
    sandbox: Any = None  # the platform's sandbox state (its posts)


@contextmanager
def website(ctx: Context, tmp_path: Path) -> Iterator[Kind]:
    root = ctx.settings.resolved_site_root
    site = Site(root)
    with SandboxServer(site.app) as server:
        def deface(delivery: Delivery) -> None:
            page = root / delivery.payload["path"]
            page.write_text(page.read_text(encoding="utf-8").replace("<main>", "<main>" + SPAM),
                            encoding="utf-8")

        yield Kind({"web_root": str(root), "base_url": f"{server.url}/site"}, None, deface, site)


@contextmanager
def weibo(ctx: Context, tmp_path: Path) -> Iterator[Kind]:
    from channels.sandbox.weibo import create_app

    app = create_app(accounts={"5000000001": "tok"})
    with SandboxServer(app) as server:
        def deface(delivery: Delivery) -> None:  # a hijacked account: the post now says more
            for post in app.state.sandbox.posts:
                if str(post["id"]) == delivery.remote_id:
                    post["text"] += " 博彩网站 http://t.cn/spam123"

        yield Kind({"api_base": server.url, "safe_domain": "127.0.0.1", "uid": "5000000001",
                    "sandbox": True}, {"access_token": "tok"}, deface, sandbox=app.state.sandbox)


@contextmanager
def wechat(ctx: Context, tmp_path: Path) -> Iterator[Kind]:
    from channels.sandbox.wechat import create_app

    app = create_app(accounts={"wx0001": "secret-1"})
    with SandboxServer(app) as server:
        def deface(delivery: Delivery) -> None:
            for job in app.state.sandbox.jobs.values():
                if job["article_id"] == delivery.remote_id:
                    job["articles"][0]["content"] += SPAM

        yield Kind({"api_base": server.url, "appid": "wx0001",
                    "token_store": str(tmp_path / "private" / "tokens"), "sandbox": True},
                   {"appsecret": "secret-1"}, deface)


@contextmanager
def newsfeed(ctx: Context, tmp_path: Path) -> Iterator[Kind]:
    drop = tmp_path / "desk" / "incoming"
    drop.mkdir(parents=True)
    with SftpServer(drop.parent) as sftp:
        def deface(delivery: Delivery) -> None:  # someone with the drop's login rewrites a file
            for name in delivery.payload["item"]["files"].values():
                if (drop / name).is_file():
                    (drop / name).write_bytes((drop / name).read_bytes().replace(
                        "认真贯彻落实".encode(), "博彩 六合彩".encode()))

        yield Kind({"delivery": ["sftp"], "formats": ["newsml"], "sandbox": True,
                    "sftp": {"host": "127.0.0.1", "port": sftp.port, "username": USER,
                             "remote_dir": "incoming", "host_key": sftp.host_key_line}},
                   {"sftp_password": PASSWORD}, deface)


@contextmanager
def cms_push(ctx: Context, tmp_path: Path) -> Iterator[Kind]:
    from tests.channels.test_cms_push import SECRET, receiver

    app, state = receiver()
    with SandboxServer(app) as server:
        def deface(delivery: Delivery) -> None:
            state["pages"][delivery.receipt["details"]["key"]]["doc"]["title"] += " 博彩"

        yield Kind({"endpoint": f"{server.url}/api/releases", "sandbox": True},
                   {"secret": SECRET}, deface)


KINDS = {"website": website, "weibo": weibo, "wechat": wechat, "newsfeed": newsfeed,
         "cms_push": cms_push}


@pytest.fixture
def channel(ctx, people, tmp_path) -> Iterator[Callable[[str], Kind]]:
    """channel(kind): that kind's platform running, configured as channel `kind`."""
    with ExitStack() as stack:
        def make(kind: str) -> Kind:
            found = stack.enter_context(KINDS[kind](ctx, tmp_path))
            with UnitOfWork(ctx) as uow:
                channels.save_channel(uow, kind, kind, found.config, found.credentials,
                                      "admin_ops")
            return found

        yield make


def publish(ctx: Context, targets: list[str], **changes: Any) -> int:
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=targets, **changes), "press")
    approve_all(ctx, rid)
    drain(ctx)
    with UnitOfWork(ctx) as uow:
        assert releases.get_release(uow.session, rid).state == "published"
    return rid


def delivery(ctx: Context, rid: int, kind: str) -> Delivery:
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(Delivery).where(
            Delivery.release_id == rid, Delivery.channel == kind)).one()


def correct(ctx: Context, rid: int, targets: list[str], n: int = 1) -> int:
    return publish(ctx, targets, corrects=rid, title=f"关于做好冬季安全生产工作的通知（更正{n}）",
                   summary=f"第三条时限更正为12月{20 + n}日。",
                   body=f"各市人民政府：\n\n时限为**12月{20 + n}日**，请认真贯彻落实。")


# --------------------------------------------------------------- no false alarms


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_raises_nothing_untouched_and_one_alert_for_a_real_defacement(
        ctx, channel, kind):
    platform = channel(kind)
    rid = publish(ctx, [kind])
    assert integrity.check(ctx) == []
    platform.deface(delivery(ctx, rid, kind))
    alerts = integrity.check(ctx)
    assert [(a["release_id"], a["channel"]) for a in alerts] == [(rid, kind)]
    assert alerts[0]["diff"]
    assert integrity.check(ctx) == []  # the same defacement alerts once


def test_a_correction_raises_nothing_and_the_corrected_item_is_watched(ctx, channel):
    kinds = sorted(KINDS)
    platforms = {kind: channel(kind) for kind in kinds}
    original = publish(ctx, kinds)
    fix = correct(ctx, original, kinds)
    again = correct(ctx, fix, kinds, n=2)  # a correction of the correction
    assert integrity.check(ctx) == []
    platforms["website"].deface(delivery(ctx, again, "website"))
    alerts = integrity.check(ctx)
    assert [(a["release_id"], a["channel"]) for a in alerts] == [(again, "website")]


def test_a_withdrawal_raises_nothing(ctx, channel):
    kinds = sorted(KINDS)
    for kind in kinds:
        channel(kind)
    rid = publish(ctx, kinds, title="第一条通知")
    corrected = publish(ctx, kinds, title="第二条通知")
    correct(ctx, corrected, kinds)
    with UnitOfWork(ctx) as uow:
        corrections.withdraw(uow, rid, "leader", "信息有误，撤回")
    with UnitOfWork(ctx) as uow:  # the corrected one goes too: its correction stays up
        corrections.withdraw(uow, corrected, "leader", "已被更正稿取代")
    drain(ctx)
    assert integrity.check(ctx) == []
    with UnitOfWork(ctx) as uow:
        states = {(d.release_id, d.channel): d.state for d in uow.session.exec(
            select(Delivery).where(Delivery.release_id == rid))}
    assert set(states.values()) == {"withdrawn"}


def test_a_body_with_cr_lf_line_breaks_raises_nothing(ctx, channel):
    kinds = sorted(KINDS)
    platforms = {kind: channel(kind) for kind in kinds}
    publish(ctx, kinds, body="各市人民政府：\r\n\r\n请**认真贯彻落实**。\r\n\r\n特此通知。\r\n",
            overrides={"weibo": {"text": "微博第一行\r\n第二行"}})
    assert integrity.check(ctx) == []
    platforms["website"].site.crlf = True  # the same page, served with CR/LF line ends
    assert integrity.check(ctx) == []
    platforms["website"].site.served_with = SPAM  # but a change of content still counts
    assert len(integrity.check(ctx)) == 1


# --------------------------------------------------------------- what the public sees


def test_a_page_served_defaced_is_caught_though_the_file_is_intact(ctx, people, tmp_path):
    root = ctx.settings.resolved_site_root
    site = Site(root)
    with SandboxServer(site.app) as server:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website", {
                "web_root": str(root), "base_url": f"{server.url}/site"}, None, "admin_ops")
        rid = publish(ctx, ["website"])
        assert integrity.check(ctx) == []
        site.served_with = SPAM  # a compromised server or CDN: the disk is untouched
        alerts = integrity.check(ctx)
        assert len(alerts) == 1 and alerts[0]["release_id"] == rid and SPAM in alerts[0]["diff"]
        with UnitOfWork(ctx) as uow:
            events = uow.session.exec(select(AuditEvent).where(
                AuditEvent.action == "integrity.alert")).all()
        assert len(events) == 1 and SPAM in events[0].detail["diff"]
        (root / "articles" / f"{rid}.html").unlink()  # then the page is gone: 404
        assert len(integrity.check(ctx)) == 1


@pytest.mark.parametrize(("answer", "seen"), [
    (Response(status_code=302, headers={"location": "https://bet365.example/"}),
     "HTTP 302 → https://bet365.example/"),  # a hijacked server sends every reader away
    (Response(status_code=403), "HTTP 403"),
])
def test_a_page_answered_with_something_else_is_alerted_naming_it(ctx, people, answer, seen):
    root = ctx.settings.resolved_site_root
    site = Site(root)
    with SandboxServer(site.app) as server:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website", {
                "web_root": str(root), "base_url": f"{server.url}/site"}, None, "admin_ops")
        rid = publish(ctx, ["website"])
        assert integrity.check(ctx, every_seconds=0) == []
        site.answers_with = answer
        alerts = integrity.check(ctx, every_seconds=0)
        assert len(alerts) == 1 and alerts[0]["release_id"] == rid and seen in alerts[0]["diff"]
        for _ in range(12):  # an hour of rounds: the same finding, not twelve alerts
            clock.travel(300)
            assert integrity.check(ctx, every_seconds=0) == []


def test_a_page_unreadable_for_an_hour_is_alerted_a_moments_trouble_is_not(ctx, people):
    root = ctx.settings.resolved_site_root
    site = Site(root)
    with SandboxServer(site.app) as server:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website", {
                "web_root": str(root), "base_url": f"{server.url}/site"}, None, "admin_ops")
        rid = publish(ctx, ["website"])
        site.answers_with = Response(status_code=503)
        for _ in range(3):  # a quarter of an hour of server errors, then it answers again
            assert integrity.check(ctx, every_seconds=0) == []
            clock.travel(300)
        site.answers_with = None
        assert integrity.check(ctx, every_seconds=0) == []
        site.answers_with = Response(status_code=500)
        found = []
        for _ in range(13):  # the hour counts from the first error after the page was read
            found += integrity.check(ctx, every_seconds=0)
            clock.travel(300)
        assert len(found) == 1 and found[0]["release_id"] == rid and "HTTP 500" in found[0]["diff"]
        with UnitOfWork(ctx) as uow:
            assert uow.session.exec(select(AuditEvent).where(
                AuditEvent.action == "integrity.alert")).one().detail["diff"]


# --------------------------------------------------------------- off the scheduler's clock


def test_the_tick_reads_nothing_back_and_each_check_is_its_own_task(ctx, channel, monkeypatch):
    platform = channel("website")
    rid = publish(ctx, ["website"])
    platform.deface(delivery(ctx, rid, "website"))
    reads = []
    real = integrity.check_one
    monkeypatch.setitem(work.TASKS, integrity.TASK,
                        lambda c, delivery_id: reads.append(delivery_id) or real(c, delivery_id))
    hourly = Context(ctx.engine, Settings(**{**ctx.settings.model_dump(),
                                             "integrity_interval_seconds": 3600}), ctx.queue)
    counts = scheduler.tick(hourly)
    assert counts["integrity"] == 1 and reads == []
    assert ctx.queue.sent == [("integrity", {"delivery_id": delivery(ctx, rid, "website").id})]
    with UnitOfWork(ctx) as uow:
        assert uow.session.exec(select(IntegrityAlert)).all() == []
    assert scheduler.tick(hourly)["integrity"] == 0  # sent once per round, not once per tick
    drain(ctx)
    assert reads == [delivery(ctx, rid, "website").id]
    assert [a["release_id"] for a in integrity.open_alerts(ctx)] == [rid]


def test_the_integrity_task_posts_its_alert_to_the_webhook(ctx, channel, monkeypatch):
    import threading

    from workers import queue as work_queue
    from workers import tasks

    received: list[dict] = []
    done = threading.Event()
    hook = FastAPI()

    @hook.post("/hook")
    async def receive(request: Request) -> dict:
        received.append(await request.json())
        done.set()
        return {"ok": True}

    platform = channel("website")
    rid = publish(ctx, ["website"])
    platform.deface(delivery(ctx, rid, "website"))
    with SandboxServer(hook) as server:
        settings = Settings(**{**ctx.settings.model_dump(),
                               "alert_webhook_url": f"{server.url}/hook",
                               "alert_webhook_secret": "whsec_" + "A" * 32})
        monkeypatch.setattr(tasks, "context", lambda: Context(ctx.engine, settings, ctx.queue))
        tasks.tasks["integrity"](delivery_id=delivery(ctx, rid, "website").id)
        assert "send_alerts" in [task for task, _ in ctx.queue.sent]  # the one alert outbox
        tasks.tasks["send_alerts"]()
        assert done.wait(5)
    assert received[0]["kind"] == "integrity" and received[0]["release_id"] == rid
    assert SPAM in received[0]["message"]
    tasks.tasks["send_alerts"]()  # told once: a second run sends nothing
    assert len(received) == 1
    sent = []
    monkeypatch.setattr(work_queue.CeleryQueue, "__init__", lambda self, s: None)
    q = work_queue.CeleryQueue(settings)
    q.app = type("App", (), {"send_task": lambda self, *a, **k: sent.append(k["queue"])})()
    q.send("integrity", priority="integrity", delivery_id=1)
    assert sent == ["integrity"]
    with pytest.raises(ValueError, match="no such task 'integrity_check'"):
        q.send("integrity_check", priority="integrity", delivery_id=1)  # would be lost
    assert sent == ["integrity"]


# --------------------------------------------------- a post marked published by hand

def marked_by_hand(ctx: Context, kind: str, url: Callable[[str], str]) -> tuple[int, int, str]:
    """A post that did go out, but the platform never said so: reconciliation leaves it
    needing a decision, and the channel admin finds it and gives its URL."""
    rid = publish(ctx, [kind])
    posted = delivery(ctx, rid, kind)
    real_id = posted.remote_id
    with UnitOfWork(ctx) as uow:  # what reconciliation leaves: no word from the platform
        row = uow.session.get(Delivery, posted.id)
        row.state, row.remote_id, row.receipt, row.url = "needs_decision", None, None, None
        uow.session.add(row)
        release = uow.session.get(Release, rid)
        release.state = "publishing"  # the release waits for the decision
        uow.session.add(release)
        uow.session.commit()
    with UnitOfWork(ctx) as uow:
        recovery.mark_published(uow, posted.id, "admin_ops", url(real_id))
    return rid, posted.id, real_id


def weibo_url(post_id: str) -> str:
    return f"https://weibo.com/5000000001/{post_id}"


def test_a_weibo_post_marked_published_by_hand_has_the_platforms_receipt(ctx, channel):
    channel("weibo")
    rid, did, real_id = marked_by_hand(ctx, "weibo", weibo_url)
    row = delivery(ctx, rid, "weibo")
    assert row.state == "published" and row.remote_id == real_id
    assert row.url == weibo_url(real_id) and row.receipt["details"]["marked_by"] == "admin_ops"


def test_a_weibo_post_marked_by_its_base62_link_gets_the_apis_id(ctx, channel):
    """weibo.com shows a post at /<uid>/<base62>: that link still names the post the API
    withdraws and the integrity watch reads back."""
    channel("weibo")
    rid, did, real_id = marked_by_hand(ctx, "weibo", lambda i: weibo_url(weibo_mid(i)))
    row = delivery(ctx, rid, "weibo")
    assert weibo_mid(real_id) != real_id
    assert row.state == "published" and row.remote_id == real_id


@pytest.mark.parametrize("url", [
    "https://weibo.com/5000000002/4999",  # another account's post
    "https://weibo.com/5000000001/",  # no post
    "https://weibo.com/5000000001/4999/x",
    "https://mp.weixin.qq.com/s/AbC",  # another platform
])
def test_a_url_that_is_not_one_of_the_channels_own_posts_is_refused(ctx, channel, url):
    channel("weibo")
    with pytest.raises(InvalidInput, match="url"):
        marked_by_hand(ctx, "weibo", lambda _: url)


def test_withdrawing_takes_down_a_post_marked_published_by_hand(ctx, channel):
    """The receipt once said `manual:N`: Weibo was asked to destroy that, answered 20101,
    the release said withdrawn and the post stayed live."""
    sandbox = channel("weibo").sandbox
    rid, did, real_id = marked_by_hand(ctx, "weibo", weibo_url)
    with UnitOfWork(ctx) as uow:
        corrections.withdraw(uow, rid, "leader", "信息有误")
    drain(ctx)
    live = [p for p in sandbox.posts if str(p["id"]) == real_id and not p.get("deleted")]
    assert live == [] and delivery(ctx, rid, "weibo").state == "withdrawn"


def test_a_post_marked_published_by_hand_is_watched_without_false_alarm(ctx, channel):
    platform = channel("weibo")
    rid, did, real_id = marked_by_hand(ctx, "weibo", weibo_url)
    assert integrity.check(ctx, every_seconds=0) == []
    platform.deface(delivery(ctx, rid, "weibo"))  # a real defacement is still caught
    alerts = integrity.check(ctx, every_seconds=0)
    assert [(a["release_id"], a["channel"]) for a in alerts] == [(rid, "weibo")]


def test_a_post_no_platform_id_names_is_never_reported_withdrawn(ctx, people, memory_channels):
    """A kind that cannot tell its post from a URL keeps a `manual:` receipt: withdrawal then
    says a person must take it down, and the watch does not read it by a made-up id."""
    rid, did, _ = marked_by_hand(ctx, "alpha", lambda _: "https://weibo.com/1/AbC")
    assert delivery(ctx, rid, "alpha").remote_id == f"manual:{did}"
    assert integrity.check(ctx, every_seconds=0) == []
    with UnitOfWork(ctx) as uow:
        corrections.withdraw(uow, rid, "leader", "信息有误")
    drain(ctx)
    row = delivery(ctx, rid, "alpha")
    assert row.state == "published" and row.last_error_code == "manual_receipt"
    assert "by hand" in row.last_error
