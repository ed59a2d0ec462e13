"""Chaos: faults at the channels, SIGKILLed workers, a Redis restart that loses its queues.

Afterwards, counted from the channels' own records: every release on every channel,
once; nothing lost; every attempt in the audit trail; every delivery terminal.
"""

import time

import pytest

from tests import services
from tests.rig import Rig, audit_matches_attempts, failures, open_deliveries, outcomes, reauthorize

pytestmark = pytest.mark.integration
RELEASES = 8


def test_every_release_reaches_every_channel_exactly_once_under_chaos(tmp_path):
    services.require("PostgreSQL", 5432)
    # the lease (10 s) outlasts the longest call (3 s connect + 2 s read): see docs/guarantees.md
    with Rig(tmp_path, backend="postgres-redis", weibo_accounts=2, workers=2,
             lease_seconds=10) as rig:
        base = {"busy_share": 0.2, "rate_limit": 2, "rate_window_s": 1}
        rig.faults(**base, busy_next=3, drop_responses=3)
        for n in range(RELEASES // 2):
            rig.approve_release(n)
        time.sleep(0.5)
        rig.kill_worker(0)  # mid-delivery, no clean-up
        rig.start_worker(0)
        rig.restart_redis()  # every queued message is gone
        for n in range(RELEASES // 2, RELEASES):
            rig.approve_release(n)
        time.sleep(2.0)
        rig.faults(**base, latency_ms=2500)  # answers arrive after the client gave up
        time.sleep(2.5)
        rig.faults(**base, expire_tokens=True)
        time.sleep(1.0)
        rig.kill_worker(1)
        rig.start_worker(1)
        rig.faults(**base)
        reauthorize(rig)
        drain_s = rig.wait_until_done(timeout=150)
        figures = rig.figures()
        seen = outcomes(rig)
        print({**figures, "drain_s": round(drain_s, 1)}, seen, failures(rig))
        assert seen.get("publish:retryable", 0) > 0  # the faults really happened
        assert seen.get("publish:outcome_unknown", 0) > 0
        assert seen.get("lookup:ok", 0) > 0
        assert seen.get("publish:rate_limited", 0) > 0
        assert figures["duplicates"] == 0
        assert figures["lost"] == 0
        assert figures["delivered"] == RELEASES * len(rig.channel_names)
        assert set(rig.states()) == {"published"}
        assert open_deliveries(rig) == []
        attempts, events = audit_matches_attempts(rig)
        assert attempts == events and attempts >= RELEASES * len(rig.channel_names)
