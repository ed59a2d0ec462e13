"""Operations: Prometheus metrics read from the database, readiness, JSON logs.

Why the metrics come from the database: API processes, worker containers and the
scheduler are separate processes, often on separate hosts. Counters kept in memory
would each see a slice of the work and reset on every restart. The database already
records every delivery, every attempt and every reaper action (it is the source of
truth), so whichever API process Prometheus scrapes computes the same totals, and
they survive restarts. The price is a few aggregate queries per scrape; results are
cached for a few seconds so that several scrapers do not multiply that cost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import IO, Any

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, case, func, select, text

from orchestrator.domain.clock import utcnow
from orchestrator.domain.redaction import redact_text
from orchestrator.domain.states import TERMINAL_DELIVERY_STATES, DeliveryState
from orchestrator.store import models
from orchestrator.usecases.unit_of_work import QUEUES, Context

log = logging.getLogger(__name__)

# kombu's Redis transport keeps one list per queue and priority step; step 0 is the bare name
REDIS_PRIORITY_SEP, REDIS_PRIORITY_STEPS = "\x06\x16", (3, 6, 9)
ATTEMPT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)  # seconds
SPREAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
LEASE_EXPIRED = "delivery.lease_expired"  # the audit action the scheduler's reaper writes
REDRIVES_HELP = f"Claimed deliveries whose lease ran out, taken back by the reaper ({LEASE_EXPIRED})"
ALERTS_HELP = "Unresolved: published items no longer showing what was approved (defaced, removed)"
LEASE_HELP = "Until the scheduler lease lapses; renewed every tick: well below 0 = no scheduler"

# the tables, for aggregate queries in SQLAlchemy Core
d, a, r, events, alerts, lease, channels = (m.__table__ for m in (  # type: ignore[attr-defined]
    models.Delivery, models.DeliveryAttempt, models.Release, models.AuditEvent,
    models.IntegrityAlert, models.SchedulerLease, models.ChannelInstance))


# ------------------------------------------------------------------ metrics


class DatabaseCollector(Collector):
    """Every tongfa_* series, computed with SQL when Prometheus scrapes."""

    def __init__(self, ctx: Context, cache_seconds: float = 5.0, broker: bool = True) -> None:
        self.ctx, self.cache_seconds, self.broker = ctx, cache_seconds, broker
        self._lock, self._at, self._redis = threading.Lock(), 0.0, None
        self._cached: list[Metric] | None = None

    def describe(self) -> list[Metric]:
        return []  # no query at registration time: the database may not be up yet

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._at >= self.cache_seconds:
                self._cached, self._at = self._compute(), now
            return iter(list(self._cached))

    def _compute(self) -> list[Metric]:
        with self.ctx.engine.connect() as conn:
            metrics = [_deliveries(conn), _attempts(conn), _attempt_durations(conn),
                       _golive_spread(conn), _queue_depth(conn), _releases(conn), _count(
                           conn, CounterMetricFamily("tongfa_reaper_redrives", REDRIVES_HELP),
                           events, events.c.action == LEASE_EXPIRED), _count(
                           conn, GaugeMetricFamily("tongfa_integrity_alerts_open", ALERTS_HELP),
                           alerts, alerts.c.resolved.is_(False))]
            remaining = _lease_remaining(conn)
        if remaining is not None:
            held = GaugeMetricFamily("tongfa_scheduler_lease_remaining_seconds", LEASE_HELP)
            held.add_metric([], remaining)
            metrics.append(held)
        if self.broker and (broker := self._broker_lengths()) is not None:
            metrics.append(broker)
        return metrics

    def _broker_lengths(self) -> Metric | None:
        """LLEN of the Celery lists when the broker is Redis: cheap, and optional by design."""
        url = self.ctx.settings.resolved_broker_url
        if not url.startswith(("redis://", "rediss://")):
            return None
        try:
            import redis

            if self._redis is None:
                self._redis = redis.Redis.from_url(url, socket_timeout=0.5,
                                                   socket_connect_timeout=0.5)
            pipe = self._redis.pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
                for step in REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{REDIS_PRIORITY_SEP}{step}")
            lengths = pipe.execute()
        except Exception as exc:  # the database series are still worth serving
            log.warning("broker queue lengths unavailable: %s", _scrub(str(exc)))
            return None
        family = GaugeMetricFamily(
            "tongfa_broker_queue_length",
            "Messages waiting in the Redis broker list of each Celery queue (ids only; "
            "the database's tongfa_queue_depth is what is actually owed)", labels=["queue"])
        per_queue = 1 + len(REDIS_PRIORITY_STEPS)
        for i, queue in enumerate(QUEUES):
            family.add_metric([queue], float(sum(lengths[i * per_queue:(i + 1) * per_queue])))
        return family


def _deliveries(conn: Connection) -> Metric:
    family = GaugeMetricFamily("tongfa_deliveries", "Deliveries by channel and state",
                               labels=["channel", "state"])
    counts = {(ch, st): n for ch, st, n in conn.execute(
        select(d.c.channel, d.c.state, func.count()).group_by(d.c.channel, d.c.state))}
    names = {ch for ch, _ in counts} | set(conn.execute(select(channels.c.name)).scalars())
    states = [s.value for s in DeliveryState] + sorted({st for _, st in counts} - set(DeliveryState))
    for channel in sorted(names):  # zeros too: a series must not vanish when it empties
        for state in states:
            family.add_metric([channel, state], float(counts.get((channel, state), 0)))
    return family


def _attempts(conn: Connection) -> Metric:
    family = CounterMetricFamily("tongfa_delivery_attempts", "Delivery attempts by channel, "
                                 "phase and outcome", labels=["channel", "phase", "outcome"])
    rows = conn.execute(
        select(d.c.channel, a.c.phase, a.c.outcome, func.count())
        .select_from(a.join(d, d.c.id == a.c.delivery_id))
        .group_by(d.c.channel, a.c.phase, a.c.outcome).order_by(d.c.channel, a.c.phase))
    for channel, phase, outcome, n in rows:
        family.add_metric([channel, phase, outcome], float(n))
    return family


def _histogram_columns(column: Any, buckets: Iterable[float]) -> list[Any]:
    """SUM(CASE WHEN ms <= bound) per bucket, COUNT, SUM: a histogram in one aggregate pass."""
    return [func.sum(case((column <= round(b * 1000, 6), 1), else_=0)) for b in buckets] + [
        func.count(), func.coalesce(func.sum(column), 0.0)]


def _buckets(values: Any, bounds: tuple[float, ...]) -> tuple[list[tuple[str, float]], float]:
    *cumulative, count, total_ms = values
    buckets = [(str(b), float(n or 0)) for b, n in zip(bounds, cumulative, strict=True)]
    return buckets + [("+Inf", float(count))], float(total_ms or 0) / 1000.0


def _attempt_durations(conn: Connection) -> Metric:
    family = HistogramMetricFamily(
        "tongfa_delivery_attempt_duration_seconds",
        "How long each delivery attempt took (delivery_attempt.duration_ms)",
        labels=["channel", "phase"])
    rows = conn.execute(
        select(d.c.channel, a.c.phase, *_histogram_columns(a.c.duration_ms, ATTEMPT_BUCKETS))
        .select_from(a.join(d, d.c.id == a.c.delivery_id))
        .group_by(d.c.channel, a.c.phase).order_by(d.c.channel, a.c.phase))
    for channel, phase, *values in rows:
        buckets, total = _buckets(values, ATTEMPT_BUCKETS)
        family.add_metric([channel, phase], buckets, total)
    return family


def _golive_spread(conn: Connection) -> Metric:
    family = HistogramMetricFamily(
        "tongfa_golive_spread_seconds",
        "Per release, first to last channel live (release.spread_ms): the 'same moment' promise")
    values = conn.execute(select(*_histogram_columns(r.c.spread_ms, SPREAD_BUCKETS))
                          .where(r.c.spread_ms.is_not(None))).one()
    buckets, total = _buckets(values, SPREAD_BUCKETS)
    family.add_metric([], buckets, total)
    return family


def _queue_depth(conn: Connection) -> Metric:
    family = GaugeMetricFamily(
        "tongfa_queue_depth", "Deliveries of the current revision not yet in a terminal state "
        "(including staged ones waiting for their go-live; not those that wait for a person's "
        "decision, which tongfa_deliveries{state=\"needs_decision\"} counts), by the queue "
        "their release uses",
        labels=["queue"])
    depth = dict.fromkeys(QUEUES, 0)
    for priority, n in conn.execute(
            select(r.c.priority, func.count()).select_from(d.join(r, r.c.id == d.c.release_id))
            .where(d.c.state.not_in([s.value for s in TERMINAL_DELIVERY_STATES]
                                    + [DeliveryState.NEEDS_DECISION.value]),
                   d.c.revision == r.c.revision).group_by(r.c.priority)):
        depth["urgent" if priority == "urgent" else "normal"] += n  # as workers/queue.py routes
    for queue in QUEUES:
        family.add_metric([queue], float(depth[queue]))
    return family


def _count(conn: Connection, family: Any, table: Any, where: Any) -> Metric:
    family.add_metric([], float(conn.execute(
        select(func.count()).select_from(table).where(where)).scalar_one()))
    return family


def _releases(conn: Connection) -> Metric:
    family = GaugeMetricFamily("tongfa_releases", "Releases by state", labels=["state"])
    for state, n in conn.execute(select(r.c.state, func.count()).group_by(r.c.state)):
        family.add_metric([state], float(n))
    return family


def _lease_remaining(conn: Connection) -> float | None:
    expires = conn.execute(select(lease.c.expires_at)
                           .where(lease.c.name == "scheduler")).scalar_one_or_none()
    if expires is None:
        return None
    if expires.tzinfo is None:  # SQLite hands back what was stored: UTC
        expires = expires.replace(tzinfo=dt.UTC)
    return (expires - utcnow()).total_seconds()


def exposition(ctx: Context) -> tuple[bytes, str]:
    """The metrics page now (body, content type), uncached: for tests and one-off use."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(ctx, cache_seconds=0.0))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsApp:
    """An ASGI app serving the exposition; the queries run in a thread, off the event loop."""

    def __init__(self, ctx: Context, cache_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DatabaseCollector(ctx, cache_seconds=cache_seconds))

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        status, content_type = 200, CONTENT_TYPE_LATEST
        try:
            body = await anyio.to_thread.run_sync(generate_latest, self.registry)
        except Exception as exc:  # Prometheus records the failed scrape as up == 0
            log.exception("metrics scrape failed")
            status, content_type = 503, "text/plain; charset=utf-8"
            body = f"metrics unavailable: {_scrub(type(exc).__name__ + ': ' + str(exc))}\n".encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def metrics_app(ctx: Context, cache_seconds: float = 5.0) -> MetricsApp:
    """For `app.add_route("/metrics", metrics_app(ctx))` in orchestrator/api/app.py."""
    return MetricsApp(ctx, cache_seconds)


# ------------------------------------------------------------------ readiness


def _select_one(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker_ping(url: str, timeout: float) -> None:
    from kombu import Connection as BrokerConnection

    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with BrokerConnection(url, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                               interval_max=0, timeout=timeout)


def readiness(ctx: Context, timeout: float = 2.0) -> dict[str, Any]:
    """Can this process do its work now: database answers SELECT 1, broker accepts a connection.

    Liveness (/healthz) only says the process runs; readiness is what a load balancer
    or an orchestrator should route on. Both checks run in parallel and are bounded by
    `timeout`, so a black-holed host cannot hang the probe.
    """
    checks: dict[str, Callable[[], None]] = {"database": lambda: _select_one(ctx), "broker": (
        lambda: _broker_ping(ctx.settings.resolved_broker_url, timeout))}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    started = time.monotonic()
    futures = {name: pool.submit(fn) for name, fn in checks.items()}
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, timeout + 0.5 - (time.monotonic() - started)))
            results[name] = {"ok": True}
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"no answer within {timeout:g}s"}
        except Exception as exc:
            results[name] = {"ok": False, "error": _scrub(f"{type(exc).__name__}: {exc}")}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    pool.shutdown(wait=False)
    return {"ready": all(c["ok"] for c in results.values()), "checks": results}


def scheduler_alive(ctx: Context, slack_seconds: float = 30.0) -> bool:
    """Some scheduler renewed its lease recently (a long tick may overrun the ttl a little)."""
    with ctx.engine.connect() as conn:
        remaining = _lease_remaining(conn)
    return remaining is not None and remaining > -slack_seconds


# ------------------------------------------------------------------ logs

LOG_FIELDS = ("release_id", "delivery_id", "channel")  # taken from `extra=` when given


def _scrub(message: str) -> str:
    """Secrets out of text that leaves the process: tokens (redact_text) and URL passwords."""
    return redact_text(message)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so a log shipper can index release_id and delivery_id.

    Every message goes through the project's redaction: an adapter's error text may
    quote a token, and log lines leave the machine.
    """

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        entry: dict[str, Any] = {"time": when, "level": record.levelname, "logger": record.name,
                                 "message": _scrub(record.getMessage())}
        for field in LOG_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = _scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = _scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Install the JSON formatter on the root logger (replacing a plain stream handler).

    uvicorn's own loggers are pointed at the root too, so access and error lines come
    out as JSON like everything else. Calling it again replaces the handler.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if type(old) is logging.StreamHandler or getattr(old, "tongfa_json", False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.tongfa_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


# ------------------------------------------------------------------ container healthchecks


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrator.observability ready|scheduler`: exit 0 when healthy.

    For containers whose process serves no HTTP (the scheduler) and for one-off checks.
    """
    from orchestrator.bootstrap import make_context
    from orchestrator.settings import get_settings
    from orchestrator.usecases.unit_of_work import NoQueue

    args = sys.argv[1:] if argv is None else argv
    if args not in (["ready"], ["scheduler"]):
        print("usage: python -m orchestrator.observability ready|scheduler", file=sys.stderr)
        return 2
    settings = get_settings()
    ctx = make_context(settings, NoQueue())  # a check sends no work
    if args == ["scheduler"]:
        ok = scheduler_alive(ctx)
        print("scheduler lease held" if ok else "no scheduler has renewed its lease")
    else:
        ok = (report := readiness(ctx))["ready"]
        print(json.dumps(report, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
