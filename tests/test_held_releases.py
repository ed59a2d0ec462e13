"""Held releases are never silent: a channel that holds a release (paused, credentials
rejected, failing to stage) says why on the release and in the approver's queue, and
alerts — an urgent release at once, others after a grace period. The approver lets
the rest go live without it (audited, with a reason) or waits."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from orchestrator.domain import clock
from orchestrator.domain.errors import InvalidInput, Refused
from orchestrator.settings import Settings
from orchestrator.store.models import Alert, AuditEvent, ChannelInstance, Delivery, Release
from orchestrator.usecases import channels, golive, holds, recovery, releases, review, scheduler
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain

GRACE = 120.0


@pytest.fixture
def settings(tmp_path, database_url, alert_hook) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(var_dir=tmp_path, database_url=database_url,
                    site_base_url="http://127.0.0.1:8000/site", alert_webhook_url=alert_hook[0],
                    alert_webhook_secret="whsec_" + "D" * 32, outbound_allow=("127.0.0.1",),
                    held_alert_seconds=GRACE, _env_file=None)


def approve(ctx: Context, rid: int) -> None:
    """Every signature the release's policy asks for (an urgent one takes the fast track)."""
    with UnitOfWork(ctx) as uow:
        urgent = uow.session.get(Release, rid).priority == "urgent"
    if not urgent:
        approve_all(ctx, rid)
        return
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, rid, "press")
    for signer in ("secrecy", "leader"):
        with UnitOfWork(ctx) as uow:
            review.approve(uow, rid, signer)


def tick(ctx: Context) -> None:
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)


def release(ctx: Context, rid: int) -> Release:
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, rid)


def deliveries(ctx: Context, rid: int) -> dict[str, Delivery]:
    with UnitOfWork(ctx) as uow:
        return {d.channel: d for d in uow.session.exec(
            select(Delivery).where(Delivery.release_id == rid))}


def shown(ctx: Context, rid: int, who: str = "leader") -> dict:
    with UnitOfWork(ctx) as uow:
        return releases.show(uow.session, rid, who)


def queue(ctx: Context, who: str = "leader") -> list[dict]:
    with UnitOfWork(ctx) as uow:
        return holds.held_releases(uow.session, who)


def pause(ctx: Context, channel: str) -> None:
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, channel, True, "admin_ops")


def test_an_urgent_release_held_by_a_paused_channel_says_why_and_alerts_at_once(
        ctx, new_release, alert_hook):
    pause(ctx, "beta")
    rid = new_release(priority="urgent")
    approve(ctx, rid)
    drain(ctx)
    assert release(ctx, rid).state == "approved" and fakes.posts("alpha") == []
    view = shown(ctx, rid)
    assert "beta is paused" in view["state_reason"]
    [held] = view["held_by"]
    assert held["channel"] == "beta" and "暂停" in held["message"]
    assert shown(ctx, rid, "admin_ops")["held_by"] == view["held_by"]  # in the header too
    [queued] = queue(ctx)
    assert queued["id"] == rid and queued["held_by"] == view["held_by"]
    assert queue(ctx, "reviewer") == []  # the queue is for those who may decide
    [told] = alert_hook[1]  # at once: no tick, no grace
    assert told["kind"] == "held" and told["release_id"] == rid and "beta" in told["text"]
    for _ in range(3):  # said once, however long it holds
        clock.travel(GRACE)
        tick(ctx)
    assert len(alert_hook[1]) == 1


def test_a_normal_release_alerts_after_the_grace_period_and_not_if_it_clears(
        ctx, new_release, alert_hook):
    pause(ctx, "beta")
    rid = new_release()
    approve(ctx, rid)
    drain(ctx)
    assert shown(ctx, rid)["held_by"] and alert_hook[1] == []  # shown at once, told later
    tick(ctx)
    assert alert_hook[1] == []
    clock.travel(GRACE + 1)
    tick(ctx)
    [told] = alert_hook[1]
    assert told["kind"] == "held" and told["release_id"] == rid
    # another release whose hold clears within the grace period never alerts
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "beta", False, "admin_ops")
    tick(ctx)
    assert release(ctx, rid).state == "published" and shown(ctx, rid)["held_by"] == []
    pause(ctx, "alpha")
    other = new_release()
    approve(ctx, other)
    drain(ctx)
    assert shown(ctx, other)["held_by"]
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "alpha", False, "admin_ops")
    clock.travel(GRACE + 1)
    tick(ctx)
    assert release(ctx, other).state == "published" and len(alert_hook[1]) == 1
    with UnitOfWork(ctx) as uow:
        assert uow.session.exec(select(Alert).where(Alert.cleared_at.is_(None))).all() == []


def test_rejected_credentials_hold_a_release_and_say_so(ctx, new_release, alert_hook):
    with UnitOfWork(ctx) as uow:
        row = uow.session.exec(select(ChannelInstance).where(ChannelInstance.name == "beta")).one()
        row.credentials_rejected = True
        uow.session.add(row)
        uow.commit()
    rid = new_release(priority="urgent")
    approve(ctx, rid)
    drain(ctx)
    view = shown(ctx, rid)
    assert "credentials were rejected" in view["state_reason"]
    assert "凭据" in view["held_by"][0]["message"] and alert_hook[1][0]["kind"] == "held"


def test_a_channel_failing_to_stage_holds_and_says_so_while_it_retries(ctx, new_release, alert_hook):
    with UnitOfWork(ctx) as uow:  # it backs off between tries
        channels.save_channel(uow, "beta", "memory",
                              {"account": "beta", "retry": {"base_seconds": 60.0}},
                              None, "admin_ops")
    fakes.always("beta", "stage", "retryable")
    rid = new_release(priority="urgent")
    approve(ctx, rid)
    drain(ctx)
    view = shown(ctx, rid)
    assert "beta is failing to stage" in view["state_reason"]
    assert "正在重试" in view["held_by"][0]["message"] and len(alert_hook[1]) == 1
    assert queue(ctx)[0]["id"] == rid
    fakes.ALWAYS.clear()  # the fault passes: the retry stages it and the release goes live
    clock.travel(3600)
    tick(ctx)
    assert release(ctx, rid).state == "published" and shown(ctx, rid)["held_by"] == []


def test_the_approver_goes_live_without_the_held_channel_audited_with_a_reason(
        ctx, new_release, alert_hook):
    at = clock.utcnow() + dt.timedelta(minutes=10)
    rid = new_release(priority="urgent", go_live_at=at.isoformat())
    approve(ctx, rid)
    drain(ctx)
    assert {d.state for d in deliveries(ctx, rid).values()} == {"staged"}
    pause(ctx, "beta")  # paused after staging: it holds the go-live, not sent later alone
    clock.travel(11 * 60)
    tick(ctx)
    assert release(ctx, rid).state == "scheduled" and shown(ctx, rid)["held_by"]
    assert fakes.posts("alpha") == [] and alert_hook[1][0]["kind"] == "held"
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="reason"):
        golive.force_go_live(uow, rid, "leader", " ")
    with UnitOfWork(ctx) as uow:
        assert golive.force_go_live(uow, rid, "leader", "微博暂停中，网站先发") == ["beta"]
    drain(ctx)
    assert release(ctx, rid).state == "partially_published"
    assert {c: d.state for c, d in deliveries(ctx, rid).items()} == {
        "alpha": "published", "beta": "cancelled"}
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "beta", False, "admin_ops")
    tick(ctx)
    assert fakes.posts("beta") == []  # the left-out channel never goes out on its own
    with UnitOfWork(ctx) as uow:
        [event] = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "release.forced_go_live")).all()
    assert event.actor == "leader" and event.detail["reason"] == "微博暂停中，网站先发"
    assert "beta is paused" in event.detail["held_by"]["beta"]
    assert queue(ctx) == [] and shown(ctx, rid)["held_by"] == []


def test_waiting_is_a_choice_too_the_release_goes_live_whole_when_the_channel_returns(
        ctx, new_release):
    pause(ctx, "beta")
    rid = new_release()
    approve(ctx, rid)
    drain(ctx)
    clock.travel(3600)
    tick(ctx)
    assert release(ctx, rid).state == "approved" and fakes.posts("alpha") == []
    with UnitOfWork(ctx) as uow:
        channels.set_paused(uow, "beta", False, "admin_ops")
    tick(ctx)
    assert release(ctx, rid).state == "published"
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]


def test_a_go_live_group_waits_for_a_member_its_channel_holds_and_says_so(ctx, new_release):
    policy = new_release(title="关于促进民营经济发展的若干措施", group="民营经济-2026",
                         channels=["alpha"], overrides={})
    reading = new_release(title="《若干措施》政策解读", group="民营经济-2026")
    approve(ctx, policy)
    drain(ctx)
    with UnitOfWork(ctx) as uow:  # the reading's channels are staged when beta is paused
        releases.submit(uow, reading, "press")
    pause(ctx, "beta")
    for signer in ("reviewer", "secrecy", "leader"):
        with UnitOfWork(ctx) as uow:
            review.approve(uow, reading, signer)
    drain(ctx)
    tick(ctx)
    assert release(ctx, policy).state == release(ctx, reading).state == "approved"
    assert f"group member {reading} is held" in release(ctx, policy).state_reason
    assert shown(ctx, reading)["held_by"][0]["channel"] == "beta"
    assert fakes.posts("alpha") == [] and fakes.posts("beta") == []


@pytest.mark.parametrize("paused", [True, False])
def test_a_channel_admin_cannot_drop_a_channel_from_a_signed_release_before_go_live(
        ctx, new_release, paused):
    """Leaving a channel out before go-live is the approver's forced partial go-live, with a
    reason: a channel admin cancelling a waiting or staged delivery would let the release go
    live without it unsigned, or stall it for good with no hold shown."""
    at = clock.utcnow() + dt.timedelta(minutes=10)
    if paused:
        pause(ctx, "beta")
    rid = new_release(go_live_at=at.isoformat())
    approve(ctx, rid)
    drain(ctx)
    beta = deliveries(ctx, rid)["beta"]
    assert beta.state == ("pending" if paused else "staged")
    for reason in ("", "该栏目已停办"):
        with UnitOfWork(ctx) as uow, pytest.raises(Refused, match="approver"):
            recovery.cancel(uow, beta.id, "admin_ops", reason)
    assert deliveries(ctx, rid)["beta"].state == beta.state
    clock.travel(11 * 60)
    tick(ctx)
    if paused:  # still visibly held, and the approver's to force
        assert release(ctx, rid).state == "scheduled" and shown(ctx, rid)["held_by"]
        with UnitOfWork(ctx) as uow:
            golive.force_go_live(uow, rid, "leader", "网站暂停，微博先发")
        drain(ctx)
    assert len(fakes.posts("alpha")) == 1
    assert release(ctx, rid).state == ("partially_published" if paused else "published")


def test_a_failed_stage_is_the_approvers_to_waive_not_the_channel_admins(ctx, new_release):
    fakes.plan("beta", "stage", "permanent")
    rid = new_release()
    approve(ctx, rid)
    drain(ctx)
    beta = deliveries(ctx, rid)["beta"]
    assert beta.state == "failed" and shown(ctx, rid)["held_by"]
    with UnitOfWork(ctx) as uow, pytest.raises(Refused, match="force go-live"):
        recovery.cancel(uow, beta.id, "admin_ops", "不发了")
    assert shown(ctx, rid)["held_by"] and release(ctx, rid).state == "approved"


def test_a_signed_release_left_waiting_on_an_unsigned_group_member_alerts_once(
        ctx, new_release, alert_hook):
    """The group goes live together, so a signed member waits for the others; when its
    time has come and a member is still unsigned, people are told (after the grace period),
    once, and the alert closes when the group goes live."""
    policy = new_release(title="关于促进民营经济发展的若干措施", group="民营经济-2026",
                         channels=["alpha"], overrides={})
    reading = new_release(title="《若干措施》政策解读", group="民营经济-2026")
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, reading, "press")
    approve(ctx, policy)
    drain(ctx)
    tick(ctx)
    assert release(ctx, policy).state == "approved" and alert_hook[1] == []
    for _ in range(3):  # said once, however long it waits
        clock.travel(GRACE + 1)
        tick(ctx)
    [told] = alert_hook[1]
    assert told["kind"] == "held" and told["release_id"] == policy
    assert f"{reading}「《若干措施》政策解读」（审核中）" in told["text"]
    with UnitOfWork(ctx) as uow:
        raised = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "alert.held", AuditEvent.release_id == policy)).all()
    assert len(raised) == 1
    for signer in ("reviewer", "secrecy", "leader"):
        with UnitOfWork(ctx) as uow:
            review.approve(uow, reading, signer)
    drain(ctx)
    tick(ctx)
    assert release(ctx, policy).state == release(ctx, reading).state == "published"
    with UnitOfWork(ctx) as uow:
        assert uow.session.exec(select(Alert).where(Alert.cleared_at.is_(None))).all() == []
