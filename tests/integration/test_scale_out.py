"""Scale-out: PostgreSQL + a broker + 3 worker processes on two queues, as three hosts would be.

100 releases × 5 channels, all delivered once; killing one worker loses none of its work.
Run on Redis and on RabbitMQ.
"""


import pytest

from tests import services
from tests.rig import Rig, open_deliveries

pytestmark = pytest.mark.integration
RELEASES = 100


@pytest.mark.parametrize("backend", ["postgres-redis", "postgres-rabbitmq"])
def test_three_workers_on_two_queues_deliver_everything_once(backend, tmp_path):
    services.require("PostgreSQL", 5432)
    services.require("RabbitMQ" if "rabbit" in backend else "Redis", 5672 if "rabbit" in backend else 6379)
    with Rig(tmp_path, backend=backend, weibo_accounts=4, workers=3, lease_seconds=10,
             queues=("normal", "normal", "urgent,normal")) as rig:
        for n in range(RELEASES):
            rig.approve_release(n, priority="urgent" if n % 10 == 0 else "normal")
            if n == RELEASES // 3:
                rig.kill_worker(1)  # one host dies with work in hand; it does not come back
        rig.wait_until_done(timeout=240)
        figures = rig.figures()
        print(figures)
        counted = ("releases", "channels", "delivered", "duplicates", "lost", "unattributed")
        assert {k: figures[k] for k in counted} == {
            "releases": RELEASES, "channels": 5, "delivered": RELEASES * 5, "duplicates": 0,
            "lost": 0, "unattributed": 0}
        assert set(rig.states()) == {"published"} and open_deliveries(rig) == []
