"""Integrity watch: a page altered after publishing raises an alert with the diff."""

import threading

from fastapi import FastAPI, Request
from sqlmodel import select

from channels.sandbox.server import SandboxServer
from orchestrator.settings import Settings
from orchestrator.store.models import AuditEvent
from orchestrator.usecases import channels, integrity, releases, scheduler
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import approve_all, drain, release_input

SPAM = "<p>博彩 六合彩 网上赌场 百家乐 真人荷官 时时彩 北京赛车 体育投注</p>"


def publish_to_website(ctx, tmp_path):
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "website", "website", {"web_root": str(tmp_path / "site")},
                              None, "admin_ops")
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=["website"]), "press")
    approve_all(ctx, rid)
    drain(ctx)
    return rid, tmp_path / "site" / "articles" / f"{rid}.html"


def test_an_untouched_page_raises_nothing(ctx, people, tmp_path):
    publish_to_website(ctx, tmp_path)
    assert integrity.check(ctx, every_seconds=0) == []


def test_a_page_defaced_on_disk_raises_one_alert_with_the_diff(ctx, people, tmp_path):
    rid, page = publish_to_website(ctx, tmp_path)
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("<main>", "<main>" + SPAM), encoding="utf-8")
    alerts = integrity.check(ctx, every_seconds=0)
    assert len(alerts) == 1 and alerts[0]["release_id"] == rid
    assert "+" in alerts[0]["diff"] and SPAM in alerts[0]["diff"]
    assert integrity.check(ctx, every_seconds=0) == []  # the same defacement alerts once
    with UnitOfWork(ctx) as uow:
        events = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "integrity.alert")).all()
    assert len(events) == 1 and SPAM in events[0].detail["diff"]
    page.unlink()  # then the page disappears altogether
    assert len(integrity.check(ctx, every_seconds=0)) == 1


def test_the_scheduler_posts_alerts_to_the_webhook(ctx, people, tmp_path):
    received = []
    done = threading.Event()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request):
        received.append(await request.json())
        done.set()
        return {"ok": True}

    rid, page = publish_to_website(ctx, tmp_path)
    page.write_text(page.read_text(encoding="utf-8") + SPAM, encoding="utf-8")
    with SandboxServer(app) as server:
        settings = Settings(**{**ctx.settings.model_dump(), "alert_webhook_url": f"{server.url}/hook",
                               "alert_webhook_secret": "whsec_" + "A" * 32,
                               "outbound_allow": ("127.0.0.1",), "integrity_interval_seconds": 0})
        counts = scheduler.tick(Context(ctx.engine, settings, ctx.queue))
        assert counts["alerts"] == 1 and done.wait(5)
    assert received[0]["release_id"] == rid and SPAM in received[0]["diff"]
