"""When a release goes live: scheduling (embargo), holding, and the forced partial go-live."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.access import Op
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import InvalidInput, Refused
from orchestrator.domain.hashing import canonical_json
from orchestrator.domain.release import go_live_problems
from orchestrator.domain.review import check_not_contributor
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.store.models import Delivery, GoLiveGroup, Release, SignOff
from orchestrator.usecases import access, audit, releases, review
from orchestrator.usecases import holds as holds_module
from orchestrator.usecases.delivery import claims, gate
from orchestrator.usecases.delivery.signed import intact, signed_intact
from orchestrator.usecases.releases import get_release
from orchestrator.usecases.rendering import render_all
from orchestrator.usecases.unit_of_work import UnitOfWork


def schedule(uow: UnitOfWork, release_id: int, at: dt.datetime | None, actor: str) -> str:
    """Set the go-live time (None: as soon as every channel is staged).

    The time is part of what is signed: before submission it is simply set; in review
    it voids the signatures on the old time; after approval it becomes a request that
    an approver who wrote no part of the release signs (sign_reschedule), and until
    then nothing goes out, at the old time or the new one.
    """
    s = uow.session
    release = get_release(s, release_id)
    access.check(s, actor, Op.SCHEDULE, release)
    if at is not None and at.tzinfo is None:
        raise InvalidInput([("at", "needs a time zone, e.g. 2026-11-29T09:00:00+08:00")])
    problems = go_live_problems(at, now=utcnow(), field="at",
                                horizon_days=uow.ctx.settings.go_live_horizon_days)
    if problems:
        raise InvalidInput(problems)
    releases.contributed(release, actor)
    if release.state in (R.APPROVED, R.SCHEDULED):
        before = {"go_live_at": iso(release.go_live_at), "held": release.held}
        release.reschedule_by, release.reschedule_to = actor, at
        s.add(release)
        audit.record(s, actor=actor, action="release.reschedule_requested", subject_type="release",
                     subject_id=release.id, release_id=release.id, before=before,
                     after={"requested_go_live_at": iso(at)})
        uow.commit()
        return release.state
    before = {"state": release.state, "go_live_at": iso(release.go_live_at),
              "group_status": release.group_status}
    release.go_live_at = at
    voided = 0
    if release.state == R.IN_REVIEW:  # what reviewers sign now carries the new time
        release.content_hash = releases.validated_hash(uow, release)
        voided = releases.void_other_signoffs(s, release)
    releases.ask_group_consent_again(s, release)  # the owner consented to the old time
    s.add(release)
    audit.record(s, actor=actor, action="release.scheduled", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"state": release.state, "go_live_at": iso(at),
                        "content_hash": release.content_hash or None,
                        "group_status": release.group_status},
                 detail={"signoffs_voided": voided} if voided else None)
    uow.commit()
    return release.state


def sign_reschedule(uow: UnitOfWork, release_id: int, actor: str, approve: bool,
                    comment: str = "") -> str:
    """An approver signs (or refuses, with a reason) the go-live time asked for.

    Signing re-renders every channel for the new time, re-stages the channels whose
    document changed (the newsfeed's embargo), and binds the new hash.
    """
    s = uow.session
    get_release(s, release_id)  # NotFound, not a 500, for an id that does not exist
    release = claims.locked(s, Release, release_id)
    who = access.check(s, actor, Op.SIGN_RESCHEDULE, release)
    if release.reschedule_by is None:
        raise Refused(f"release {release_id} has no go-live move waiting for a signature")
    check_not_contributor(actor, review.excluded(release) | {release.reschedule_by})
    requested = {"requested_by": release.reschedule_by, "to": iso(release.reschedule_to)}
    if not approve:
        if not comment.strip():
            raise InvalidInput([("comment", "a refusal needs a reason")])
        release.reschedule_by = release.reschedule_to = None
        s.add(release)
        audit.record(s, actor=actor, action="release.reschedule_refused", subject_type="release",
                     subject_id=release.id, release_id=release.id, after=requested,
                     detail={"comment": comment})
        uow.commit()
        if release.state == R.APPROVED and not release.held:
            gate.hold_or_fire(uow.ctx, release.id)
        return release.state
    rows = claims.current_deliveries(s, release)
    if any(d.state == D.STAGING for d in rows):
        raise Refused("a channel is staging right now; try again in a moment")
    signed = signed_intact(uow, release)
    if not all(intact(uow, release, d, signed) for d in rows):
        raise Refused("the content changed since it was approved; edit and submit it again")
    before = {"state": release.state, "go_live_at": iso(release.go_live_at),
              "approved_hash": release.approved_hash, "held": release.held,
              "group_status": release.group_status}
    release.go_live_at = release.reschedule_to
    releases.ask_group_consent_again(s, release)  # the owner consented to the old time
    payloads, digest = render_all(uow.ctx.settings, s, release)
    restaged = []
    for delivery in rows:
        if canonical_json(payloads[delivery.channel]) != canonical_json(delivery.payload):
            delivery.payload = payloads[delivery.channel]
            if delivery.state == D.STAGED:  # staged for the old time: stage it again
                claims.set_state(uow, delivery, D.PENDING)
            s.add(delivery)
            restaged.append(delivery.channel)
    release.content_hash = release.approved_hash = digest
    release.reschedule_by = release.reschedule_to = None
    release.held = False
    later = release.go_live_at is not None and release.go_live_at > utcnow()
    target = R.SCHEDULED if later else R.APPROVED
    if release.state != target:
        release.state = release_transition(release.state, target)
    s.add(release)
    s.add(SignOff(release_id=release.id, revision=release.revision, step=0, role="approver",
                  signer=actor, decision="approve", comment=comment, content_hash=digest,
                  purpose="reschedule"))
    audit.record(s, actor=who.name, action="release.rescheduled", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"state": release.state, "go_live_at": iso(release.go_live_at),
                        "approved_hash": digest, "restaged": restaged,
                        "group_status": release.group_status},
                 detail={**requested, **({"comment": comment} if comment else {})})
    if restaged:
        uow.enqueue("stage_release", priority=release.priority, release_id=release.id)
    uow.commit()
    if release.state == R.APPROVED:
        gate.hold_or_fire(uow.ctx, release.id)
    return release.state


def hold(uow: UnitOfWork, release_id: int, actor: str) -> None:
    """Stop a go-live that waits: staged stays staged; a signed reschedule starts it again."""
    s = uow.session
    release = get_release(s, release_id)
    access.check(s, actor, Op.HOLD, release)
    before = {"held": release.held, "go_live_at": iso(release.go_live_at)}
    release.held = True
    s.add(release)
    audit.record(s, actor=actor, action="release.held", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"held": True})
    uow.commit()


def group_joiners(session: Session, actor: str) -> list[dict[str, Any]]:
    """Other authors' releases in, or asking to join, the go-live groups `actor` owns:
    what they consent to, and whom they may still remove (not yet live)."""
    who = access.principal(session, actor)
    owned = select(GoLiveGroup.name).where(GoLiveGroup.owner == who.name)
    rows = session.exec(select(Release).where(Release.golive_group.in_(owned),
                                              Release.group_status.in_(("pending", "member")),
                                              Release.author != who.name)
                        .order_by(Release.id)).all()
    return [releases.as_dict(session, r, who) for r in rows
            if access.allows(session, who, Op.CONSENT, r)]


def consent_to_group(uow: UnitOfWork, release_id: int, actor: str, accept: bool,
                     comment: str = "") -> str:
    """The group's owner lets a release join its go-live group, or refuses it (with a reason).

    Until then the joiner waits on its own and never holds the group back.
    """
    s = uow.session
    release = get_release(s, release_id)
    access.check(s, actor, Op.HEADER, release)  # NotFound first for what one cannot see
    if release.group_status != "pending":
        raise Refused(f"release {release_id} is not waiting to join a group")
    access.check(s, actor, Op.CONSENT, release)
    if not accept and not comment.strip():
        raise InvalidInput([("comment", "a refusal needs a reason")])
    release.group_status = "member" if accept else "refused"
    s.add(release)
    audit.record(s, actor=actor, action="release.group_consented" if accept
                 else "release.group_refused", subject_type="release", subject_id=release.id,
                 release_id=release.id, before={"group_status": "pending"},
                 after={"group": release.golive_group, "group_status": release.group_status},
                 detail={"comment": comment} if comment else None)
    uow.commit()
    if accept and release.state == R.APPROVED:
        gate.hold_or_fire(uow.ctx, release.id)
    return release.group_status


def remove_from_group(uow: UnitOfWork, release_id: int, actor: str, comment: str) -> str:
    """The group's owner takes back a consent (with a reason) before the joiner goes live.

    The removed release waits on its own until its author names another group (or none);
    the rest of the group no longer waits for it.
    """
    s = uow.session
    get_release(s, release_id)  # NotFound, not a 500, for an id that does not exist
    release = claims.locked(s, Release, release_id)  # not while the group goes live
    access.check(s, actor, Op.HEADER, release)  # NotFound first for what one cannot see
    access.check(s, actor, Op.CONSENT, release)
    if release.group_status != "member" or release.author == actor:
        raise Refused(f"release {release_id} is not another author's member of your group")
    if not comment.strip():
        raise InvalidInput([("comment", "removing a release from the group needs a reason")])
    release.group_status = "removed"
    s.add(release)
    audit.record(s, actor=actor, action="release.group_removed", subject_type="release",
                 subject_id=release.id, release_id=release.id, before={"group_status": "member"},
                 after={"group": release.golive_group, "group_status": release.group_status},
                 detail={"comment": comment})
    waiting = s.exec(select(Release.id).where(Release.golive_group == release.golive_group,
                                              Release.group_status == "member",
                                              Release.state == R.APPROVED)
                     .order_by(Release.id).limit(1)).first()
    uow.commit()
    if waiting is not None:  # the rest of the group may have waited only for it
        gate.hold_or_fire(uow.ctx, waiting)
    if release.state == R.APPROVED:  # notes why it now waits on its own
        gate.hold_or_fire(uow.ctx, release.id)
    return release.group_status


def force_go_live(uow: UnitOfWork, release_id: int, actor: str, reason: str) -> list[str]:
    """Go live without the channels that hold it (could not be staged, failing to stage,
    paused, credentials rejected): a partial go-live, audited with the reason; returns
    the channels left out (their deliveries are cancelled)."""
    s = uow.session
    get_release(s, release_id)  # NotFound, not a 500, for an id that does not exist
    release = claims.locked(s, Release, release_id)
    access.check(s, actor, Op.FORCE, release)  # who first: a state is news only to readers
    if not reason.strip():
        raise InvalidInput([("reason", "say why the release goes live without every channel")])
    if release.held or release.reschedule_by is not None:
        raise Refused("its go-live is held or being moved: an approver signs the time first")
    signed_at = gate.signed_go_live_at(s, release)  # never ahead of its go-live group
    if signed_at is not None and signed_at > utcnow():
        whose = (f"its go-live group {release.golive_group} is" if signed_at != release.go_live_at
                 else "it is")
        raise Refused(f"{whose} signed to go live at {iso(signed_at)}, not before")
    rows = s.exec(select(Delivery).where(Delivery.release_id == release.id,
                                         Delivery.revision == release.revision)).all()
    busy = [d.channel for d in rows if d.state == D.STAGING]
    if busy:
        raise Refused(f"{', '.join(busy)} is staging right now; try again in a moment")
    holds = {h.channel: h for h in holds_module.channel_holds(s, release)}
    # left out: what is not staged, and what is staged on a channel that holds it (paused,
    # credentials rejected); it would otherwise go out later, on its own, unannounced
    left_out = [d for d in rows if d.state in (D.PENDING, D.FAILED)
                or (d.state == D.STAGED and d.channel in holds)]
    if not [d for d in rows if d.state == D.STAGED and d not in left_out]:
        raise Refused("no channel is staged: nothing could go live")
    if blocked := gate.blocked_now(uow, release):  # forcing waives channels, never checks
        raise Refused(f"held by a pre-publish check: {blocked}")
    for delivery in left_out:
        claims.set_state(uow, delivery, D.CANCELLED, error=("left_out", reason))
    audit.record(s, actor=actor, action="release.forced_go_live", subject_type="release",
                 subject_id=release.id, release_id=release.id,
                 after={"left_out": [d.channel for d in left_out]},
                 detail={"reason": reason, "held_by": {c: h.why for c, h in holds.items()}})
    gate.go_live(uow, release, actor=actor)
    uow.commit()
    return [d.channel for d in left_out]
