"""Going live: schedules driven from the database, holds, forced partial go-live, re-sends."""

import datetime as dt
import random

import pytest
from sqlmodel import select

from orchestrator.domain import clock
from orchestrator.domain.errors import Forbidden, InvalidInput
from orchestrator.domain.retry import RetryPolicy
from orchestrator.store.models import AuditEvent, ChannelInstance, Delivery, Release
from orchestrator.usecases import channels, golive, recovery, scheduler
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import fakes
from tests.conftest import RecordingQueue, approve_all, drain


def release(ctx, rid):
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, rid)


def delivery(ctx, channel):
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(Delivery).where(Delivery.channel == channel)).one()


def soon(minutes=10):
    return clock.utcnow() + dt.timedelta(minutes=minutes)


def test_a_scheduled_release_is_staged_ahead_and_fires_once_at_its_time(ctx, new_release):
    rid = new_release(go_live_at=soon().isoformat())
    assert approve_all(ctx, rid) == "scheduled"
    drain(ctx)
    assert {delivery(ctx, c).state for c in ("alpha", "beta")} == {"staged"}
    assert scheduler.tick(ctx)["fired"] == 0 and fakes.posts("alpha") == []
    clock.travel(11 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    drain(ctx)
    # a restarted scheduler (a new process: new context) finds nothing more to fire
    restarted = Context(ctx.engine, ctx.settings, RecordingQueue())
    assert scheduler.tick(restarted)["fired"] == 0 and restarted.queue.sent == []
    assert release(ctx, rid).state == "published"
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]


def test_rescheduling_and_holding_are_audited(ctx, new_release):
    rid = new_release(go_live_at=soon().isoformat())
    approve_all(ctx, rid)
    drain(ctx)
    with UnitOfWork(ctx) as uow:  # the author asks; an approver signs the new time
        golive.schedule(uow, rid, soon(30), "press")
    with UnitOfWork(ctx) as uow:
        golive.sign_reschedule(uow, rid, "leader", True)
    clock.travel(11 * 60)
    assert scheduler.tick(ctx)["fired"] == 0  # moved to later
    with UnitOfWork(ctx) as uow:
        golive.hold(uow, rid, "leader")
    clock.travel(60 * 60)
    assert scheduler.tick(ctx)["fired"] == 0 and release(ctx, rid).state == "scheduled"
    with UnitOfWork(ctx) as uow:
        actions = [e.action for e in uow.session.exec(select(AuditEvent))]
    assert actions.count("release.reschedule_requested") == 1
    assert "release.rescheduled" in actions and "release.held" in actions


def test_forced_partial_go_live_needs_the_right_role_and_a_reason(ctx, new_release):
    rid = new_release()
    fakes.plan("beta", "stage", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    assert release(ctx, rid).state == "approved" and fakes.posts("alpha") == []
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        golive.force_go_live(uow, rid, "reviewer", "急需发布")
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="reason"):
        golive.force_go_live(uow, rid, "leader", "")
    with UnitOfWork(ctx) as uow:
        assert golive.force_go_live(uow, rid, "leader", "微博账号维护中，先发网站") == ["beta"]
    drain(ctx)
    assert len(fakes.posts("alpha")) == 1 and fakes.posts("beta") == []
    assert release(ctx, rid).state == "partially_published"
    with UnitOfWork(ctx) as uow:
        event = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "release.forced_go_live")).one()
    assert event.actor == "leader" and event.detail["reason"] == "微博账号维护中，先发网站"


def test_a_failed_delivery_can_be_resent_by_a_channel_admin(ctx, new_release):
    rid = new_release()
    fakes.plan("beta", "publish", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    assert release(ctx, rid).state == "partially_published"
    beta = delivery(ctx, "beta")
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        recovery.resend(uow, beta.id, "press")
    with UnitOfWork(ctx) as uow:
        recovery.resend(uow, beta.id, "admin_ops")
    drain(ctx)
    assert release(ctx, rid).state == "published"
    assert len(fakes.posts("beta")) == 1 and delivery(ctx, "beta").attempts > beta.attempts


def test_cancelling_a_failed_delivery_settles_the_release(ctx, new_release):
    rid = new_release()
    fakes.plan("beta", "publish", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    with UnitOfWork(ctx) as uow:
        recovery.cancel(uow, delivery(ctx, "beta").id, "admin_ops", "该栏目已停办")
    assert delivery(ctx, "beta").state == "cancelled"


def test_a_paused_channel_waits_and_resumes(ctx, new_release):
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "beta", True, "admin_ops")
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    assert delivery(ctx, "beta").state == "pending" and delivery(ctx, "beta").attempts == 0
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "beta", False, "admin_ops")
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)
    assert release(ctx, rid).state == "published"


def test_rejected_credentials_flag_the_channel_and_the_delivery_waits(ctx, new_release):
    rid = new_release()
    fakes.plan("alpha", "publish", "credentials")
    approve_all(ctx, rid)
    drain(ctx)
    alpha = delivery(ctx, "alpha")
    assert alpha.state == "staged" and alpha.last_error_code == "21327"
    with UnitOfWork(ctx) as uow:
        assert uow.session.exec(select(ChannelInstance).where(
            ChannelInstance.name == "alpha")).one().credentials_rejected
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)
    assert delivery(ctx, "alpha").state == "staged"  # still waiting for the admin
    with UnitOfWork(ctx) as uow:  # the admin re-authorises
        channels.save_channel(uow, "alpha", "memory", {"account": "alpha"},
                              {"token": "new-token"}, "admin_ops")
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)
    assert release(ctx, rid).state == "published" and len(fakes.posts("alpha")) == 1


def test_the_reaper_recovers_a_delivery_whose_worker_died(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    ctx.queue.sent.clear()  # the broker lost every message
    with UnitOfWork(ctx) as uow:  # and a worker died holding alpha's claim
        row = uow.session.exec(select(Delivery).where(Delivery.channel == "alpha")).one()
        row.state, row.lease_until = "staging", clock.utcnow() + dt.timedelta(seconds=60)
        uow.session.add(row)
        uow.commit()
    assert scheduler.tick(ctx)["expired"] == 0  # the lease still holds
    clock.travel(61)
    counts = scheduler.tick(ctx)
    assert counts["expired"] == 1 and counts["redriven"] == 1  # alpha re-sent on expiry, beta idle
    drain(ctx)
    assert release(ctx, rid).state == "published"
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]


def test_a_publish_cut_off_by_a_dead_worker_is_reconciled_not_reposted(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    # as if alpha's post went out and its worker died before recording it
    with UnitOfWork(ctx) as uow:
        row = uow.session.exec(select(Delivery).where(Delivery.channel == "alpha")).one()
        row.state, row.lease_until = "publishing", clock.utcnow()
        uow.session.add(row)
        release_row = uow.session.get(Release, rid)
        release_row.state = "publishing"
        uow.session.add(release_row)
        uow.commit()
    clock.travel(1)
    scheduler.tick(ctx)
    drain(ctx)
    assert delivery(ctx, "alpha").state == "published"
    assert len(fakes.posts("alpha")) == 1


def test_retry_delays_follow_the_policy():
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, max_attempts=5)
    rng = random.Random(7)
    for attempt in range(1, 10):
        delay = policy.delay(attempt, rng=rng)
        assert 0 <= delay <= min(60, 2 * 2 ** (attempt - 1))
    assert policy.delay(1, retry_after=300, rng=rng) == 300  # the channel's window is a floor
    assert policy.may_retry(4, 10) and not policy.may_retry(5, 10)
    assert not policy.may_retry(1, policy.max_age_seconds + 1)


def test_a_second_scheduler_waits_for_the_lease(ctx):
    assert scheduler.hold_lease(ctx, "first", ttl=10)
    assert not scheduler.hold_lease(ctx, "second", ttl=10)
    assert scheduler.hold_lease(ctx, "first", ttl=10)  # renewing
    clock.travel(11)  # the first one died and stopped renewing
    assert scheduler.hold_lease(ctx, "second", ttl=10)
    assert not scheduler.hold_lease(ctx, "first", ttl=10)


def test_two_schedulers_never_fire_a_release_twice(ctx, new_release):
    rid = new_release(go_live_at=soon().isoformat())
    approve_all(ctx, rid)
    drain(ctx)
    clock.travel(11 * 60)
    other = Context(ctx.engine, ctx.settings, RecordingQueue())
    fired = scheduler.tick(ctx)["fired"] + scheduler.tick(other)["fired"]
    drain(ctx)
    drain(other)
    assert fired == 1 and [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]


def test_a_go_live_group_goes_live_as_one(ctx, new_release):
    policy = new_release(title="关于促进民营经济发展的若干措施", group="民营经济-2026")
    reading = new_release(title="《若干措施》政策解读", group="民营经济-2026")
    approve_all(ctx, policy)
    drain(ctx)
    assert release(ctx, policy).state == "approved" and fakes.posts("alpha") == []
    assert "group" in release(ctx, policy).state_reason
    approve_all(ctx, reading)
    drain(ctx)
    assert release(ctx, policy).state == release(ctx, reading).state == "published"
    times = sorted(p["at"] for p in fakes.posts("alpha") + fakes.posts("beta"))
    assert len(times) == 4 and (times[-1] - times[0]).total_seconds() < 1


@pytest.mark.parametrize("scheduled", [False, True], ids=["immediate", "scheduled"])
@pytest.mark.parametrize(("grown", "named"), [
    ("[新增] severity=block  # 上级通报后加入\n冬季安全\n", "冬季安全"),
    # a keyword stack: one word in each of the title, the summary and the body
    ("[新增堆砌] severity=block stack=3\n通知\n部署\n贯彻落实\n", "“贯彻落实”"),
], ids=["word", "keyword-stack"])
def test_content_that_became_blocking_after_approval_is_held_at_go_live(ctx, new_release,
                                                                        tmp_path, scheduled,
                                                                        grown, named):
    """One go-live gate: the word list grew after sign-off; neither path publishes."""
    from orchestrator.settings import Settings

    words = tmp_path / "words.txt"
    words.write_text("[示例] severity=flag\n示例敏感词\n", encoding="utf-8")
    listed = Context(ctx.engine, Settings(**{**ctx.settings.model_dump(), "_env_file": None,
                                              "sensitive_words_file": words}), ctx.queue)
    rid = new_release(go_live_at=soon().isoformat()) if scheduled else new_release()
    assert approve_all(listed, rid) == ("scheduled" if scheduled else "approved")
    # the list changes after sign-off, before the channels are staged and the time comes
    words.write_text(grown, encoding="utf-8")
    drain(listed)
    clock.travel(11 * 60)
    scheduler.tick(listed)
    drain(listed)
    held = release(listed, rid)
    assert held.state == ("scheduled" if scheduled else "approved")
    assert named in held.state_reason and "title" in held.state_reason
    assert fakes.posts("alpha") == [] and fakes.posts("beta") == []


@pytest.mark.parametrize("scheduled", [False, True], ids=["immediate", "scheduled"])
def test_a_link_no_longer_allowed_at_go_live_holds_both_paths_alike(ctx, new_release, scheduled):
    from orchestrator.settings import Settings

    body = "各市人民政府：\n\n详见 https://www.gov.cn/zhengce/1.htm 。"
    rid = new_release(body=body, **({"go_live_at": soon().isoformat()} if scheduled else {}))
    approve_all(ctx, rid)
    # after sign-off the deployment stops allowing links to gov.cn
    narrowed = Context(ctx.engine, Settings(**{**ctx.settings.model_dump(), "_env_file": None,
                                                "allowed_link_domains": ()}), ctx.queue)
    drain(narrowed)
    clock.travel(11 * 60)
    scheduler.tick(narrowed)
    drain(narrowed)
    held = release(narrowed, rid)
    assert held.state == ("scheduled" if scheduled else "approved"), held.state
    assert "www.gov.cn" in held.state_reason
    assert fakes.posts("alpha") == [] and fakes.posts("beta") == []


def test_a_forced_go_live_does_not_skip_the_pre_publish_checks(ctx, new_release):
    """Forcing leaves out channels that could not be staged; it never waives the checks."""
    from orchestrator.domain.errors import Refused
    from orchestrator.settings import Settings

    rid = new_release(body="各市人民政府：\n\n详见 https://www.gov.cn/zhengce/1.htm 。")
    fakes.plan("beta", "stage", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    narrowed = Context(ctx.engine, Settings(**{**ctx.settings.model_dump(), "_env_file": None,
                                                "allowed_link_domains": ()}), ctx.queue)
    with UnitOfWork(narrowed) as uow, pytest.raises(Refused, match="www.gov.cn"):
        golive.force_go_live(uow, rid, "leader", "微博账号维护中，先发网站")
    drain(narrowed)
    assert release(ctx, rid).state == "approved" and fakes.posts("alpha") == []
