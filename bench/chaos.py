"""Chaos at scale: N releases × every channel kind while the channels fail and workers die.

Real PostgreSQL, a Redis of its own (restarted once, losing its queues), real
`celery worker` processes (SIGKILLed several times, publish tasks delivered twice), and
every kind at once: the website, Weibo accounts, WeChat (asynchronous freepublish), the
newspaper desk (SFTP + e-mail + Atom) and a CMS push, each sandbox with its own faults
scheduled by request count (tests/rig.py `plan_chaos`). Duplicates and losses are
counted by tests/instrument.py from the platforms' wire logs, never from our database;
the faults from the sandboxes' own fault logs.

    .venv/bin/python -m bench.chaos              # 200 releases × 8 channels (5 kinds)
    .venv/bin/python -m bench.chaos --quick      # 20 × 6; the last line is JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import instrument  # noqa: E402
from tests.rig import (  # noqa: E402
    ALL_KINDS,
    Rig,
    audit_matches_attempts,
    open_deliveries,
    outcomes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--releases", type=int, default=None)
    args = parser.parse_args()
    n = args.releases or (20 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), backend="postgres-redis", weibo_accounts=2 if args.quick else 4, workers=2,
        lease_seconds=10, kinds=ALL_KINDS,
    ) as rig:
        rig.plan_chaos()
        kills = redelivered = 0
        for i in range(n):
            rig.approve_release(i)
            if i and i % max(1, n // 4) == 0:  # a worker dies mid-delivery, several times
                rig.kill_worker(kills % 2)
                rig.start_worker(kills % 2)
                kills += 1
            if i == n // 4:
                rig.renew_weibo_tokens()  # the grant expired (scheduled): a person renews it
            if i == n // 3:
                redelivered = rig.redeliver_publish()  # at-least-once task delivery
            if i == n // 2:
                rig.restart_redis()
        approved_s = time.monotonic() - rig.started
        drain_s = rig.wait_until_done(timeout=1800, admin=True)
        found = rig.count()
        injected = instrument.faults_injected(rig.fault_logs())
        attempts, audited = audit_matches_attempts(rig)
        kinds = sorted(set(rig.channel_kinds.values()))
        print(f"releases {n} × channels {len(rig.channel_names)} ({', '.join(kinds)}); "
              f"workers SIGKILLed {kills}×, Redis restarted 1×, {redelivered} publish tasks "
              f"delivered twice; all approved after {approved_s:.1f} s")
        print(f"delivered {found.delivered}  duplicates {found.duplicates}  lost {found.lost}  "
              f"unattributed calls {found.unattributed}  drain {drain_s:.1f} s")
        if found.duplicated or found.missing:
            print("duplicated:", found.duplicated, "missing:", found.missing)
        print(f"attempts {attempts}, audited {audited}; deliveries not terminal: "
              f"{len(open_deliveries(rig))}; decided by a person (the rig's admin, from the "
              f"platform): {rig.decisions or 'none'}")
        print("faults injected (sandboxes' own logs):", json.dumps(injected, sort_keys=True))
        print("attempt outcomes:", json.dumps(outcomes(rig), sort_keys=True))
        print(json.dumps({"releases": n, "channels": len(rig.channel_names), "kinds": kinds,
                          "delivered": found.delivered, "duplicates": found.duplicates,
                          "lost": found.lost, "decisions": len(rig.decisions),
                          "drain_s": round(drain_s, 1),
                          "faults_injected": sum(injected.values())}))


if __name__ == "__main__":
    main()
