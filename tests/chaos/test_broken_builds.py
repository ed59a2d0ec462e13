"""The instrument can fail: run against deliberately broken builds, it reports duplicates.

The workers are real `celery worker` processes running a broken build
(tests/broken_builds.py, loaded by the rig only), and the duplicates are counted by
tests/instrument.py from the platforms' wire logs, as in the chaos suite. Weibo refuses
the repeated text with 20019 and the CMS keeps one page per webhook-id: the instrument
counts those calls anyway, since they reached the platform after it had accepted one.
"""

import pytest

from tests import services
from tests.rig import Rig

pytestmark = pytest.mark.integration
SHARE = "statuses/share.json"


def test_a_lookup_that_always_answers_not_sent_shows_as_duplicates(tmp_path):
    services.require("PostgreSQL", 5432)
    with Rig(tmp_path, weibo_accounts=1, workers=1, lease_seconds=10,
             kinds=("website", "weibo"), broken_build="lookup_not_sent") as rig:
        rig.plan("weibo", schedule=[{"path": SHARE, "fault": "drop", "at": [1, 2]}])
        for n in range(3):
            rig.approve_release(n)
        found = rig.wait_for_duplicates(timeout=90)
        print(rig.figures(), found.duplicated)
        assert found.duplicates > 0
        assert all(channel == "weibo-000" for channel, _, _ in found.duplicated)


def test_a_publish_claim_without_the_fence_check_shows_as_duplicates(tmp_path):
    services.require("PostgreSQL", 5432)
    with Rig(tmp_path, weibo_accounts=1, workers=1, lease_seconds=10,
             kinds=("website", "weibo", "wechat"), broken_build="claim_without_fence") as rig:
        rig.plan("wechat", publish_seconds=3.0)  # the release stays live-going a while
        for n in range(2):
            rig.approve_release(n)
        rig.redeliver_publish()  # at-least-once delivery of the publish task
        found = rig.wait_for_duplicates(timeout=90)
        print(rig.figures(), found.duplicated)
        assert found.duplicates > 0


def test_a_mail_not_marked_before_data_shows_as_a_duplicate_when_its_worker_dies(tmp_path):
    services.require("PostgreSQL", 5432)
    with Rig(tmp_path, weibo_accounts=0, workers=1, lease_seconds=4, kinds=("newsfeed",),
             broken_build="mail_unmarked_before_data") as rig:
        killed = rig.kill_worker_when_mail_taken(at=1)  # after the desk took it
        rid = rig.approve_release(0)
        assert killed.wait(120), "the desk never took a mail"
        rig.start_worker(0)
        found = rig.wait_for_duplicates(timeout=90)
        print(rig.figures(), found.duplicated)
        assert found.duplicates > 0
        assert set(found.duplicated) == {("newsfeed", rid, "email")}
