"""Same moment on every channel: go-live spread, latency, throughput against bare Celery.

Runs real worker processes against PostgreSQL + Redis (or --embedded) and the Weibo
sandbox (no added latency), and measures from the sandbox's own receive times:

  spread        last channel live − first channel live, per release
  approve→live  last channel live − the final sign-off
  throughput    deliveries per second at saturation, ours / bare Celery tasks doing
                only the same HTTP calls to the same sandbox (a ratio, not a machine time)
  schedule err  first channel live − the scheduled go-live time

    .venv/bin/python -m bench.golive            # the full table (several minutes)
    .venv/bin/python -m bench.golive --quick    # under a minute; last line is JSON

Wide mode (`--wide`): one announcement on M Weibo accounts at once (a 政务新媒体矩阵).
Three releases approved one after another and three scheduled ahead, each on every
account, beside the physical reference measured in the same run against the same
sandbox: M share calls fired at one instant from pre-opened connections by a bare
script (bench/burst.py), nothing of ours in the way. Every figure is read from the
sandbox's wire log (the platform's receive times), never from our tables:

  wide spread         last account live − first, per release (all six)
  wide schedule err   first account live − the scheduled instant (the scheduled three)
  wide approve→live   last account live − the final sign-off (the immediate three)
  burst spread        the same, for the bare burst (median of three bursts)

    .venv/bin/python -m bench.golive --wide --quick              # 200 accounts; JSON last
    .venv/bin/python -m bench.golive --wide --wide-channels 500  # one width
    .venv/bin/python -m bench.golive --wide                      # 5, 50, 200, 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig import Rig  # noqa: E402

WIDE_RELEASES = 3  # immediate ones, and as many scheduled
WIDE_BURSTS = 3


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def live_times(rig: Rig) -> dict[int, list[float]]:
    """Per release, the sandbox's receive time on each account (epoch seconds)."""
    posts = requests.get(f"{rig.sandbox.url}/_sandbox/posts", timeout=30).json()
    by_release: dict[int, list[float]] = defaultdict(list)
    for post in posts:
        marker = post["sent_text"].rsplit("/articles/", 1)
        if len(marker) == 2:
            by_release[int(marker[1].split(".")[0])].append(post["received_at"])
    return by_release


def run_ours(backend: str, releases: int, channels: int, scheduled: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), backend=backend, weibo_accounts=channels, with_website=False, workers=2,
        lease_seconds=60, redrive_seconds=30,
    ) as rig:
        time.sleep(3)  # workers up
        # latency and spread: releases approved one after another, as a press office does
        approved_at: dict[int, float] = {}
        for n in range(releases):
            rid = rig.approve_release(n)
            approved_at[rid] = time.time()
            time.sleep(0.1)
        rig.wait_until_done(timeout=600)
        lives = live_times(rig)
        spreads = [(max(v) - min(v)) * 1000 for v in lives.values()]
        to_live = [(max(lives[r]) - t) * 1000 for r, t in approved_at.items()]
        errors = schedule_errors(rig, scheduled, releases)
        # saturation: a backlog approved while no worker runs, then drained
        for i in range(len(rig.workers)):
            rig.kill_worker(i)
        backlog = [rig.approve_release(10_000 + n) for n in range(releases)]
        for i in range(len(rig.workers)):
            rig.start_worker(i)
        rig.wait_until_done(timeout=600)
        times = [t for r, v in live_times(rig).items() if r in backlog for t in v]
        return {
            "spread_p50_ms": pct(spreads, 50), "spread_p95_ms": pct(spreads, 95),
            "spread_max_ms": max(spreads), "approve_to_live_p50_ms": pct(to_live, 50),
            "approve_to_live_p95_ms": pct(to_live, 95),
            "deliveries_per_s": len(times) / (max(times) - min(times)),
            "schedule_error_p50_ms": pct(errors, 50), "schedule_error_p95_ms": pct(errors, 95),
        }


def schedule_errors(rig: Rig, count: int, offset: int) -> list[float]:
    """Releases scheduled a few seconds ahead: how late did the first channel go live?"""
    if count == 0:
        return []
    wanted: dict[int, float] = {}
    base = time.time() + 4 + count * 0.3
    for i in range(count):
        at = base + i * 0.5
        rid = rig.approve_release(offset + i, go_live_at=dt.datetime.fromtimestamp(
            at, dt.UTC).isoformat())
        wanted[rid] = at
    rig.wait_until_done(timeout=120)
    lives = live_times(rig)
    return [(min(lives[r]) - at) * 1000 for r, at in wanted.items()]


def run_bare(backend: str, releases: int, channels: int) -> float:
    """Bare Celery: the same share calls, one task each, no database, no review."""
    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), backend=backend, weibo_accounts=channels, with_website=False, workers=0,
    ) as rig:
        env = {**os.environ, **rig.env, "BARE_SANDBOX": rig.sandbox.url}
        workers = [subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.bare_tasks", "worker", "-Q", "bare",
             "-c", "2", "-n", f"bare{i}@%h", "-l", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"], env=env,
            cwd=str(Path(__file__).parent.parent))
            for i in range(2)]
        try:
            from workers.celery_app import make_app

            sender = make_app(rig.settings)
            time.sleep(3)
            for n in range(releases):
                for token in rig.accounts.values():
                    text = f"第{n}号 http://127.0.0.1:8000/site/articles/{n}.html"
                    sender.send_task("bench.share", args=[rig.sandbox.url, token, text],
                                     queue="bare")
            expected = releases * channels
            while True:
                posts = requests.get(f"{rig.sandbox.url}/_sandbox/posts", timeout=30).json()
                if len(posts) >= expected:
                    times = [p["received_at"] for p in posts]
                    return expected / (max(times) - min(times))
                time.sleep(0.2)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)


def wire_times(rig: Rig, marker: str) -> dict[int, list[float]]:
    """Per number after `marker` in the link, the platform's receive times of the accepted
    share calls (the sandbox's wire log)."""
    entries = requests.get(f"{rig.sandbox.url}/_sandbox/wire", timeout=60).json()
    found: dict[int, list[float]] = defaultdict(list)
    for entry in entries:
        head, sep, tail = entry["target"].rpartition(marker)
        if sep and entry["accepted"] and entry["operation"] == "statuses/share":
            found[int(tail.split(".")[0])].append(entry["received_at"])
    return found


def wide_burst(rig: Rig, k: int) -> float:
    """One bare burst of M share calls (its own process, pre-opened connections); its
    spread (ms) on the platform's side."""
    tokens = list(rig.accounts.values())
    texts = [f"基准第{k}轮 账号{i} http://127.0.0.1:8000/site/burst/{k}.html"
             for i in range(len(tokens))]
    done = subprocess.run([sys.executable, "-m", "bench.burst"], capture_output=True, text=True,
                          input=json.dumps({"url": rig.sandbox.url, "tokens": tokens,
                                            "texts": texts}),
                          cwd=str(Path(__file__).parent.parent), check=True, timeout=300)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if answer["accepted"] != len(tokens):
        raise RuntimeError(f"the sandbox did not accept the whole burst: {answer}")
    times = wire_times(rig, "/burst/")[k]
    return (max(times) - min(times)) * 1000


def timeline(rig: Rig, zero: dict[int, float], lives: dict[int, list[float]]) -> None:
    """Where a go-live's time goes, per release, in ms after its zero (the final sign-off,
    or the scheduled instant): the audit trail's commit instants (`at`), the attempts'
    start (the adapter call) and the platform's receive times. Printed to stderr."""
    from sqlmodel import select

    from orchestrator.store.models import AuditEvent, Delivery, DeliveryAttempt
    from orchestrator.usecases.unit_of_work import UnitOfWork

    def span(values: list[float], t0: float) -> str:
        if not values:
            return "-"
        return f"{(min(values) - t0) * 1000:.0f}..{(max(values) - t0) * 1000:.0f}"

    with UnitOfWork(rig.ctx) as uow:
        events = uow.session.exec(select(AuditEvent.release_id, AuditEvent.action,
                                         AuditEvent.after, AuditEvent.at)
                                  .where(AuditEvent.release_id.in_(list(zero)))).all()
        attempts = uow.session.exec(select(Delivery.release_id, DeliveryAttempt.phase,
                                           DeliveryAttempt.started_at)
                                    .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                                    .where(Delivery.release_id.in_(list(zero)))).all()
    for rid, t0 in zero.items():
        def at(action: str, state: str | None = None, rid: int = rid) -> list[float]:
            return [e.at.timestamp() for e in events if e.release_id == rid
                    and e.action == action and (state is None or (e.after or {}).get(
                        "state") == state)]

        started = {phase: [a.started_at.timestamp() for a in attempts
                           if a.release_id == rid and a.phase == phase]
                   for phase in ("stage", "publish")}
        print(f"release {rid}: staged {span(at('delivery.state', 'staged'), t0)}"
              f" | stage calls {span(started['stage'], t0)}"
              f" | go_live {span(at('release.go_live'), t0)}"
              f" | publish calls {span(started['publish'], t0)}"
              f" | platform {span(lives.get(rid, []), t0)}"
              f" | recorded {span(at('delivery.state', 'published'), t0)}"
              f" | finished {span(at('release.finished'), t0)}", file=sys.stderr)


def run_wide(backend: str, channels: int, lead: float | None, workers: int,
             profile: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), backend=backend, weibo_accounts=channels, with_website=False,
        workers=workers, lease_seconds=60, redrive_seconds=30,
    ) as rig:
        time.sleep(3)  # workers up
        bursts = [wide_burst(rig, k) for k in range(WIDE_BURSTS)]
        approved_at: dict[int, float] = {}
        took = []
        for n in range(WIDE_RELEASES):
            started = time.time()
            rid = rig.approve_release(n)
            approved_at[rid] = time.time()
            took.append(approved_at[rid] - started)
            time.sleep(0.1)
        rig.wait_until_done(timeout=900)
        # scheduled ahead: far enough that approving all of them fits before the first
        ahead = lead if lead is not None else 5 + 2 * WIDE_RELEASES * max(took)
        wanted: dict[int, float] = {}
        base = time.time() + ahead
        for i in range(WIDE_RELEASES):
            at = base + i * 2.0
            rid = rig.approve_release(100 + i, go_live_at=dt.datetime.fromtimestamp(
                at, dt.UTC).isoformat())
            wanted[rid] = at
        late = time.time() - base
        rig.wait_until_done(timeout=900)
        lives = wire_times(rig, "/articles/")
        if profile:
            timeline(rig, {**approved_at, **wanted}, lives)
        if any(len(lives[r]) != channels for r in [*approved_at, *wanted]):
            raise RuntimeError("a release did not go live on every account exactly once")
        spreads = [(max(lives[r]) - min(lives[r])) * 1000 for r in [*approved_at, *wanted]]
        to_live = [(max(lives[r]) - t) * 1000 for r, t in approved_at.items()]
        errors = [(min(lives[r]) - at) * 1000 for r, at in wanted.items()]
        last_errors = [(max(lives[r]) - at) * 1000 for r, at in wanted.items()]
        return {
            "wide_channels": channels, "wide_spread_p50_ms": pct(spreads, 50),
            "wide_spread_p95_ms": pct(spreads, 95),
            "wide_spread_scheduled_p95_ms": pct(spreads[WIDE_RELEASES:], 95),
            "wide_schedule_error_p50_ms": pct(errors, 50),
            "wide_schedule_error_p95_ms": pct(errors, 95),
            "wide_last_live_error_p95_ms": pct(last_errors, 95),
            "wide_approve_to_live_p50_ms": pct(to_live, 50),
            "wide_approve_to_live_p95_ms": pct(to_live, 95),
            "burst_spread_ms": pct(bursts, 50), "burst_spread_max_ms": max(bursts),
            "wide_lead_s": ahead, "wide_approve_s": max(took),
            "wide_scheduled_approved_late_s": max(0.0, late),
        }


WIDE_HEAD = (("M", "wide_channels"), ("spread p50", "wide_spread_p50_ms"),
             ("p95", "wide_spread_p95_ms"), ("sched p95", "wide_spread_scheduled_p95_ms"),
             ("burst", "burst_spread_ms"), ("appr→live p50", "wide_approve_to_live_p50_ms"),
             ("p95", "wide_approve_to_live_p95_ms"),
             ("sched err p50", "wide_schedule_error_p50_ms"),
             ("p95", "wide_schedule_error_p95_ms"), ("last p95", "wide_last_live_error_p95_ms"))
WIDE_JSON = ("wide_channels", "wide_spread_p95_ms", "wide_schedule_error_p95_ms",
             "wide_approve_to_live_p95_ms", "burst_spread_ms", "wide_last_live_error_p95_ms",
             "wide_spread_scheduled_p95_ms")


def main_wide(args: argparse.Namespace, backend: str) -> None:
    widths = ([args.wide_channels] if args.wide_channels else [200] if args.quick
              else [5, 50, 200, 500])
    if not all(1 <= m <= 999 for m in widths):
        raise SystemExit("--wide-channels: from 1 to 999 accounts")
    if args.quick and min(widths) < 200:
        raise SystemExit("--wide --quick measures at least 200 accounts")
    rows = [run_wide(backend, m, args.lead, args.workers, args.profile) for m in widths]
    print(f"backend: {backend}; {args.workers} workers; sandbox without added latency; "
          f"{os.cpu_count()} cores; {WIDE_RELEASES} immediate + {WIDE_RELEASES} scheduled "
          f"releases, {WIDE_BURSTS} bare bursts")
    print(" | ".join(f"{h:>13}" for h, _ in WIDE_HEAD))
    for r in rows:
        print(" | ".join(f"{r[k]:>13.1f}" if isinstance(r[k], float) else f"{r[k]:>13}"
                         for _, k in WIDE_HEAD))
    for r in rows[:-1]:
        print(json.dumps({k: round(v, 2) for k, v in r.items()}))
    print(json.dumps({k: round(rows[-1][k], 2) for k in WIDE_JSON}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--embedded", action="store_true", help="SQLite + filesystem broker")
    parser.add_argument("--wide", action="store_true",
                        help="one release on M Weibo accounts at once, beside a bare burst")
    parser.add_argument("--wide-channels", type=int, metavar="M",
                        help="the width M, 1..999 (default 5, 50, 200, 500; 200 with --quick)")
    parser.add_argument("--lead", type=float, default=None,
                        help="wide: seconds from scheduling to the first scheduled go-live")
    parser.add_argument("--workers", type=int, default=2, help="wide: worker processes")
    parser.add_argument("--profile", action="store_true",
                        help="wide: where each go-live's time went, to stderr")
    args = parser.parse_args()
    backend = "embedded" if args.embedded else "postgres-redis"
    if args.wide:
        main_wide(args, backend)
        return
    plan = [(20, 5, 5)] if args.quick else [(50, 2, 5), (50, 5, 10), (20, 20, 5), (10, 50, 5)]
    rows = []
    for releases, channels, scheduled in plan:
        ours = run_ours(backend, releases, channels, scheduled)
        bare = run_bare(backend, releases, channels)
        ours["throughput_ratio_vs_bare"] = ours["deliveries_per_s"] / bare
        ours["bare_deliveries_per_s"] = bare
        rows.append((releases, channels, ours))
    print(f"backend: {backend}; sandbox without added latency; {os.cpu_count()} cores")
    head = ("N", "M", "spread p50", "p95", "max", "appr→live p50", "p95", "deliv/s",
            "bare/s", "ratio", "sched err p50", "p95")
    print(" | ".join(f"{h:>12}" for h in head))
    for releases, channels, r in rows:
        cells = (releases, channels, r["spread_p50_ms"], r["spread_p95_ms"], r["spread_max_ms"],
                 r["approve_to_live_p50_ms"], r["approve_to_live_p95_ms"], r["deliveries_per_s"],
                 r["bare_deliveries_per_s"], r["throughput_ratio_vs_bare"],
                 r["schedule_error_p50_ms"], r["schedule_error_p95_ms"])
        print(" | ".join(f"{c:>12.1f}" if isinstance(c, float) else f"{c:>12}" for c in cells))
    r = rows[0][2]
    print(json.dumps({k: round(r[k], 2) for k in (
        "spread_p95_ms", "spread_max_ms", "approve_to_live_p95_ms", "throughput_ratio_vs_bare",
        "schedule_error_p95_ms")}))


if __name__ == "__main__":
    main()
