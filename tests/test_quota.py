"""A channel account's posting quota holds across worker processes."""

import multiprocessing

import pytest
from sqlmodel import select

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ratelimit import RateLimit
from orchestrator.store.db import engine_for, upgrade
from orchestrator.store.models import Delivery
from orchestrator.usecases import channels, quota
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain
from tests.services import fresh_postgres_database

LIMIT = RateLimit(capacity=5, per_seconds=3600)


def _take_many(url: str, count: int, results) -> None:  # runs in another process
    from sqlmodel import Session

    engine = engine_for(url)
    taken = 0
    for _ in range(count):
        with Session(engine) as session:
            if quota.take(session, "weibo-office", LIMIT) == 0:
                taken += 1
            session.commit()
    results.put(taken)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_worker_processes_never_exceed_the_quota(backend, tmp_path):
    def run(url):
        upgrade(url)
        mp = multiprocessing.get_context("spawn")
        results = mp.Queue()
        procs = [mp.Process(target=_take_many, args=(url, 10, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert sum(results.get(timeout=5) for _ in procs) == 5

    if backend == "sqlite":
        run(f"sqlite:///{tmp_path / 'q.db'}")
    else:
        with fresh_postgres_database() as url:
            run(url)


def test_the_bucket_refills_and_says_how_long_to_wait():
    limit = RateLimit(capacity=30, per_seconds=3600)
    assert limit.wait_for_one(0) == pytest.approx(120)
    assert limit.refill(0, 240) == pytest.approx(2)
    assert limit.refill(29, 10_000) == 30


def test_an_over_quota_post_waits_for_its_window(ctx, new_release):
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "alpha", "memory",
                              {"account": "alpha", "rate": {"capacity": 1, "per_seconds": 3600}},
                              None, "admin_ops")
    first, second = new_release(), new_release(title="第二条通知")
    approve_all(ctx, first)
    drain(ctx)
    approve_all(ctx, second)
    drain(ctx)
    assert len(fakes.posts("alpha")) == 1 and len(fakes.posts("beta")) == 2
    with UnitOfWork(ctx) as uow:
        waiting = uow.session.exec(select(Delivery).where(
            Delivery.release_id == second, Delivery.channel == "alpha")).one()
    assert waiting.state == "staged" and waiting.next_attempt_at is not None


@pytest.mark.parametrize(("kind", "windows"), [
    ("weibo", [(3600, 30), (86400, 100)]),  # 10023 per hour, 10024 per day (the sandbox's rules)
    ("wechat", [(86400, 100)]),  # 45009 on freepublish/submit
])
def test_each_kinds_default_quota_keeps_within_the_platforms_limits(kind, windows):
    """Posting as fast as the default bucket allows, for three days, never reaches a limit."""
    from channels.registry import adapter_class

    limit = RateLimit.from_config(adapter_class(kind).default_rate)
    assert limit is not None
    tokens, now, sent = limit.capacity, 0.0, []
    while now < 3 * 86400:
        wait = limit.wait_for_one(tokens)
        now += wait
        tokens = limit.refill(tokens, wait) - 1
        sent.append(now)
    for seconds, most in windows:
        start = 0
        for end, at in enumerate(sent):
            while at - sent[start] >= seconds:
                start += 1
            assert end - start + 1 <= most, (kind, seconds, at)


def test_a_channel_without_a_rate_gets_its_kinds_default_and_null_turns_it_off(ctx, people):
    from channels.sandbox.server import SandboxServer
    from channels.sandbox.weibo import create_app

    with SandboxServer(create_app(accounts={"5000000001": "tok"})) as sandbox:
        config = {"api_base": sandbox.url, "safe_domain": "127.0.0.1", "sandbox": True}
        with UnitOfWork(ctx) as uow:
            plain = channels.save_channel(uow, "weibo-a", "weibo", config, {"access_token": "t"},
                                          "admin_ops")
            assert channels.posting_quota(plain) == RateLimit(10, 9600)
        with UnitOfWork(ctx) as uow:
            off = channels.save_channel(uow, "weibo-b", "weibo", {**config, "rate": None},
                                        {"access_token": "t"}, "admin_ops")
            assert channels.posting_quota(off) is None
        with UnitOfWork(ctx) as uow:
            own = channels.save_channel(uow, "weibo-c", "weibo",
                                        {**config, "rate": {"capacity": 2, "per_seconds": 60}},
                                        {"access_token": "t"}, "admin_ops")
            assert channels.posting_quota(own) == RateLimit(2, 60)


@pytest.mark.parametrize(("rate", "fields"), [
    ({"capacity": "x", "per_seconds": 60}, ["config.rate.capacity"]),
    ({"capacity": 5}, ["config.rate.per_seconds"]),
    ({"capacity": 0, "per_seconds": 0}, ["config.rate.capacity", "config.rate.per_seconds"]),
    ({"capacity": -3, "per_seconds": 60}, ["config.rate.capacity"]),
    ({"capacity": 3, "per_seconds": 60, "burst": 9}, ["config.rate.burst"]),
    ("lots", ["config.rate"]),
])
def test_a_bad_posting_quota_is_refused_when_saved_naming_the_key(ctx, rate, fields):
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as refused:
        channels.save_channel(uow, "alpha", "memory", {"account": "alpha", "rate": rate},
                              None, "admin_ops")
    assert [f for f, _ in refused.value.problems] == fields


def test_a_quota_edited_into_the_database_fails_only_its_channel(ctx, new_release):
    with UnitOfWork(ctx) as uow:  # past the check: written by hand in the database
        alpha = channels.get_channel(uow.session, "alpha")
        alpha.config = {**alpha.config, "rate": "lots"}
        uow.session.add(alpha)
        uow.commit()
    approve_all(ctx, new_release())
    drain(ctx)  # the go-live does not crash: beta goes out
    assert len(fakes.posts("beta")) == 1 and fakes.posts("alpha") == []
    with UnitOfWork(ctx) as uow:
        alpha = uow.session.exec(select(Delivery).where(Delivery.channel == "alpha")).one()
    assert alpha.state == "failed" and "rate" in alpha.last_error
