"""The audit log at scale on PostgreSQL: appends, sequencing, proofs, verify, queries, export.

Makes a fresh database with N audit events and N/5 delivery attempts; the sequencer
puts the events in the Merkle tree and signs a checkpoint (timed). Then: inclusion
proofs of random events (p95), a full `audit verify` (seconds), the auditor's filtered
first-page queries (p95), the peak memory of a full CSV export, and finally appends by
8 concurrent writer processes (one event per transaction, as a delivery step writes)
with the sequencer running beside them.

    .venv/bin/python -m bench.audit             # 1,000,000 events, 30 s of appends
    .venv/bin/python -m bench.audit --quick     # 100,000 events, 10 s; last line is JSON
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.domain.audit_actions import Action
from orchestrator.store.db import upgrade  # noqa: E402
from orchestrator.usecases import audit, deliveries, transparency  # noqa: E402

ADMIN = os.environ.get("TONGFA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ACTORS = [f"user{i}" for i in range(200)] + ["worker", "scheduler", "reaper"]
ACTIONS = ["release.created", "release.submitted", "review.signed", "release.approved",
           "delivery.created", "delivery.attempt.stage", "delivery.attempt.publish",
           "delivery.state", "release.finished", "channel.saved"]
CHANNELS = [f"weibo-{i:02d}" for i in range(40)] + ["website", "wechat", "newsfeed"]
OUTCOMES = ["ok"] * 17 + ["retryable", "rate_limited", "outcome_unknown"]


def generate(url: str, events: int) -> dt.datetime:
    """COPY the rows in, spread over 90 days, not yet in the log."""
    rng = random.Random(1)
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    step = dt.timedelta(days=90) / events
    releases = max(1, events // 40)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY audit_event (id, at, actor, action, subject_type, subject_id, "
                      "release_id, channel, before, after, detail, prev_hash, hash) "
                      "FROM STDIN") as copy:
            for i in range(1, events + 1):
                copy.write_row((i, start + step * i, rng.choice(ACTORS), rng.choice(ACTIONS),
                                "delivery", str(i // 3), rng.randint(1, releases),
                                rng.choice(CHANNELS), None, '{"state": "published"}', None,
                                "", ""))
        cur.execute("INSERT INTO release (id, title, body_source, body_format, body_html, "
                    "summary, meta, site_column, channels, overrides, images, attachments, "
                    "priority, state, state_reason, author, revision, content_hash, created_at, "
                    "updated_at) SELECT g, 't', 'b', 'markdown', 'b', '', '{}', 'c', '[]', '{}', "
                    "'[]', '[]', 'normal', 'published', '', 'press', 1, '', now(), now() "
                    f"FROM generate_series(1, {releases}) g")
        deliveries_n = max(1, events // 10)
        cur.execute("INSERT INTO delivery (id, release_id, revision, channel, kind, state, "
                    "idempotency_key, payload, staged, attempts, budget_from, fence, "
                    "created_at, updated_at) SELECT g, 1 + g %% %s, g, 'weibo-' || (g %% 40), "
                    "'weibo', 'published', 'k' || g, '{}', '{}', 1, 0, 1, now(), now() "
                    "FROM generate_series(1, %s) g", (releases, deliveries_n))
        with cur.copy("COPY delivery_attempt (delivery_id, number, phase, started_at, "
                      "ended_at, duration_ms, outcome) FROM STDIN") as copy:
            for i in range(events // 5):
                at = start + step * i * 5
                copy.write_row((rng.randint(1, deliveries_n), 1, "publish", at, at,
                                rng.uniform(5, 200), rng.choice(OUTCOMES)))
        cur.execute("SELECT setval('audit_event_id_seq', %s)", (events,))
        cur.execute("ANALYZE")
    return start


def time_queries(url: str, start: dt.datetime, releases: int, rounds: int) -> list[float]:
    from sqlmodel import Session

    from orchestrator.store.db import engine_for

    engine = engine_for(url)
    rng = random.Random(2)
    timings: list[float] = []
    by_kind: dict[str, list[float]] = {}
    with Session(engine) as session:
        for _ in range(rounds):
            since = start + dt.timedelta(days=rng.uniform(0, 85))
            filters = rng.choice([
                {"release_id": rng.randint(1, releases)}, {"channel": rng.choice(CHANNELS)},
                {"actor": rng.choice(ACTORS)}, {"action": rng.choice(ACTIONS)},
                {"since": since, "until": since + dt.timedelta(days=2)},
                {"channel": rng.choice(CHANNELS), "action": rng.choice(ACTIONS)},
                {"outcome": rng.choice(["retryable", "rate_limited", "outcome_unknown"])},
            ])
            t0 = time.perf_counter()
            if "outcome" in filters:
                deliveries.attempts_query(session, limit=100, **filters)
            else:
                audit.query(session, limit=100, **filters)
            timings.append((time.perf_counter() - t0) * 1000)
            by_kind.setdefault("+".join(sorted(filters)), []).append(timings[-1])
    for kind, values in sorted(by_kind.items()):
        values.sort()
        print(f"  {kind:<22} n={len(values):<4} p50 {values[len(values) // 2]:6.1f} ms  "
              f"p95 {values[int(len(values) * 0.95)]:6.1f} ms")
    return timings


def export_peak_rss_mb(url: str, var: Path) -> tuple[float, int]:
    env = {**os.environ, "TONGFA_DATABASE_URL": url, "TONGFA_VAR_DIR": str(var)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "audit", "query",
                          "--csv"], env=env, stdout=subprocess.PIPE, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak, before) / 1024, out.stdout.count(b"\n") - 1


def context(url: str, var: Path):
    from orchestrator.settings import Settings
    from orchestrator.store.db import engine_for
    from orchestrator.usecases.unit_of_work import Context

    settings = Settings(var_dir=var, database_url=url, audit_witness_dir=var / "witness-dir",
                        _env_file=None)
    return Context(engine_for(url), settings)


def time_proofs(ctx, events: int, rounds: int = 300) -> list[float]:
    from orchestrator.usecases.unit_of_work import UnitOfWork

    rng = random.Random(3)
    timings = []
    with UnitOfWork(ctx) as uow:
        for _ in range(rounds):
            t0 = time.perf_counter()
            transparency.prove(uow.session, rng.randint(1, events))
            timings.append((time.perf_counter() - t0) * 1000)
    return sorted(timings)


def _writer(url: str, var: str, until: float, counts: multiprocessing.Queue) -> None:
    from orchestrator.usecases.unit_of_work import UnitOfWork

    ctx = context(url, Path(var))
    n = 0
    while time.time() < until:
        with UnitOfWork(ctx) as uow:
            audit.record(uow.session, actor="worker", action=Action.DELIVERY_ATTEMPT_PUBLISH,
                         subject_type="delivery", subject_id=n, channel="website",
                         after={"state": "published"})
            uow.commit()
        n += 1
    counts.put(n)


def _sequencer(url: str, var: str, until: float, counts: multiprocessing.Queue) -> None:
    ctx = context(url, Path(var))
    made = 0
    while time.time() < until:
        made += 1 if transparency.checkpoint(ctx, every_seconds=1.0) else 0
        time.sleep(0.25)  # the scheduler's tick
    counts.put(made)


def time_appends(url: str, var: Path, writers: int, seconds: float) -> tuple[float, int, int]:
    """Events/s by `writers` processes for `seconds`, the sequencer ticking beside them;
    then how many were still waiting for a position when they stopped."""
    until = time.time() + seconds
    counts: multiprocessing.Queue = multiprocessing.Queue()
    spawn = multiprocessing.get_context("fork")
    procs = [spawn.Process(target=_writer, args=(url, str(var), until, counts))
             for _ in range(writers)]
    seq_counts: multiprocessing.Queue = multiprocessing.Queue()
    procs.append(spawn.Process(target=_sequencer, args=(url, str(var), until, seq_counts)))
    for p in procs:
        p.start()
    total = sum(counts.get() for _ in range(writers))
    signed = seq_counts.get()
    for p in procs:
        p.join()
    with psycopg.connect(url) as conn:
        pending = conn.execute("SELECT count(*) FROM audit_event WHERE seq IS NULL").fetchone()[0]
    print(f"appends: {writers} writers x {seconds:.0f} s: {total:,} events, "
          f"{total / seconds:,.0f}/s; {signed} checkpoints signed meanwhile, "
          f"{pending:,} events still waiting for the sequencer at the end")
    return total / seconds, pending, signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--append-seconds", type=float,
                        help="how long the 8 writers append (default 30, --quick 10)")
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)
    seconds = args.append_seconds or (10.0 if args.quick else 30.0)
    name = f"tongfa_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    import tempfile

    from orchestrator.usecases.unit_of_work import UnitOfWork

    try:
        upgrade(url)
        t0 = time.perf_counter()
        start = generate(url, events)
        print(f"generated {events:,} audit events and {events // 5:,} attempts "
              f"in {time.perf_counter() - t0:.0f} s")
        with tempfile.TemporaryDirectory() as tmp:
            var = Path(tmp)
            ctx = context(url, var)
            t0 = time.perf_counter()
            while transparency.sequence(ctx, batch=20_000):
                pass
            transparency.checkpoint(ctx)
            seq_s = time.perf_counter() - t0
            print(f"sequenced {events:,} events into the tree and signed a checkpoint in "
                  f"{seq_s:.0f} s ({events / seq_s:,.0f} events/s)")
            proofs = time_proofs(ctx, events)
            prove_p95 = proofs[int(len(proofs) * 0.95)]
            print(f"inclusion proofs at {events:,}: p50 {proofs[len(proofs) // 2]:.2f} ms, "
                  f"p95 {prove_p95:.2f} ms over {len(proofs)}")
            t0 = time.perf_counter()
            with UnitOfWork(ctx) as uow:
                verdict = audit.verify(uow.session, ctx.settings)
            verify_s = time.perf_counter() - t0
            assert verdict["ok"], verdict
            print(f"audit verify of {verdict['checked']:,} events: {verify_s:.1f} s, "
                  f"{verdict['reason']}")
            timings = time_queries(url, start, max(1, events // 40), rounds=400)
            ordered = sorted(timings)
            p50, p95 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]
            print(f"filtered queries (first page of 100): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"max {ordered[-1]:.1f} ms over {len(timings)} queries")
            t0 = time.perf_counter()
            rss, rows = export_peak_rss_mb(url, var)
            print(f"CSV export of {rows:,} events: peak RSS {rss:.0f} MB, "
                  f"{time.perf_counter() - t0:.0f} s")
            ctx.engine.dispose()
            per_s, pending, _ = time_appends(url, var, args.writers, seconds)
        print(json.dumps({"events": events, "query_p95_ms": round(p95, 2),
                          "export_peak_rss_mb": round(rss, 1),
                          "sequence_per_s": round(events / seq_s),
                          "prove_p95_ms": round(prove_p95, 2), "verify_s": round(verify_s, 1),
                          "append_per_s": round(per_s), "append_writers": args.writers,
                          "append_seconds": seconds, "append_pending_at_end": pending}))
    finally:
        from orchestrator.store.db import engine_for

        engine_for(url).dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
