"""When a release goes live: scheduling (embargo), holding, and the forced partial go-live."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select

from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import InvalidInput, Refused
from orchestrator.domain.release import go_live_problems
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import audit, fanout
from orchestrator.usecases import delivery_steps as steps
from orchestrator.usecases.releases import get_release
from orchestrator.usecases.unit_of_work import UnitOfWork
from orchestrator.usecases.users import get_user, require_role

NOT_YET_LIVE = (R.DRAFT, R.IN_REVIEW, R.REJECTED, R.APPROVED, R.SCHEDULED)


def schedule(uow: UnitOfWork, release_id: int, at: dt.datetime | None, actor: str) -> str:
    """Set (or move) the go-live time; None = as soon as every channel is staged."""
    s = uow.session
    release = get_release(s, release_id)
    user = get_user(s, actor)
    if actor != release.author:
        require_role(user, "approver", "author")
    if release.state not in NOT_YET_LIVE:
        raise Refused(f"release {release_id} is {release.state}: too late to schedule")
    if at is not None and at.tzinfo is None:
        raise InvalidInput([("at", "needs a time zone, e.g. 2026-11-29T09:00:00+08:00")])
    problems = go_live_problems(at, now=utcnow(), field="at",
                                horizon_days=uow.ctx.settings.go_live_horizon_days)
    if problems:
        raise InvalidInput(problems)
    before = {"state": release.state, "go_live_at": iso(release.go_live_at)}
    release.go_live_at = at
    if release.state == R.APPROVED and at is not None and at > utcnow():
        release.state = release_transition(release.state, R.SCHEDULED)
    elif release.state == R.SCHEDULED and (at is None or at <= utcnow()):
        release.state = release_transition(release.state, R.APPROVED)
    s.add(release)
    audit.record(s, actor=actor, action="release.scheduled", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"state": release.state, "go_live_at": iso(at)})
    uow.commit()
    if release.state == R.APPROVED:
        fanout.hold_or_fire(uow.ctx, release.id)
    return release.state


def hold(uow: UnitOfWork, release_id: int, actor: str) -> None:
    """Cancel a scheduled go-live: the release stays approved and staged, but waits."""
    s = uow.session
    release = get_release(s, release_id)
    require_role(get_user(s, actor), "approver", "author")
    if release.state != R.SCHEDULED:
        raise Refused(f"release {release_id} is {release.state}, not scheduled")
    before = {"go_live_at": iso(release.go_live_at)}
    release.go_live_at = None  # the scheduler fires only releases with a time that has come
    s.add(release)
    audit.record(s, actor=actor, action="release.held", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"go_live_at": None})
    uow.commit()


def force_go_live(uow: UnitOfWork, release_id: int, actor: str, reason: str) -> list[str]:
    """Go live without the channels that could not be staged; returns those left out."""
    s = uow.session
    require_role(get_user(s, actor), "approver")
    if not reason.strip():
        raise InvalidInput([("reason", "say why the release goes live without every channel")])
    release = steps.locked(s, Release, release_id)
    if release.state not in (R.APPROVED, R.SCHEDULED):
        raise Refused(f"release {release_id} is {release.state}, not waiting to go live")
    rows = s.exec(select(Delivery).where(Delivery.release_id == release.id,
                                         Delivery.revision == release.revision)).all()
    busy = [d.channel for d in rows if d.state == D.STAGING]
    if busy:
        raise Refused(f"{', '.join(busy)} is staging right now; try again in a moment")
    staged = [d for d in rows if d.state == D.STAGED]
    if not staged:
        raise Refused("no channel is staged: nothing could go live")
    if blocked := fanout.blocked_now(uow, release):  # forcing waives channels, never checks
        raise Refused(f"held by a pre-publish check: {blocked}")
    left_out = [d for d in rows if d.state in (D.PENDING, D.FAILED)]
    for delivery in left_out:
        steps.set_state(uow, delivery, D.CANCELLED, error=("left_out", reason))
    audit.record(s, actor=actor, action="release.forced_go_live", subject_type="release",
                 subject_id=release.id, release_id=release.id,
                 after={"left_out": [d.channel for d in left_out]}, detail={"reason": reason})
    fanout.go_live(uow, release, actor=actor)
    uow.commit()
    return [d.channel for d in left_out]
