"""The newsfeed e-mail's window, at a scheduled point rather than a wall-clock moment.

Between the desk's mail server accepting DATA and the worker noting that it did, a
worker can die (SIGKILL) or outlive its lease (a loaded machine, a slow 250). Either way
lookup() must not answer "not sent": the desk already holds the mail. Real `celery
worker` processes, PostgreSQL, the desk's SMTP sandbox; counted by tests/instrument.py
from the sandbox's wire log only. A full-suite run once counted
`('newsfeed', 4, 'email')` twice after a wall-clock kill landed in this window.
"""

import pytest

from tests import services
from tests.rig import Rig

pytestmark = pytest.mark.integration


def mails(rig: Rig) -> list[dict]:
    return [e for e in rig.smtp.wire.entries() if e["operation"] == "DATA"]


def test_a_worker_killed_after_the_desk_took_its_mail_sends_no_second_one(tmp_path):
    services.require("PostgreSQL", 5432)
    with Rig(tmp_path, weibo_accounts=0, workers=1, lease_seconds=4, kinds=("newsfeed",)) as rig:
        killed = rig.kill_worker_when_mail_taken(at=1)
        rid = rig.approve_release(0)
        assert killed.wait(120), "the desk never took a mail"
        rig.start_worker(0)
        rig.wait_until_done(timeout=150, admin=True)
        found = rig.count()
        print(rig.figures(), found.duplicated, rig.decisions, mails(rig))
        assert found.duplicates == 0, found.duplicated
        assert found.lost == 0 and found.unattributed == 0
        assert [m["accepted"] for m in mails(rig)] == [True]  # one DATA reached the desk
        # the mail cannot be looked up on the desk: a person was asked, found it, said so
        assert rig.decisions == [("newsfeed", rid, "mark_published")]
        assert set(rig.states()) == {"published"}


def test_a_mail_answered_after_the_lease_ran_out_is_not_sent_again(tmp_path):
    services.require("PostgreSQL", 5432)
    # the desk takes the mail, then holds its 250 well past the 3 s lease (the client
    # waits up to 30 s): the reaper reconciles a publish that is still in flight
    with Rig(
        tmp_path, weibo_accounts=0, workers=1, lease_seconds=3, smtp_timeout=30, kinds=("newsfeed",)
    ) as rig:
        rig.plan("smtp", schedule=[{"path": "smtp/DATA", "fault": "hold", "at": [1], "ms": 9000}])
        rig.approve_release(0)
        rig.wait_until_done(timeout=150, admin=True)
        found = rig.count()
        print(rig.figures(), found.duplicated, rig.decisions, mails(rig))
        assert rig.smtp.faults.happened()["hold"] == 1
        assert found.duplicates == 0, found.duplicated
        assert found.lost == 0 and found.unattributed == 0
        assert [m["accepted"] for m in mails(rig)] == [True]
        assert rig.decisions == []  # the sender was alive: its own note settled it
        assert set(rig.states()) == {"published"}
