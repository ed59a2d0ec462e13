"""Corrections and withdrawals reach every channel, each by its own strategy."""

import pytest
import requests

from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app
from orchestrator.domain.errors import Forbidden, InvalidInput
from orchestrator.usecases import channels, corrections, releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain, release_input


@pytest.fixture
def live_channels(ctx, people, tmp_path):
    with SandboxServer(create_app(accounts={"5000000001": "tok"})) as sandbox:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website", {"web_root": str(tmp_path / "site")},
                                  None, "admin_ops")
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "weibo", "weibo", {"api_base": sandbox.url,
                                  "safe_domain": "127.0.0.1", "uid": "5000000001",
                                   "sandbox": True},
                                  {"access_token": "tok"}, "admin_ops")
        yield sandbox.url, tmp_path / "site"


def publish(ctx, **changes):
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=["website", "weibo"], **changes), "press")
    approve_all(ctx, rid)
    drain(ctx)
    return rid


def posts(url):
    return requests.get(f"{url}/_sandbox/posts", timeout=5).json()


def test_a_correction_replaces_the_page_and_posts_a_notice_on_weibo(ctx, live_channels):
    sandbox, site = live_channels
    original = publish(ctx)
    fix = publish(ctx, corrects=original, title="关于做好冬季安全生产工作的通知",
                  summary="第三条时限更正为12月31日。", body="各市人民政府：\n\n时限为**12月31日**。")
    with UnitOfWork(ctx) as uow:
        assert releases.get_release(uow.session, fix).state == "published"
        plan = {s["channel"]: s["strategy"] for s in
                corrections.plan(ctx.settings, uow.session, releases.get_release(uow.session, fix))}
    assert "replace" in plan["website"] and "correction notice" in plan["weibo"]
    page = (site / "articles" / f"{original}.html").read_text(encoding="utf-8")
    assert "12月31日" in page and "本文已更正" in page
    assert not (site / "articles" / f"{fix}.html").exists()
    feed = (site / "feed.atom").read_text(encoding="utf-8")
    assert feed.count(f"/articles/{original}.html</id>") == 1
    texts = [p["sent_text"] for p in posts(sandbox)]  # what we sent, before t.cn
    assert len(texts) == 2 and texts[1].startswith("【更正】")
    assert f"/articles/{original}.html#correction-{fix}" in texts[1]


def test_a_correction_must_correct_something_published(ctx, live_channels):
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="corrects"):
        releases.create(uow, release_input(channels=["website"], corrects=999), "press")


def test_a_withdrawal_takes_it_down_everywhere(ctx, live_channels):
    sandbox, site = live_channels
    rid = publish(ctx)
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        corrections.withdraw(uow, rid, "press", "误发")
    with UnitOfWork(ctx) as uow:
        assert corrections.withdraw(uow, rid, "leader", "信息有误，撤回") == 2
    drain(ctx)
    assert "本信息已撤回" in (site / "articles" / f"{rid}.html").read_text(encoding="utf-8")
    assert all(p["deleted"] for p in posts(sandbox))
    from orchestrator.usecases import deliveries

    with UnitOfWork(ctx) as uow:
        states = {d.channel: d.state for d in deliveries.for_release(uow.session, rid)}
        assert releases.get_release(uow.session, rid).state == "withdrawn"
    assert states == {"website": "withdrawn", "weibo": "withdrawn"}
