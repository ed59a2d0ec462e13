"""The gate cannot be walked around: four-eyes over every revision, sign-offs bound to the
current hash (go-live time included), ownership, and consent to join a go-live group."""

import datetime as dt

import pytest
from sqlmodel import select

from orchestrator.domain import clock
from orchestrator.domain.errors import Forbidden, NotFound, Refused
from orchestrator.domain.review import DEFAULT_POLICY, Signature
from orchestrator.store.models import AuditEvent, Delivery, Release
from orchestrator.usecases import channels, golive, releases, review, scheduler, users
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain, release_input


def run(ctx, fn, *args):
    with UnitOfWork(ctx) as uow:
        return fn(uow, *args)


def release(ctx, rid):
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, rid)


def deliveries_of(ctx, rid):
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(Delivery).where(Delivery.release_id == rid)).all()
        return {d.channel: d for d in rows}


def actions(ctx, rid):
    with UnitOfWork(ctx) as uow:
        return [e.action for e in uow.session.exec(
            select(AuditEvent).where(AuditEvent.release_id == rid).order_by(AuditEvent.id))]


def soon(minutes):
    return clock.utcnow() + dt.timedelta(minutes=minutes)


@pytest.fixture
def chief(ctx, people):
    """One person holding author and reviewer: the four-eyes attack."""
    with UnitOfWork(ctx) as uow:
        users.add_user(uow, "chief", ["author", "reviewer"])
    return "chief"


@pytest.fixture
def newsfeed(ctx, people, memory_channels, tmp_path):
    """A real newsfeed channel (Atom): its documents carry the embargo and the provider."""
    config = {"delivery": ["atom"], "atom": {"directory": str(ctx.settings.resolved_site_root / "feed")},
              "provider": "某省人民政府新闻办公室"}
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "feed", "newsfeed", config, None, "admin_ops")
    return config


# ------------------------------------------------------------------ four-eyes


def test_the_signer_policy_refuses_anyone_who_contributed_a_revision():
    with pytest.raises(Forbidden, match="edited or submitted"):
        DEFAULT_POLICY.check_signer("chief", {"reviewer"}, {"press", "chief"}, [])
    with pytest.raises(Forbidden, match="author cannot sign"):
        DEFAULT_POLICY.check_signer("press", {"reviewer"}, {"press"}, [])
    assert DEFAULT_POLICY.check_signer("reviewer", {"reviewer"}, {"press", "chief"}, []) == 0
    assert DEFAULT_POLICY.check_signer(
        "secrecy", {"secrecy"}, {"press"}, [Signature("reviewer", 0)]) == 1


def test_an_author_reviewer_cannot_rewrite_someone_elses_release_and_sign_it(ctx, new_release, chief):
    rid = new_release()
    with pytest.raises((Forbidden, NotFound)):  # a draft not theirs is not even shown to them
        run(ctx, releases.edit, rid, release_input(title="改写后的通知"), chief)
        run(ctx, releases.submit, rid, chief)
        run(ctx, review.approve, rid, chief)
    assert release(ctx, rid).title == "关于做好冬季安全生产工作的通知"


def test_a_co_author_who_edited_cannot_sign_in_any_role(ctx, people, memory_channels, chief):
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(co_authors=["chief"]), "press")
    run(ctx, releases.edit, rid, release_input(co_authors=["chief"], summary="补充"), chief)
    run(ctx, releases.submit, rid, "press")
    with pytest.raises(Forbidden, match="edited or submitted"):
        run(ctx, review.approve, rid, chief)
    with pytest.raises(Forbidden, match="edited or submitted"):
        run(ctx, review.reject, rid, chief, "不同意")
    assert release(ctx, rid).contributors == ["press", "chief"]
    assert run(ctx, review.approve, rid, "reviewer") == "in_review"


def test_only_the_owner_sets_co_authors(ctx, people, memory_channels, chief):
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(co_authors=["chief"]), "press")
    with pytest.raises(Forbidden, match="co_authors"):
        run(ctx, releases.edit, rid, release_input(co_authors=["chief", "press2"]), chief)
    # press2 is not named: not theirs to see, edit, submit or schedule
    with pytest.raises((Forbidden, NotFound)):
        run(ctx, releases.edit, rid, release_input(), "press2")
    with pytest.raises((Forbidden, NotFound)):
        run(ctx, releases.submit, rid, "press2")
    with pytest.raises((Forbidden, NotFound)):
        run(ctx, golive.schedule, rid, soon(60), "press2")


# ------------------------------------------------------------------ the current hash only


def test_a_resubmission_after_a_channel_change_needs_every_step_again(ctx, new_release, newsfeed):
    rid = new_release(channels=["alpha", "feed"])
    first = run(ctx, releases.submit, rid, "press")
    assert run(ctx, review.approve, rid, "reviewer") == "in_review"
    with UnitOfWork(ctx) as uow:  # the channel admin changes what the feed renders
        channels.save_channel(uow, "feed", "newsfeed", {**newsfeed, "provider": "另一个提供方"},
                              None, "admin_ops")
    second = run(ctx, releases.submit, rid, "press")
    assert second != first
    with pytest.raises(Forbidden, match="needs the role reviewer"):
        run(ctx, review.approve, rid, "secrecy")  # step 1 must be signed again
    assert run(ctx, review.approve, rid, "reviewer") == "in_review"
    run(ctx, review.approve, rid, "secrecy")
    assert run(ctx, review.approve, rid, "leader") == "approved"
    assert release(ctx, rid).approved_hash == second


# ------------------------------------------------------------------ the go-live time is signed


def test_moving_the_go_live_after_approval_sends_nothing_until_an_approver_signs(
        ctx, new_release, newsfeed):
    rid = new_release(channels=["alpha", "feed"], go_live_at=soon(60).isoformat())
    assert approve_all(ctx, rid) == "scheduled"
    drain(ctx)
    signed_hash = release(ctx, rid).approved_hash
    run(ctx, golive.schedule, rid, None, "press")  # the author asks: go live now
    drain(ctx)
    scheduler.tick(ctx)
    drain(ctx)
    assert fakes.posts("alpha") == []  # the website-like channel did not go out early
    assert {d.state for d in deliveries_of(ctx, rid).values()} == {"staged"}
    assert release(ctx, rid).approved_hash == signed_hash
    clock.travel(61 * 60)  # nor at the old time while the request waits
    scheduler.tick(ctx)
    drain(ctx)
    assert fakes.posts("alpha") == [] and release(ctx, rid).state == "scheduled"
    with pytest.raises(Forbidden):  # the requester, and every contributor, cannot sign it
        run(ctx, golive.sign_reschedule, rid, "press", True, "")
    with pytest.raises(Forbidden):
        run(ctx, golive.sign_reschedule, rid, "reviewer", True, "")  # not an approver
    new_time = soon(30)
    run(ctx, golive.schedule, rid, new_time, "press")  # a newer request replaces the first
    assert run(ctx, golive.sign_reschedule, rid, "leader", True, "同意改期") == "scheduled"
    drain(ctx)
    moved = release(ctx, rid)
    assert moved.go_live_at == new_time and moved.approved_hash != signed_hash
    assert fakes.posts("alpha") == []
    clock.travel(31 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    drain(ctx)
    states = {c: (d.state, d.last_error_code) for c, d in deliveries_of(ctx, rid).items()}
    assert states == {"alpha": ("published", None), "feed": ("published", None)}
    feed = deliveries_of(ctx, rid)["feed"].payload["item"]
    assert feed["embargoed"] == new_time.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    trail = actions(ctx, rid)
    assert trail.count("release.reschedule_requested") == 2 and "release.rescheduled" in trail


def test_another_author_cannot_move_a_release_at_all(ctx, new_release, newsfeed):
    rid = new_release(channels=["alpha", "feed"], go_live_at=soon(60).isoformat())
    approve_all(ctx, rid)
    drain(ctx)
    with pytest.raises((Forbidden, NotFound)):
        run(ctx, golive.schedule, rid, None, "press2")
    drain(ctx)
    assert fakes.posts("alpha") == []
    assert all(d.last_error_code is None for d in deliveries_of(ctx, rid).values())


def test_an_approver_refuses_a_reschedule_and_the_signed_time_stands(ctx, new_release):
    rid = new_release(go_live_at=soon(60).isoformat())
    approve_all(ctx, rid)
    drain(ctx)
    run(ctx, golive.schedule, rid, soon(5), "press")
    with pytest.raises(Refused, match="reason"):
        run(ctx, golive.sign_reschedule, rid, "leader", False, " ")
    run(ctx, golive.sign_reschedule, rid, "leader", False, "按原定时间")
    clock.travel(6 * 60)
    assert scheduler.tick(ctx)["fired"] == 0
    clock.travel(55 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    assert "release.reschedule_refused" in actions(ctx, rid)


def test_scheduling_in_review_voids_the_signatures_on_the_old_time(ctx, new_release):
    rid = new_release()
    run(ctx, releases.submit, rid, "press")
    run(ctx, review.approve, rid, "reviewer")
    run(ctx, golive.schedule, rid, soon(60), "press")
    with pytest.raises(Forbidden, match="needs the role reviewer"):
        run(ctx, review.approve, rid, "secrecy")


# ------------------------------------------------------------------ go-live groups


def test_a_draft_from_another_author_cannot_stall_an_approved_group(ctx, new_release, people):
    policy = new_release(title="关于促进民营经济发展的若干措施", group="民营经济-2026",
                         go_live_at=soon(10).isoformat())
    approve_all(ctx, policy)
    drain(ctx)
    with UnitOfWork(ctx) as uow:  # another author names the group in a draft of their own
        releases.create(uow, release_input(title="搭车稿件", group="民营经济-2026"), "press2")
    clock.travel(11 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    drain(ctx)
    assert release(ctx, policy).state == "published"


def test_joining_someone_elses_group_waits_for_their_consent(ctx, new_release, people):
    policy = new_release(title="关于促进民营经济发展的若干措施", group="民营经济-2026")
    with UnitOfWork(ctx) as uow:
        reading = releases.create(uow, release_input(title="《若干措施》政策解读",
                                                     group="民营经济-2026"), "press2")
    assert release(ctx, reading).group_status == "pending"
    with pytest.raises(Forbidden):  # only the group's owner consents
        run(ctx, golive.consent_to_group, reading, "press2", True, "")
    run(ctx, golive.consent_to_group, reading, "press", True, "解读稿一同上线")
    assert release(ctx, reading).group_status == "member"
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, reading, "press2")
    for signer in ("reviewer", "secrecy", "leader"):
        run(ctx, review.approve, reading, signer)
    drain(ctx)
    assert fakes.posts("alpha") == []  # the consented member waits for the policy
    approve_all(ctx, policy)
    drain(ctx)
    assert release(ctx, policy).state == release(ctx, reading).state == "published"
    assert "release.group_consented" in actions(ctx, reading)


def test_a_refused_joiner_holds_itself_not_the_group(ctx, new_release, people):
    policy = new_release(group="g1")
    with UnitOfWork(ctx) as uow:
        joiner = releases.create(uow, release_input(title="加入", group="g1"), "press2")
    run(ctx, golive.consent_to_group, joiner, "press", False, "不属于本组")
    assert release(ctx, joiner).group_status == "refused"
    approve_all(ctx, policy)
    drain(ctx)
    assert release(ctx, policy).state == "published"
    assert "release.group_refused" in actions(ctx, joiner)
