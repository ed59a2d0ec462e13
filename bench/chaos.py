"""Chaos at scale: N releases × 5 channels while the channels fail and workers die.

Real PostgreSQL, a Redis of its own (restarted once, losing its queues), real
`celery worker` processes (SIGKILLed several times), the Weibo sandbox injecting
5xx, timeouts, dropped responses, rate limits and token expiry. The figures are
counted from the channels' own records.

    .venv/bin/python -m bench.chaos              # 200 releases × 5 channels
    .venv/bin/python -m bench.chaos --quick      # 40 × 5, under two minutes; last line JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig import (  # noqa: E402
    Rig,
    audit_matches_attempts,
    open_deliveries,
    outcomes,
    reauthorize,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--releases", type=int, default=None)
    args = parser.parse_args()
    n = args.releases or (40 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), backend="postgres-redis", weibo_accounts=4, workers=2, lease_seconds=10,
    ) as rig:
        base = {"busy_share": 0.1, "rate_limit": 8, "rate_window_s": 1}
        rig.faults(**base, drop_responses=max(3, n // 20), busy_next=5)
        kills = 0
        for i in range(n):
            rig.approve_release(i)
            if i and i % max(1, n // 4) == 0:  # a worker dies mid-delivery, several times
                rig.kill_worker(kills % 2)
                rig.start_worker(kills % 2)
                kills += 1
            if i == n // 2:
                rig.restart_redis()
                rig.faults(**base, latency_ms=2500)  # answers after the client gave up
            if i == (3 * n) // 4:
                rig.faults(**base, expire_tokens=True)
        time.sleep(1)
        rig.faults(**base)
        reauthorize(rig)
        drain_s = rig.wait_until_done(timeout=1800)
        figures = rig.figures()
        attempts, audited = audit_matches_attempts(rig)
        print(f"releases {figures['releases']} × channels {figures['channels']}; "
              f"workers SIGKILLed {kills}×, Redis restarted 1×")
        print(f"delivered {figures['delivered']}  duplicates {figures['duplicates']}  "
              f"lost {figures['lost']}  drain {drain_s:.1f} s")
        print(f"attempts {attempts}, audited {audited}; deliveries not terminal: "
              f"{len(open_deliveries(rig))}")
        print("attempt outcomes:", json.dumps(outcomes(rig), sort_keys=True))
        print(json.dumps({**figures, "drain_s": round(drain_s, 1)}))


if __name__ == "__main__":
    main()
