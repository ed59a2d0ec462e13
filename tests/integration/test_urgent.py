"""An urgent release (重大突发事件) overtakes a backlog of 500 normal deliveries."""

import time

import pytest

from tests import services
from tests.rig import Rig

pytestmark = pytest.mark.integration


def test_an_urgent_release_overtakes_a_backlog(tmp_path):
    services.require("PostgreSQL", 5432)
    with Rig(tmp_path, backend="postgres-redis", weibo_accounts=4, workers=2, lease_seconds=30,
             queues=("normal", "urgent")) as rig:
        rig.faults(latency_ms=40)  # every channel answers a little slowly
        rig.kill_worker(0)  # the normal queue fills up while its worker is away
        backlog = [rig.approve_release(n) for n in range(100)]  # 100 × 5 = 500 deliveries
        rig.start_worker(0, "normal")
        while "published" not in rig.states_of(backlog).values():
            time.sleep(0.05)  # the backlog is being worked off
        urgent = rig.approve_release(999, priority="urgent", title="突发：某地发生地震的初步情况")
        approved = time.time()
        states = {}
        while time.time() - approved < 60:
            states = rig.states_of([urgent, *backlog])
            if states[urgent] == "published":
                break
            time.sleep(0.05)
        assert states[urgent] == "published"
        waiting = sum(1 for rid in backlog if states[rid] != "published")
        print(f"urgent live after {time.time() - approved:.2f}s; {waiting} of 100 normal "
              "releases still waiting")
        assert waiting >= 50
        rig.wait_until_done(timeout=300)
