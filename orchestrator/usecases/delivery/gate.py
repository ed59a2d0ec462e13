"""The go-live gate: when every channel is staged and nothing holds it, a release goes live.

One gate for an immediate go-live and a scheduled one alike; the decisions themselves
(is the group ready? why does a release wait?) are orchestrator.domain.publishing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import Refused
from orchestrator.domain.publishing import ready_to_go_live, waiting_for
from orchestrator.domain.states import STATE_LABELS, release_transition
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import alerts, audit, content_checks
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.holds import channel_holds, speak_of_holds
from orchestrator.usecases.unit_of_work import Context, UnitOfWork


def hold_or_fire(ctx: Context, release_id: int, enqueue_fire: bool = True) -> bool:
    """When every channel is staged, an approved release goes live; a failed stage holds it.

    A release in a go-live group goes live only with every other member of the group.
    True when it went live now (with enqueue_fire=False the caller fires it).
    """
    with UnitOfWork(ctx) as uow:
        release = claims.locked(uow.session, Release, release_id)
        if release.state == R.PUBLISHING:  # a re-sent channel joins a release already live
            for delivery in claims.current_deliveries(uow.session, release):
                # one armed for the go-live instant is its share's (delivery.instant): a
                # publish task of its own would race the share and send it on its own
                if delivery.state == D.STAGED and delivery.next_attempt_at is None:
                    claims.send(uow, "publish", delivery)
            uow.commit()
            return False
        if release.state != R.APPROVED:
            return False
        members = cleared_to_go_live(uow, release, (R.APPROVED,))
        if members is None:
            return False
        for member in members:
            go_live(uow, member, actor=claims.WORKER,
                    enqueue_fire=enqueue_fire and member is members[0])
        uow.commit()
        return True


def cleared_to_go_live(uow: UnitOfWork, release: Release, states: tuple[R, ...],
                       at: datetime | None = None) -> list[Release] | None:
    """The go-live gate, one for an immediate go-live and a scheduled one alike.

    Every channel staged, the pre-publish checks passed again on exactly what each channel
    will send (the word lists or the allowed domains may have changed since sign-off), and
    every member of its go-live group ready and clear. Returns the releases to go live
    together (at `at`, default now), or None with the reason noted on the release (it is
    held, not published).
    """
    holds = channel_holds(uow.session, release)
    if speak_of_holds(uow, release, holds):
        _note(uow, release, "held: " + "; ".join(h.why for h in holds))
        return None
    blocked = blocked_now(uow, release)
    if blocked:
        _note(uow, release, f"held by a pre-publish check: {blocked}")
        return None
    waiting = waiting_for(release)
    if waiting:
        _note(uow, release, waiting)
        return None
    members = ready_members(uow.session, release, states, at)
    if members is None:
        if release.golive_group:
            held = _held_in_group(uow.session, release)
            _note(uow, release, held or f"waiting for the rest of group {release.golive_group}")
            if not held:  # a member held by a channel alerts itself
                _speak_of_unsigned_members(uow, release)
        return None
    for member in members:
        if member is not release and (blocked := blocked_now(uow, member)):
            _note(uow, release, f"held: group member {member.id} is held by a pre-publish "
                                f"check: {blocked}")
            return None
    if held := _held_in_group(uow.session, release):
        _note(uow, release, held)
        return None
    return members


def _held_in_group(session: Session, release: Release) -> str:
    """Which other member of the release's go-live group a channel holds ('' if none);
    that member says why itself, on its board and in its alert."""
    if not release.golive_group:
        return ""
    others = session.exec(select(Release).where(
        Release.golive_group == release.golive_group, Release.group_status == "member",
        Release.id != release.id, Release.state.in_([R.APPROVED, R.SCHEDULED]))
        .order_by(Release.id)).all()
    for member in others:
        if holds := channel_holds(session, member):
            return (f"held: group member {member.id} is held: "
                    + "; ".join(h.why for h in holds))
    return ""


def _speak_of_unsigned_members(uow: UnitOfWork, release: Release) -> None:
    """A signed release whose time has come, waiting on group members people have not
    signed yet, is never silent: an alert (after the grace period; an urgent one at once)."""
    if release.go_live_at is not None and release.go_live_at > utcnow():
        return  # not late yet: waiting for its own time
    unsigned = uow.session.exec(select(Release).where(
        Release.golive_group == release.golive_group, Release.group_status == "member",
        Release.id != release.id, Release.state.in_([R.DRAFT, R.IN_REVIEW, R.REJECTED]))
        .order_by(Release.id)).all()
    if not unsigned:
        return
    named = "、".join(f"{m.id}「{m.title}」（{STATE_LABELS[m.state]}）" for m in unsigned[:3])
    more = f"等 {len(unsigned)} 篇" if len(unsigned) > 3 else ""
    message = (f"稿件 {release.id}「{release.title}」已签发，上线时间已到，仍在等待同步上线组"
               f"「{release.golive_group}」中尚未签发的稿件：{named}{more}。"
               "可催办，或由组的所有者将其移出本组。")
    if alerts.raise_alert(uow, alerts.HELD, release, message, at_once=False) is not None:
        uow.commit()


def blocked_now(uow: UnitOfWork, release: Release) -> str:
    """What stops this release going live now (pre-publish checks on the stored payloads)."""
    payloads = {d.channel: d.payload for d in claims.current_deliveries(uow.session, release)}
    try:
        found = content_checks.findings(uow.ctx.settings, uow.session, release, payloads,
                                        kind_of=uow.ctx.adapters.kind)
    except Refused as exc:  # the checks cannot run (a broken word list): hold, never skip them
        return str(exc)
    return "; ".join(f"{f.where}: {f.message}" for f in content_checks.blocking(found))


def _note(uow: UnitOfWork, release: Release, reason: str) -> None:
    if release.state_reason != reason:
        release.state_reason = reason
        uow.session.add(release)
        uow.commit()


def ready_members(session: Session, release: Release, states: tuple[R, ...],
                  at: datetime | None = None) -> list[Release] | None:
    """The releases that go live together with this one, if every one is ready; else None.

    Only consented members count: a release that names a group without its owner's
    consent waits on its own and never holds the group back. The group goes live at the
    latest time signed for any of its members: none goes out before its own signed time.
    """
    if waiting_for(release):
        return None
    members = [release]
    if release.golive_group:
        members = [claims.locked(session, Release, rid) for rid in session.exec(
            select(Release.id).where(Release.golive_group == release.golive_group,
                                     Release.group_status == "member",
                                     Release.state != R.WITHDRAWN).order_by(Release.id))]
    staged = [(m, [d.state for d in claims.current_deliveries(session, m)]) for m in members]
    return members if ready_to_go_live(staged, states, at or utcnow()) else None


def signed_go_live_at(session: Session, release: Release) -> datetime | None:
    """The earliest a release may go out: its own signed time and, for a consented member
    of a go-live group, the latest time signed for any member (the group goes together)."""
    times = [release.go_live_at]
    if release.golive_group and release.group_status == "member":
        times += session.exec(select(Release.go_live_at).where(
            Release.golive_group == release.golive_group, Release.group_status == "member",
            Release.state != R.WITHDRAWN)).all()
    known = [t for t in times if t is not None]
    return max(known) if known else None


def go_live(uow: UnitOfWork, release: Release, actor: str, enqueue_fire: bool = True) -> None:
    before = {"state": release.state}
    release.state = release_transition(release.state, R.PUBLISHING)
    release.state_reason = ""
    alerts.clear(uow.session, alerts.HELD, release.id)  # nothing holds it any more
    uow.session.add(release)
    audit.record(
        uow.session, actor=actor, action=Action.RELEASE_GO_LIVE, subject_type="release",
        subject_id=release.id, release_id=release.id, before=before,
        after={"state": release.state},
    )
    # its staged channels wait for the go-live instant that fire() sets (delivery.instant):
    # from now on no publish task of their own may take them before it
    ids = [d.id for d in claims.current_deliveries(uow.session, release) if d.state == D.STAGED]
    if ids:
        soonest = utcnow() + timedelta(seconds=uow.ctx.settings.go_live_gather_seconds)
        uow.session.execute(update(Delivery).where(Delivery.id.in_(ids))
                            .values(next_attempt_at=soonest))
    if enqueue_fire:
        uow.enqueue("fire", priority=release.priority, release_id=release.id)
