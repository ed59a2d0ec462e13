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
from tests.test_console import console, signed_in  # noqa: F401


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


def test_a_group_named_by_a_draft_never_submitted_does_not_stall_a_signed_release(
        ctx, people, memory_channels):
    """press2 names the group first in a draft it never submits; press's release naming it
    is submitted and signed: the squatted name lapses to press and it goes live."""
    with UnitOfWork(ctx) as uow:
        squat = releases.create(uow, release_input(title="草稿", group="两会政策解读"), "press2")
        rid = releases.create(uow, release_input(group="两会政策解读"), "press")
    assert release(ctx, rid).group_status == "pending"
    approve_all(ctx, rid)
    drain(ctx)
    assert release(ctx, rid).state == "published" and "group.lapsed" in actions(ctx, rid)
    assert release(ctx, squat).group_status == "pending"  # now a joiner, asking press
    # a group whose owner has submitted a member does not lapse: the joiner waits
    with UnitOfWork(ctx) as uow:
        own = releases.create(uow, release_input(title="本组", group="g2"), "press2")
        releases.submit(uow, own, "press2")
        joiner = releases.create(uow, release_input(title="加入", group="g2"), "press")
        releases.submit(uow, joiner, "press")
    assert release(ctx, joiner).group_status == "pending"


@pytest.mark.parametrize(("base", "lookalike"), [
    ("两会政策解读", "两会政策解读\u200b"),  # zero-width space
    ("policy-A", "policy-A\u00a0"),  # no-break space at the end
    ("policy-A", "ｐｏｌｉｃｙ-A"),  # full-width (NFKC: policy-A)
    ("两会政策解读", "兩會政策解讀"),  # the traditional form
])
def test_a_look_alike_group_name_is_the_same_group(ctx, people, memory_channels, base,
                                                    lookalike):
    with UnitOfWork(ctx) as uow:
        first = releases.create(uow, release_input(group=base), "press")
        second = releases.create(uow, release_input(title="解读", group=lookalike), "press2")
    assert release(ctx, second).golive_group == release(ctx, first).golive_group == base
    assert release(ctx, second).group_status == "pending"  # press's group: press consents


def test_a_group_name_mixing_look_alike_scripts_is_refused_naming_it(ctx, people):
    from orchestrator.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        release_input(group="p\u043elicy-A")  # a Cyrillic о among Latin letters
    assert [f for f, _ in refused.value.problems] == ["group"]


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


def joined(ctx, new_release, **changes):
    """press owns group g1 (its policy); press2's reading is a consented member of it."""
    policy = new_release(title="关于促进民营经济发展的若干措施", group="g1", **changes)
    with UnitOfWork(ctx) as uow:
        reading = releases.create(uow, release_input(title="《若干措施》政策解读", group="g1"),
                                  "press2")
    run(ctx, golive.consent_to_group, reading, "press", True, "解读稿一同上线")
    return policy, reading


def approve_as(ctx, rid, author):
    with UnitOfWork(ctx) as uow:
        releases.submit(uow, rid, author)
    for signer in ("reviewer", "secrecy", "leader"):
        state = run(ctx, review.approve, rid, signer)
    return state


def test_a_group_goes_live_at_the_latest_time_signed_for_any_member(ctx, new_release, people):
    early = new_release(title="主稿", group="g1", go_live_at=soon(10).isoformat())
    late = new_release(title="解读", group="g1", go_live_at=soon(60).isoformat())
    assert approve_all(ctx, early) == approve_all(ctx, late) == "scheduled"
    drain(ctx)
    clock.travel(11 * 60)  # the first member's time: the second is signed for 50 minutes on
    assert scheduler.tick(ctx)["fired"] == 0
    drain(ctx)
    assert fakes.posts("alpha") == [] and release(ctx, late).state == "scheduled"
    assert "g1" in release(ctx, early).state_reason
    clock.travel(50 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    drain(ctx)
    assert release(ctx, early).state == release(ctx, late).state == "published"
    assert len(fakes.posts("alpha")) == 2


@pytest.mark.parametrize("held", [True, False])
def test_forcing_one_member_never_sends_it_before_its_groups_time(ctx, new_release, held):
    """The early member, held by a paused channel at its own time, is forced by an approver:
    it still waits for the group's time (the latest signed for any member), then goes."""
    early = new_release(title="主稿", group="g1", go_live_at=soon(10).isoformat())
    late = new_release(title="解读", group="g1", go_live_at=soon(60).isoformat())
    assert approve_all(ctx, early) == approve_all(ctx, late) == "scheduled"
    drain(ctx)
    if held:
        run(ctx, channels.set_paused, "beta", True, "admin_ops")
    clock.travel(11 * 60)
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)
    with UnitOfWork(ctx) as uow, pytest.raises(Refused, match="group g1"):
        golive.force_go_live(uow, early, "leader", "网站暂停，微博先发")
    drain(ctx)
    assert fakes.posts("alpha") == [] and release(ctx, early).state == "scheduled"
    clock.travel(50 * 60)
    if held:  # at the group's time the approver may leave the paused channel out
        assert run(ctx, golive.force_go_live, early, "leader", "网站暂停，微博先发") == ["beta"]
    scheduler.tick(ctx, redrive_after=0)
    drain(ctx)
    assert len(fakes.posts("alpha")) >= 1


def test_a_joiners_consent_is_asked_again_after_an_edit_or_a_new_time(ctx, new_release, people):
    _, reading = joined(ctx, new_release)
    run(ctx, releases.edit, reading, release_input(title="《若干措施》政策解读（改）", group="g1"),
        "press2")
    assert release(ctx, reading).group_status == "pending"  # consent was to the old text
    run(ctx, golive.consent_to_group, reading, "press", True, "")
    run(ctx, golive.schedule, reading, soon(60), "press2")
    assert release(ctx, reading).group_status == "pending"  # and to the old time
    run(ctx, golive.consent_to_group, reading, "press", True, "")
    assert approve_as(ctx, reading, "press2") == "scheduled"
    run(ctx, golive.schedule, reading, soon(90), "press2")
    assert release(ctx, reading).group_status == "member"  # only asked, not moved yet
    run(ctx, golive.sign_reschedule, reading, "leader", True, "同意改期")
    assert release(ctx, reading).group_status == "pending"
    trail = actions(ctx, reading)
    assert trail.count("release.group_consented") == 3


def test_the_group_is_part_of_what_is_signed(ctx, new_release, people):
    from orchestrator.domain.hashing import content_hash
    from orchestrator.usecases.rendering import hashed_fields, render_all

    alone = new_release(title="单独上线")
    assert "golive_group" not in hashed_fields(release(ctx, alone))  # its hash as before
    digest = run(ctx, releases.submit, alone, "press")
    with UnitOfWork(ctx) as uow:
        payloads, _ = render_all(ctx.settings, uow.session, release(ctx, alone))
    assert content_hash(hashed_fields(release(ctx, alone)), payloads) == digest
    grouped = new_release(title="同步上线", group="g1")
    approve_all(ctx, grouped)
    with UnitOfWork(ctx) as uow:  # moved into another group after sign-off, behind the gate
        row = uow.session.get(Release, grouped)
        row.golive_group = "g2"
        uow.session.add(row)
        uow.commit()
    drain(ctx)
    assert fakes.posts("alpha") == [] and fakes.posts("beta") == []
    assert {d.last_error_code for d in deliveries_of(ctx, grouped).values()} == {
        "content_hash_mismatch"}


def test_the_group_owner_removes_a_consented_member_before_it_goes_live(ctx, new_release, people):
    policy, reading = joined(ctx, new_release, go_live_at=soon(30).isoformat())
    assert approve_as(ctx, reading, "press2") == "approved"
    drain(ctx)
    assert fakes.posts("alpha") == []  # a member: it waits for the policy
    with pytest.raises(Forbidden):  # the joiner's author is not the group's owner
        run(ctx, golive.remove_from_group, reading, "press2", "退出")
    for someone in ("admin_ops", "leader"):  # nor anyone else who sees it
        with pytest.raises(Forbidden):
            run(ctx, golive.remove_from_group, reading, someone, "退出")
    with pytest.raises(Refused, match="reason"):
        run(ctx, golive.remove_from_group, reading, "press", " ")
    with pytest.raises(Refused, match="not another author's member"):
        run(ctx, golive.remove_from_group, policy, "press", "自己的稿件")
    assert run(ctx, golive.remove_from_group, reading, "press", "解读稿另行发布") == "removed"
    assert "release.group_removed" in actions(ctx, reading)
    assert "removed it" in release(ctx, reading).state_reason
    approve_all(ctx, policy)
    drain(ctx)
    clock.travel(31 * 60)
    assert scheduler.tick(ctx)["fired"] == 1  # the policy alone; the reading waits
    drain(ctx)
    assert release(ctx, policy).state == "published"
    assert release(ctx, reading).state == "approved"
    with pytest.raises(Refused, match="not another author's member"):
        run(ctx, golive.remove_from_group, reading, "press", "再次移出")


def test_the_group_owner_stays_when_its_first_member_leaves(ctx, new_release, people):
    policy = new_release(title="主稿", group="g1")
    run(ctx, releases.edit, policy, release_input(title="主稿"), "press")  # leaves the group
    with UnitOfWork(ctx) as uow:
        squatter = releases.create(uow, release_input(title="抢占", group="g1"), "press2")
    assert release(ctx, squatter).group_status == "pending"  # g1 is still press's
    with pytest.raises(Forbidden):
        run(ctx, golive.consent_to_group, squatter, "press2", True, "")
    run(ctx, releases.edit, policy, release_input(title="主稿", group="g1"), "press")
    assert release(ctx, policy).group_status == "member"
    run(ctx, golive.consent_to_group, squatter, "press", False, "不属于本组")


def test_parent_and_corrects_answer_alike_for_unreadable_and_missing_releases(
        ctx, new_release, people):
    draft = new_release(title="尚未提交的草稿")  # press's: press2 may not read it
    answers = {}
    for rid in (draft, 999_999):
        with pytest.raises(Refused) as parent, UnitOfWork(ctx) as uow:
            releases.create(uow, release_input(parent=rid), "press2")
        with pytest.raises(Refused) as corrects, UnitOfWork(ctx) as uow:
            releases.create(uow, release_input(corrects=rid), "press2")
        answers[rid] = (str(parent.value).replace(str(rid), "ID"),
                        str(corrects.value).replace(str(rid), "ID"))
    assert answers[draft] == answers[999_999]
    with UnitOfWork(ctx) as uow:  # its own author may name it
        child = releases.create(uow, release_input(parent=draft), "press")
    assert release(ctx, child).parent_id == draft


def test_removal_from_a_group_through_the_api_the_console_and_the_cli(
        console, new_release, people, monkeypatch):  # noqa: F811
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from orchestrator.bootstrap import make_app
    from orchestrator.cli import main as cli

    ctx = console

    first, second, third = (joined(ctx, new_release)[1] for _ in range(3))
    api = TestClient(make_app(ctx))
    owner = {"Authorization": f"Bearer {people['press']}"}
    refused = api.post(f"/api/v1/releases/{first}/group-remove", headers=owner, json={"comment": ""})
    assert refused.status_code == 422 and "comment" in refused.text
    answer = api.post(f"/api/v1/releases/{first}/group-remove", headers=owner,
                      json={"comment": "另行发布"})
    assert answer.status_code == 200 and answer.json()["group_status"] == "removed"

    client, token = signed_in(ctx, "press")
    page = client.get("/console/press").text
    assert "移出本组" in page and f"/press/{second}/group-remove" in page
    assert f"/press/{first}/group-remove" not in page  # removed already: no button
    moved = client.post(f"/console/press/{second}/group-remove",
                        data={"csrf": token, "comment": "另行发布"}, follow_redirects=False)
    assert moved.status_code == 303 and release(ctx, second).group_status == "removed"

    monkeypatch.setattr(cli, "context", lambda: ctx)
    out = CliRunner().invoke(cli.app, ["release", "group-remove", str(third), "--as", "press",
                                       "--comment", "另行发布"])
    assert out.exit_code == 0 and "removed" in out.output, out.output
    for rid in (first, second, third):
        assert "release.group_removed" in actions(ctx, rid)
