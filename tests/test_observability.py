"""Metrics computed from the database, readiness against real brokers, JSON log lines."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import func, select

from orchestrator import observability
from orchestrator.bootstrap import make_app
from orchestrator.domain import clock
from orchestrator.settings import Settings
from orchestrator.store.models import AuditEvent, Delivery, DeliveryAttempt, Release
from orchestrator.usecases import releases, review, scheduler
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import services
from tests.conftest import approve_all, drain

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(ctx: Context) -> Samples:
    body, content_type = observability.exposition(ctx)
    assert content_type.startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a series over every label not given."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def rows(ctx: Context, model: type, *where: object) -> int:
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(func.count()).select_from(model).where(*where)).one()


def settings_with(tmp_path: Path, ctx: Context, broker_url: str) -> Context:
    settings = Settings(var_dir=tmp_path, database_url=str(ctx.settings.database_url),
                        broker_url=broker_url, _env_file=None)
    return Context(ctx.engine, settings, ctx.queue)


# ------------------------------------------------------------------ metrics


def test_a_published_release_shows_in_every_series(ctx, new_release):
    rid = new_release()
    assert approve_all(ctx, rid) == "approved"
    drain(ctx)
    samples = scrape(ctx)

    for channel in ("alpha", "beta"):
        assert value(samples, "tongfa_deliveries", channel=channel, state="published") == 1
        assert value(samples, "tongfa_deliveries", channel=channel, state="failed") == 0
    assert total(samples, "tongfa_deliveries", state="published") == 2
    assert total(samples, "tongfa_deliveries") == 2
    assert value(samples, "tongfa_releases", state="published") == 1

    attempts = rows(ctx, DeliveryAttempt)
    assert attempts >= 4  # at least a stage and a publish per channel
    assert total(samples, "tongfa_delivery_attempts_total") == attempts
    assert total(samples, "tongfa_delivery_attempts_total", channel="alpha", phase="publish",
                 outcome="ok") == 1
    assert total(samples, "tongfa_delivery_attempt_duration_seconds_count") == attempts
    with UnitOfWork(ctx) as uow:
        duration_ms = uow.session.exec(select(func.sum(DeliveryAttempt.duration_ms))).one()
        spread_ms = uow.session.get(Release, rid).spread_ms
    assert total(samples, "tongfa_delivery_attempt_duration_seconds_sum") == pytest.approx(
        duration_ms / 1000)
    assert spread_ms is not None
    assert value(samples, "tongfa_golive_spread_seconds_count") == 1
    assert value(samples, "tongfa_golive_spread_seconds_sum") == pytest.approx(spread_ms / 1000)
    assert value(samples, "tongfa_queue_depth", queue="normal") == 0
    assert value(samples, "tongfa_queue_depth", queue="urgent") == 0
    assert value(samples, "tongfa_reaper_redrives_total") == 0
    assert value(samples, "tongfa_integrity_alerts_open") == 0


def test_histogram_buckets_are_cumulative_and_bounds_inclusive(ctx, new_release):
    approve_all(ctx, new_release())
    drain(ctx)
    now = clock.utcnow()
    with UnitOfWork(ctx) as uow:  # slow attempts, as a real platform would take
        alpha = uow.session.exec(select(Delivery).where(Delivery.channel == "alpha")).one()
        for number, ms in enumerate((50.0, 120.0, 3000.0, 200_000.0), start=10):
            uow.session.add(DeliveryAttempt(delivery_id=alpha.id, number=number, phase="publish",
                                            started_at=now, ended_at=now, duration_ms=ms,
                                            outcome="retryable"))
        uow.session.commit()
    samples = scrape(ctx)

    def bucket(le: str) -> float:
        return value(samples, "tongfa_delivery_attempt_duration_seconds_bucket",
                     channel="alpha", phase="publish", le=le)

    # the memory adapter's own publish took well under 50 ms; 50 ms sits on its bound
    assert [bucket(le) for le in ("0.05", "0.1", "0.25", "2.5", "5.0", "120.0", "+Inf")] == \
        [2, 2, 3, 3, 4, 4, 5]
    assert value(samples, "tongfa_delivery_attempt_duration_seconds_count", channel="alpha",
                 phase="publish") == 5
    assert value(samples, "tongfa_delivery_attempts_total", channel="alpha", phase="publish",
                 outcome="retryable") == 4
    series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for (name, labels), v in samples.items():
        if name == "tongfa_delivery_attempt_duration_seconds_bucket":
            ls = dict(labels)
            series[(ls["channel"], ls["phase"])].append((float(ls["le"]), v))
    assert set(series) == {(c, p) for c in ("alpha", "beta") for p in ("stage", "publish")}
    for (channel, phase), buckets in series.items():
        counts = [v for _, v in sorted(buckets)]
        assert counts == sorted(counts)  # cumulative
        assert counts[-1] == value(samples, "tongfa_delivery_attempt_duration_seconds_count",
                                   channel=channel, phase=phase)


def test_queue_depth_is_owed_work_by_the_queue_its_release_uses(ctx, new_release):
    scheduled = new_release(go_live_at=(clock.utcnow() + dt.timedelta(hours=1)).isoformat())
    assert approve_all(ctx, scheduled) == "scheduled"
    drain(ctx)  # staged, waiting for the go-live: still owed
    urgent = new_release(priority="urgent")
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, urgent, "press")
    for signer in ("secrecy", "leader"):  # the fast track
        with UnitOfWork(ctx) as uow:
            review.approve(uow, urgent, signer)
    # nothing drained for the urgent one: its deliveries wait in the database
    samples = scrape(ctx)
    assert value(samples, "tongfa_queue_depth", queue="normal") == 2
    assert value(samples, "tongfa_queue_depth", queue="urgent") == 2
    assert total(samples, "tongfa_deliveries", state="staged") == 2


def test_a_reaped_lease_counts_as_a_redrive(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    with UnitOfWork(ctx) as uow:  # what a worker killed mid-claim leaves behind
        uow.session.execute(update(Delivery).where(Delivery.channel == "alpha").values(
            state="staging", lease_until=clock.utcnow() - dt.timedelta(seconds=1)))
        uow.session.commit()
    assert scheduler.tick(ctx)["expired"] == 1
    assert rows(ctx, AuditEvent, AuditEvent.action == "delivery.lease_expired") == 1
    assert value(scrape(ctx), "tongfa_reaper_redrives_total") == 1


def test_scheduler_lease_gauge_and_liveness(ctx):
    assert not observability.scheduler_alive(ctx)
    assert ("tongfa_scheduler_lease_remaining_seconds", frozenset()) not in scrape(ctx)
    assert scheduler.hold_lease(ctx, "test-holder", ttl=10)
    assert observability.scheduler_alive(ctx)
    assert 0 < value(scrape(ctx), "tongfa_scheduler_lease_remaining_seconds") <= 10
    clock.travel(60)
    assert not observability.scheduler_alive(ctx)


def test_the_api_serves_metrics_and_readiness_with_the_documented_lines(ctx, new_release):
    """The lines docs/deploy.md asks orchestrator/api/app.py to add, applied here verbatim."""
    approve_all(ctx, new_release())
    drain(ctx)
    app = make_app(ctx)
    app.add_route("/metrics", observability.metrics_app(ctx), include_in_schema=False)

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        report = observability.readiness(ctx)
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    client = TestClient(app)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'tongfa_deliveries{channel="alpha",state="published"} 1.0' in response.text
    ready = client.get("/readyz")  # SQLite + the embedded filesystem broker
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_scrapes_within_the_cache_window_reuse_one_computation(ctx, new_release):
    collector = observability.DatabaseCollector(ctx, cache_seconds=60)
    first = list(collector.collect())
    approve_all(ctx, new_release())
    drain(ctx)
    assert list(collector.collect()) == first  # cached: no new queries
    fresh = observability.DatabaseCollector(ctx, cache_seconds=0)
    assert list(fresh.collect()) != first


# ------------------------------------------------------------------ readiness


def test_ready_against_the_real_redis(ctx, tmp_path):
    redis_ctx = settings_with(tmp_path, ctx, services.redis_url(db=11))
    report = observability.readiness(redis_ctx)
    assert report["ready"] is True, report
    assert report["checks"]["database"]["ok"] and report["checks"]["broker"]["ok"]


def test_a_refused_broker_is_not_ready_and_its_password_is_not_shown(ctx, tmp_path):
    for url in ("redis://:s3cret-pw@127.0.0.1:1/0", "amqp://tongfa:s3cret-pw@127.0.0.1:1//"):
        report = observability.readiness(settings_with(tmp_path, ctx, url), timeout=1.0)
        assert report["ready"] is False
        assert report["checks"]["database"]["ok"] is True
        broker = report["checks"]["broker"]
        assert broker["ok"] is False and "refused" in broker["error"].lower(), broker
        assert "s3cret-pw" not in json.dumps(report)


def test_broker_queue_length_comes_from_the_redis_lists(ctx, tmp_path):
    import redis

    from workers.celery_app import make_app

    url = services.redis_url(db=11)
    client = redis.Redis.from_url(url)  # db 11 is this test's own

    def clean() -> None:
        client.delete("normal", "urgent", *client.keys("_kombu.binding*"))

    clean()
    redis_ctx = settings_with(tmp_path, ctx, url)
    try:
        celery = make_app(redis_ctx.settings)
        celery.send_task("tongfa.stage", kwargs={"delivery_id": 1}, queue="normal")
        celery.send_task("tongfa.stage", kwargs={"delivery_id": 2}, queue="normal")
        celery.send_task("tongfa.stage", kwargs={"delivery_id": 3}, queue="urgent")
        samples = scrape(redis_ctx)
        assert value(samples, "tongfa_broker_queue_length", queue="normal") == 2
        assert value(samples, "tongfa_broker_queue_length", queue="urgent") == 1
    finally:
        clean()
    # not Redis: the series is simply absent, the rest is served
    assert total(scrape(ctx), "tongfa_broker_queue_length") == 0


def test_healthcheck_commands_for_containers(tmp_path):
    env = {**os.environ, "TONGFA_VAR_DIR": str(tmp_path)}
    env.pop("TONGFA_DATABASE_URL", None)
    env.pop("TONGFA_BROKER_URL", None)
    command = [sys.executable, "-m", "orchestrator.observability"]
    ready = subprocess.run([*command, "ready"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout)["ready"] is True
    alive = subprocess.run([*command, "scheduler"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert alive.returncode == 1 and "no scheduler" in alive.stdout  # none is running


# ------------------------------------------------------------------ logs


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """configure_logging on a string stream; the logging setup is put back afterwards."""
    root = logging.getLogger()
    uvicorn = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, list(lg.handlers), lg.propagate, lg.level, lg.disabled) for lg in uvicorn]
    for logger in uvicorn:  # as uvicorn leaves them at its default --log-level info
        logger.setLevel(logging.INFO)
        logger.disabled = False
    level, stream = root.level, io.StringIO()
    handler = observability.configure_logging("DEBUG", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
    for logger, handlers, propagate, was_level, disabled in saved:
        logger.handlers[:], logger.propagate, logger.disabled = handlers, propagate, disabled
        logger.setLevel(was_level)


def test_log_lines_are_json_with_ids_and_secrets_cut_out(json_log):
    log = logging.getLogger("tongfa.test")
    log.info("weibo said %s", "access_token=abc123 bad", extra={"release_id": 7,
                                                                "delivery_id": 12})
    log.warning("cannot reach redis://:hunter2@redis:6379/0")
    try:
        raise RuntimeError("Bearer eyJsecret")
    except RuntimeError:
        log.exception("publish failed", extra={"delivery_id": 3})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert {"time", "level", "logger", "message"} <= first.keys()
    assert first["level"] == "INFO" and first["logger"] == "tongfa.test"
    assert first["release_id"] == 7 and first["delivery_id"] == 12
    assert first["message"] == "weibo said access_token=*** bad"
    dt.datetime.fromisoformat(first["time"])
    assert "release_id" not in lines[1] and "hunter2" not in lines[1]["message"]
    assert lines[2]["delivery_id"] == 3 and "Traceback" in lines[2]["exception"]
    text = json_log.getvalue()
    assert "abc123" not in text and "hunter2" not in text and "eyJsecret" not in text


def test_uvicorn_logs_flow_into_the_json_handler(json_log):
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /healthz" 200')
    line = json.loads(json_log.getvalue().splitlines()[-1])
    assert line["logger"] == "uvicorn.access" and "/healthz" in line["message"]


def test_configuring_twice_keeps_one_handler(json_log):
    root = logging.getLogger()
    again = observability.configure_logging("INFO", stream=json_log)
    try:
        assert sum(getattr(h, "tongfa_json", False) for h in root.handlers) == 1
    finally:
        root.removeHandler(again)
