"""One release from submission through sign-off to every channel, with real worker processes.

Runs on the embedded default (SQLite + filesystem broker) and on PostgreSQL + Redis.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from contextlib import ExitStack

import pytest
import requests

from orchestrator.bootstrap import installed_context
from orchestrator.cli.stack import worker_command
from orchestrator.settings import Settings
from orchestrator.usecases import channels, deliveries, releases, review, users
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import services
from tests.conftest import PEOPLE, release_input

pytestmark = pytest.mark.integration
ACCOUNTS = {"5000000001": "tok-office", "5000000002": "tok-press"}


@pytest.fixture(params=["embedded", "postgres-redis"])
def backend(request, tmp_path):
    with ExitStack() as stack:
        env = {"TONGFA_VAR_DIR": str(tmp_path),
               "TONGFA_SITE_BASE_URL": "http://127.0.0.1:8000/site"}
        if request.param == "postgres-redis":
            env["TONGFA_DATABASE_URL"] = stack.enter_context(services.fresh_postgres_database())
            env["TONGFA_BROKER_URL"] = services.redis_url(db=7)
            import redis

            redis.Redis.from_url(env["TONGFA_BROKER_URL"]).flushdb()
        yield env


@pytest.fixture
def weibo_sandbox():
    from channels.sandbox.server import SandboxServer
    from channels.sandbox.weibo import create_app

    with SandboxServer(create_app(accounts=ACCOUNTS, safe_domain="127.0.0.1")) as server:
        yield server.url


def start_workers(env: dict[str, str], count: int = 2) -> list[subprocess.Popen]:
    full = {**os.environ, **env}
    return [subprocess.Popen(worker_command(f"e2e{i}-{uuid.uuid4().hex[:6]}"), env=full)
            for i in range(count)]


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_release_reaches_every_channel_once(backend, weibo_sandbox, tmp_path):
    settings = Settings(**{k.removeprefix("TONGFA_").lower(): v for k, v in backend.items()})
    ctx = installed_context(settings)
    for name, roles in PEOPLE.items():
        with UnitOfWork(ctx) as uow:
            users.add_user(uow, name, roles)
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "website", "website",
                              {"web_root": str(settings.resolved_site_root),
                               "base_url": settings.site_base_url}, None, "admin_ops")
    for (uid, token), name in zip(ACCOUNTS.items(), ("weibo-office", "weibo-press"), strict=False):
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, "weibo",
                                  {"api_base": weibo_sandbox, "safe_domain": "127.0.0.1", "uid": uid,
                                   "sandbox": True},
                                  {"access_token": token}, "admin_ops")
    targets = ["website", "weibo-office", "weibo-press"]
    workers = start_workers(backend)
    try:
        with UnitOfWork(ctx) as uow:
            rid = releases.create(uow, release_input(channels=targets), "press")
        with UnitOfWork(ctx) as uow:
            releases.submit(uow, rid, "press")
        for signer in ("reviewer", "secrecy", "leader"):
            with UnitOfWork(ctx) as uow:
                review.approve(uow, rid, signer)

        def finished():
            with UnitOfWork(ctx) as uow:
                release = releases.get_release(uow.session, rid)
                return release if release.state in ("published", "partially_published", "failed") else None

        release = wait_for(finished, what="the release to finish")
        assert release.state == "published", release.state_reason
        assert release.spread_ms is not None and release.spread_ms >= 0

        # a duplicated task (the same delivery enqueued again) publishes nothing more
        with UnitOfWork(ctx) as uow:
            rows = deliveries.for_release(uow.session, rid)
        for row in rows:
            ctx.queue.send("stage", priority="normal", delivery_id=row.id)
            ctx.queue.send("publish", priority="normal", delivery_id=row.id)
        ctx.queue.send("fire", priority="normal", release_id=rid)
        time.sleep(2.0)

        posts = requests.get(f"{weibo_sandbox}/_sandbox/posts", timeout=5).json()
        posts = posts.get("posts", posts) if isinstance(posts, dict) else posts
        mine = [p for p in posts if f"/articles/{rid}.html" in p["sent_text"]]
        assert sorted(str(p.get("uid") or p.get("account")) for p in mine) == sorted(ACCOUNTS)
        page = settings.resolved_site_root / "articles" / f"{rid}.html"
        assert "关于做好冬季安全生产工作的通知" in page.read_text(encoding="utf-8")
        with UnitOfWork(ctx) as uow:
            views = [deliveries.as_dict(uow.session, d) for d in deliveries.for_release(uow.session, rid)]
        assert {v["channel"]: v["state"] for v in views} == dict.fromkeys(targets, "published")
        assert all(v["url"] and v["remote_id"] and v["published_at"] for v in views)
        assert all(len([a for a in v["attempt_log"] if a["phase"] == "publish"]) == 1 for v in views)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=20)
