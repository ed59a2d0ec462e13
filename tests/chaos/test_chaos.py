"""Chaos: every channel kind at once, each with its own faults, SIGKILLed workers, tasks
delivered twice, a Redis restart that loses its queues.

Afterwards, counted by tests/instrument.py from what the platforms saw (their wire logs),
never from our database: every release on every channel, once; nothing lost. The faults
are scheduled by request count, and the sandboxes' own fault logs prove they happened.
"""

import pytest

from tests import instrument, services
from tests.rig import ALL_KINDS, Rig, audit_matches_attempts, failures, open_deliveries, outcomes

pytestmark = pytest.mark.integration
RELEASES = 8
# every fault the schedule plans, as "sandbox:fault" in the sandboxes' own fault logs
PLANNED = {"weibo:busy", "weibo:drop", "weibo:slow", "weibo:expire", "wechat:busy",
           "wechat:quota", "wechat:drop", "wechat:expire", "cms:status", "cms:slow",
           "sftp:disconnect", "sftp:drop", "smtp:status"}


def test_every_release_reaches_every_channel_of_every_kind_exactly_once_under_chaos(tmp_path):
    services.require("PostgreSQL", 5432)
    # the lease (10 s) outlasts the longest call (3 s connect + 3 s read): see docs/guarantees.md
    with Rig(tmp_path, backend="postgres-redis", weibo_accounts=2, workers=2,
             lease_seconds=10, kinds=ALL_KINDS) as rig:
        rig.plan_chaos()
        for n in range(RELEASES // 2):
            rig.approve_release(n)
        redelivered = rig.redeliver_publish()  # at-least-once: claims must absorb these
        rig.kill_worker(0)  # mid-delivery, no clean-up
        rig.start_worker(0)
        rig.restart_redis()  # every queued message is gone
        for n in range(RELEASES // 2, RELEASES):
            rig.approve_release(n)
        rig.renew_weibo_tokens()
        rig.kill_worker(1)
        rig.start_worker(1)
        drain_s = rig.wait_until_done(timeout=150, admin=True)
        found = rig.count()
        injected = instrument.faults_injected(rig.fault_logs())
        print({**rig.figures(), "drain_s": round(drain_s, 1), "redelivered": redelivered},
              injected, outcomes(rig), failures(rig))
        assert PLANNED <= set(injected)  # the faults really happened, by the sandboxes' logs
        assert found.duplicates == 0, found.duplicated
        assert found.lost == 0, found.missing
        assert found.unattributed == 0
        assert found.delivered == RELEASES * len(rig.channel_names)
        assert set(rig.states()) == {"published"}
        assert open_deliveries(rig) == []
        attempts, events = audit_matches_attempts(rig)
        assert attempts == events and attempts >= RELEASES * len(rig.channel_names)
