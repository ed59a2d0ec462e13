"""Auditor queries at scale: filtered query p95 and export memory on PostgreSQL.

Makes a fresh database with N audit events (a valid hash chain) and N/5 delivery
attempts, then times the auditor's filtered first-page queries (release, channel, actor,
action, outcome, time range; 100 rows, keyset order) and measures the peak memory of a
full CSV export by `tongfa audit query --csv` in a child process.

    .venv/bin/python -m bench.audit             # 1,000,000 events
    .venv/bin/python -m bench.audit --quick     # 100,000 events; last line is JSON
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
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

from orchestrator.domain.hashing import canonical_json  # noqa: E402
from orchestrator.store.db import upgrade  # noqa: E402
from orchestrator.usecases import audit, deliveries  # noqa: E402

ADMIN = os.environ.get("TONGFA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ACTORS = [f"user{i}" for i in range(200)] + ["worker", "scheduler", "reaper"]
ACTIONS = ["release.created", "release.submitted", "review.signed", "release.approved",
           "delivery.created", "delivery.attempt.stage", "delivery.attempt.publish",
           "delivery.state", "release.finished", "channel.saved"]
CHANNELS = [f"weibo-{i:02d}" for i in range(40)] + ["website", "wechat", "newsfeed"]
OUTCOMES = ["ok"] * 17 + ["retryable", "rate_limited", "outcome_unknown"]


def generate(url: str, events: int) -> dt.datetime:
    """COPY the rows in: a real chain of hashes, spread over 90 days."""
    rng = random.Random(1)
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    step = dt.timedelta(days=90) / events
    releases = max(1, events // 40)
    prev = ""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY audit_event (id, at, actor, action, subject_type, subject_id, "
                      "release_id, channel, before, after, detail, prev_hash, hash) "
                      "FROM STDIN") as copy:
            for i in range(1, events + 1):
                at = start + step * i
                row = {"id": i, "at": at.isoformat(timespec="milliseconds"),
                       "actor": rng.choice(ACTORS), "action": rng.choice(ACTIONS),
                       "subject_type": "delivery", "subject_id": str(i // 3),
                       "release_id": rng.randint(1, releases), "channel": rng.choice(CHANNELS),
                       "before": None, "after": {"state": "published"}, "detail": None}
                digest = hashlib.sha256(prev.encode() + canonical_json(
                    {**row, "prev_hash": prev})).hexdigest()
                copy.write_row((i, at, row["actor"], row["action"], "delivery",
                                row["subject_id"], row["release_id"], row["channel"], None,
                                json.dumps(row["after"]), None, prev, digest))
                prev = digest
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)
    name = f"tongfa_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        t0 = time.perf_counter()
        start = generate(url, events)
        print(f"generated {events:,} audit events and {events // 5:,} attempts "
              f"in {time.perf_counter() - t0:.0f} s")
        timings = time_queries(url, start, max(1, events // 40), rounds=400)
        ordered = sorted(timings)
        p50, p95 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]
        print(f"filtered queries (first page of 100): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
              f"max {ordered[-1]:.1f} ms over {len(timings)} queries")
        import tempfile

        with tempfile.TemporaryDirectory() as var:
            t0 = time.perf_counter()
            rss, rows = export_peak_rss_mb(url, Path(var))
        print(f"CSV export of {rows:,} events: peak RSS {rss:.0f} MB, "
              f"{time.perf_counter() - t0:.0f} s")
        print(json.dumps({"events": events, "query_p95_ms": round(p95, 2),
                          "export_peak_rss_mb": round(rss, 1)}))
    finally:
        from orchestrator.store.db import engine_for

        engine_for(url).dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
