"""Fan-out: approval creates deliveries; workers stage each, then fire all at one instant.

Every step is: claim in one transaction (compare-and-set, fence + 1), call the adapter
outside any transaction, record the outcome in one transaction that checks the fence.
A duplicate task finds nothing to claim and does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from channels.contract import ChannelAdapter, InvalidConfig, OutcomeUnknowable, Receipt
from orchestrator.domain.clock import utcnow
from orchestrator.domain.states import (
    TERMINAL_DELIVERY_STATES,
    release_transition,
)
from orchestrator.domain.states import (
    DeliveryState as D,
)
from orchestrator.domain.states import (
    ReleaseState as R,
)
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import alerts, audit, quota
from orchestrator.usecases import delivery_steps as steps
from orchestrator.usecases.channels import get_channel, posting_quota
from orchestrator.usecases.holds import channel_holds, speak_of_holds
from orchestrator.usecases.rendering import render_all
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
WORKER = steps.WORKER


# ------------------------------------------------------------------ approval


def create_deliveries(uow: UnitOfWork, release: Release) -> None:
    """One Delivery per target channel, in the approval's transaction; staging enqueued."""
    payloads, _ = render_all(uow.ctx.settings, uow.session, release)
    for name in release.channels:
        channel = get_channel(uow.session, name)
        delivery = Delivery(
            release_id=release.id, revision=release.revision, channel=name, kind=channel.kind,
            idempotency_key=f"tongfa-{release.id}-r{release.revision}-{name}",
            payload=payloads[name],
        )
        uow.session.add(delivery)
        uow.session.flush()
        audit.record(
            uow.session, actor=steps.WORKER, action="delivery.created", subject_type="delivery",
            subject_id=delivery.id, release_id=release.id, channel=name,
            after={"state": delivery.state},
        )
    uow.enqueue("stage_release", priority=release.priority, release_id=release.id)


# ------------------------------------------------------------------ staging


def stage_release(ctx: Context, release_id: int) -> None:
    """Stage every pending channel of a release at once; go live when all are staged."""
    with UnitOfWork(ctx) as uow:
        release = uow.session.get(Release, release_id)
        if release is None or release.state not in (R.APPROVED, R.SCHEDULED):
            return
        pending = [d.id for d in steps.current_deliveries(uow.session, release) if d.state == D.PENDING]
    _stage(ctx, pending)


def stage(ctx: Context, delivery_id: int) -> None:
    """Stage one channel (a retry, a re-send, a re-drive)."""
    _stage(ctx, [delivery_id])


def _stage(ctx: Context, delivery_ids: list[int]) -> None:
    claims, signed = [], {}  # release id -> do its stored payloads hash to the signed hash?
    with UnitOfWork(ctx) as uow:
        for delivery_id in delivery_ids:
            delivery = steps.claim(uow, delivery_id, (D.PENDING,), D.STAGING)
            if delivery is None:
                continue
            release = uow.session.get(Release, delivery.release_id)
            assert release is not None
            if release.id not in signed:  # once per release, not once per channel
                signed[release.id] = steps.signed_intact(uow, release)
            if steps.intact(uow, release, delivery, signed[release.id]):
                claims.append(steps.as_claim(uow, delivery))
            else:
                steps.refuse_tampered(uow, release, delivery)
        uow.commit()

    def run(claim: steps.Claim) -> dict[str, Any]:
        claim.adapter.validate(claim.payload)
        return claim.adapter.stage(claim.payload, claim.key)

    outcomes = _concurrently(claims, run)
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        for claim, out in zip(claims, outcomes, strict=True):
            delivery = steps.fenced(uow, claim.delivery_id, claim.fence)
            if delivery is None:
                continue
            steps.record_attempt(uow, delivery, "stage", out)
            if out.error is None:
                delivery.staged = out.value or {}
                steps.set_state(uow, delivery, D.STAGED)
            else:
                steps.retry_or_fail(uow, delivery, out.error, D.PENDING, "stage")
        uow.commit()
    for release_id in signed:
        if hold_or_fire(ctx, release_id, enqueue_fire=False):
            fire(ctx, release_id)  # this worker goes on to fire: no broker hop at go-live


def hold_or_fire(ctx: Context, release_id: int, enqueue_fire: bool = True) -> bool:
    """When every channel is staged, an approved release goes live; a failed stage holds it.

    A release in a go-live group goes live only with every other member of the group.
    True when it went live now (with enqueue_fire=False the caller fires it).
    """
    with UnitOfWork(ctx) as uow:
        release = steps.locked(uow.session, Release, release_id)
        if release.state == R.PUBLISHING:  # a re-sent channel joins a release already live
            for delivery in steps.current_deliveries(uow.session, release):
                if delivery.state == D.STAGED:
                    steps.send(uow, "publish", delivery)
            uow.commit()
            return False
        if release.state != R.APPROVED:
            return False
        members = cleared_to_go_live(uow, release, (R.APPROVED,))
        if members is None:
            return False
        for member in members:
            go_live(uow, member, actor=steps.WORKER, enqueue_fire=enqueue_fire and member is members[0])
        uow.commit()
        return True


def cleared_to_go_live(uow: UnitOfWork, release: Release, states: tuple[R, ...]) -> list[Release] | None:
    """The go-live gate, one for an immediate go-live and a scheduled one alike.

    Every channel staged, the pre-publish checks passed again on exactly what each channel
    will send (the word lists or the allowed domains may have changed since sign-off), and
    every member of its go-live group ready and clear. Returns the releases to go live
    together, or None with the reason noted on the release (it is held, not published).
    """
    holds = channel_holds(uow.session, release)
    if speak_of_holds(uow, release, holds):
        _note(uow, release, "held: " + "; ".join(h.why for h in holds))
        return None
    blocked = blocked_now(uow, release)
    if blocked:
        _note(uow, release, f"held by a pre-publish check: {blocked}")
        return None
    waiting = _waiting_for(release)
    if waiting:
        _note(uow, release, waiting)
        return None
    members = ready_members(uow.session, release, states)
    if members is None:
        if release.golive_group:
            _note(uow, release, _held_in_group(uow.session, release)
                  or f"waiting for the rest of group {release.golive_group}")
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


def blocked_now(uow: UnitOfWork, release: Release) -> str:
    """What stops this release going live now (pre-publish checks on the stored payloads)."""
    from orchestrator.domain.errors import Refused
    from orchestrator.usecases import content_checks

    payloads = {d.channel: d.payload for d in steps.current_deliveries(uow.session, release)}
    try:
        found = content_checks.findings(uow.ctx.settings, uow.session, release, payloads)
    except Refused as exc:  # the checks cannot run (a broken word list): hold, never skip them
        return str(exc)
    return "; ".join(f"{f.where}: {f.message}" for f in content_checks.blocking(found))


def _note(uow: UnitOfWork, release: Release, reason: str) -> None:
    if release.state_reason != reason:
        release.state_reason = reason
        uow.session.add(release)
        uow.commit()


def _waiting_for(release: Release) -> str:
    """Why a release may not go live on its own account now ('' when nothing stops it)."""
    if release.held:
        return "held: an approver signs a new go-live time to release it"
    if release.reschedule_by is not None:
        return "a go-live move waits for an approver's signature"
    if release.group_status == "pending":
        return f"waiting for the owner of group {release.golive_group} to consent"
    if release.group_status == "refused":
        return f"the owner of group {release.golive_group} refused it: edit the group"
    if release.group_status == "removed":
        return f"the owner of group {release.golive_group} removed it: edit the group"
    return ""


def ready_members(session: Session, release: Release, states: tuple[R, ...]) -> list[Release] | None:
    """The releases that go live together with this one, if every one is ready; else None.

    Only consented members count: a release that names a group without its owner's
    consent waits on its own and never holds the group back. The group goes live at the
    latest time signed for any of its members: none goes out before its own signed time.
    """
    if _waiting_for(release):
        return None
    members = [release]
    if release.golive_group:
        members = [steps.locked(session, Release, rid) for rid in session.exec(
            select(Release.id).where(Release.golive_group == release.golive_group,
                                     Release.group_status == "member",
                                     Release.state != R.WITHDRAWN).order_by(Release.id))]
    for member in members:
        deliveries = steps.current_deliveries(session, member)
        if member.state not in states or _waiting_for(member) or not deliveries or any(
                d.state != D.STAGED for d in deliveries):
            return None
        if member.go_live_at is not None and member.go_live_at > utcnow():
            return None  # signed for later: the whole group waits for it
    return members


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
        uow.session, actor=actor, action="release.go_live", subject_type="release",
        subject_id=release.id, release_id=release.id, before=before,
        after={"state": release.state},
    )
    if enqueue_fire:
        uow.enqueue("fire", priority=release.priority, release_id=release.id)


# ------------------------------------------------------------------ going live


def fire(ctx: Context, release_id: int) -> None:
    """Publish every staged channel of a release (and of its go-live group) at one instant."""
    with UnitOfWork(ctx) as uow:
        first = steps.locked(uow.session, Release, release_id)
        members = [first]
        if first.golive_group and first.group_status == "member":
            members = list(uow.session.exec(select(Release).where(
                Release.golive_group == first.golive_group,
                Release.group_status == "member").order_by(Release.id)))
        claims = []
        for release in members:
            if release.state != R.PUBLISHING:
                continue
            signed = steps.signed_intact(uow, release)
            for delivery in steps.current_deliveries(uow.session, release):
                if delivery.state != D.STAGED:
                    continue
                if not steps.intact(uow, release, delivery, signed):
                    steps.refuse_tampered(uow, release, delivery)
                    continue
                claimed = _claim_publish(uow, delivery)
                if claimed is not None:
                    claims.append(claimed)
        member_ids = [m.id for m in members]
        uow.commit()
    _publish_all(ctx, claims)
    for member_id in member_ids:
        finish(ctx, member_id)


def publish_one(ctx: Context, delivery_id: int) -> None:
    """A retry of one channel's publish call."""
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        if delivery is None:
            return
        release = uow.session.get(Release, delivery.release_id)
        if release is None or release.state != R.PUBLISHING:
            return
        if not steps.intact(uow, release, delivery, steps.signed_intact(uow, release)):
            steps.refuse_tampered(uow, release, delivery)
            uow.commit()
            finish(ctx, release.id)
            return
        claim = _claim_publish(uow, delivery)
        uow.commit()
    if claim is not None:
        _publish_all(ctx, [claim])
        finish(ctx, release.id)


def _claim_publish(uow: UnitOfWork, delivery: Delivery) -> steps.Claim | None:
    """steps.Claim for publishing, within the channel's posting quota shared by all workers."""
    channel = get_channel(uow.session, delivery.channel)
    try:
        limit = posting_quota(channel)
    except InvalidConfig as bad:  # a stored quota that does not parse: this channel fails
        if delivery.state == D.STAGED:
            steps.set_state(uow, delivery, D.FAILED,
                            error=(bad.code, f"{bad.kind}: {bad.message}"))
        return None
    wait = quota.take(uow.session, channel.name, limit)
    if wait > 0:  # over quota: the post waits for its window instead of being refused
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= utcnow():
            delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
            uow.session.add(delivery)
            steps.send(uow, "publish", delivery, countdown=wait)
        return None
    claim = steps.claim_for(uow, delivery.id, (D.STAGED,), D.PUBLISHING)
    if claim is None:
        quota.give_back(uow.session, channel.name)
    return claim


def _concurrently(claims: list[steps.Claim], call: Callable[[steps.Claim], Any]) -> list[steps.Outcome]:
    """Run one adapter call per channel in threads, all leaving at the same instant."""
    if not claims:
        return []
    start = threading.Barrier(len(claims))

    def one(claim: steps.Claim) -> steps.Outcome:
        start.wait()
        return steps.call_adapter(lambda: call(claim))

    with ThreadPoolExecutor(max_workers=len(claims)) as pool:
        return list(pool.map(one, claims))


def _publish_all(ctx: Context, claims: list[steps.Claim]) -> None:
    outcomes = _concurrently(claims, lambda c: c.adapter.publish(c.payload, c.staged, c.key))
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        for claim, out in zip(claims, outcomes, strict=True):
            _record_publish(uow, claim, out)
        uow.commit()


def _record_publish(uow: UnitOfWork, claim: steps.Claim, out: steps.Outcome) -> None:
    delivery = steps.fenced(uow, claim.delivery_id, claim.fence)
    if delivery is None:
        return
    steps.record_attempt(uow, delivery, "publish", out)
    err = out.error
    if err is None:
        _accept_receipt(uow, delivery, out.value, claim.adapter)
    elif err.kind == "outcome_unknown" or err.code == "internal":
        steps.set_state(uow, delivery, D.RECONCILING, error=(err.code, err.message))
        steps.send(uow, "reconcile", delivery, countdown=1.0)
    else:
        steps.retry_or_fail(uow, delivery, err, D.STAGED, "publish")


def _accept_receipt(uow: UnitOfWork, delivery: Delivery, receipt: Receipt,
                    adapter: ChannelAdapter) -> None:
    delivery.receipt = receipt.to_json()
    delivery.remote_id, delivery.url = receipt.remote_id, receipt.url
    if adapter.capabilities.async_publish and not receipt.details.get("confirmed"):
        delivery.published_at = receipt.published_at  # the instant the platform took it
        steps.set_state(uow, delivery, D.CONFIRMING)
        steps.send(uow, "confirm", delivery, countdown=0.5)
        return
    delivery.published_at = receipt.published_at
    steps.set_state(uow, delivery, D.PUBLISHED)


def platform_says_done(uow: UnitOfWork, channel: str, remote_id: str) -> bool:
    """The platform announced (e.g. WeChat's PUBLISHJOBFINISH) that a publish job ended:
    ask it now instead of at the next poll. False when no delivery waits on that job."""
    delivery = uow.session.exec(select(Delivery).where(
        Delivery.channel == channel, Delivery.remote_id == remote_id,
        Delivery.state == D.CONFIRMING)).first()
    if delivery is None:
        return False
    delivery.next_attempt_at = None
    uow.session.add(delivery)
    steps.send(uow, "confirm", delivery)
    uow.commit()
    return True


def reconcile(ctx: Context, delivery_id: int) -> None:
    """steps.Outcome unknown: ask the channel whether it went out before sending anything again."""
    _follow_up(ctx, delivery_id, D.RECONCILING, "lookup")


def confirm(ctx: Context, delivery_id: int) -> None:
    """Async channels: ask whether the platform has finished publishing."""
    _follow_up(ctx, delivery_id, D.CONFIRMING, "confirm")


def _follow_up(ctx: Context, delivery_id: int, state: D, phase: str) -> None:
    with UnitOfWork(ctx) as uow:
        delivery = steps.claim(uow, delivery_id, (state,), state)
        if delivery is None:
            return
        delivery.budget_from += 1  # a look sends nothing: it costs no attempt of the policy
        uow.session.add(delivery)
        claim = steps.as_claim(uow, delivery)
        uow.commit()
    if phase == "lookup":
        out = steps.call_adapter(
            lambda: claim.adapter.lookup(claim.payload, claim.key, staged=claim.staged))
    else:
        receipt = Receipt.from_json(claim.receipt or {})
        out = steps.call_adapter(lambda: claim.adapter.confirm(receipt))
    with UnitOfWork(ctx) as uow:
        delivery = steps.fenced(uow, delivery_id, claim.fence)
        if delivery is None:
            return
        steps.record_attempt(uow, delivery, phase, out)
        if out.error is not None:
            task = "reconcile" if phase == "lookup" else "confirm"
            delivery.lease_until = None
            if out.error.kind == "credentials_expired":  # wait for the admin, as publish does
                steps.flag_credentials(uow, get_channel(uow.session, delivery.channel))
                steps.send(uow, task, delivery)
            elif phase == "lookup" and isinstance(out.error, OutcomeUnknowable):
                # no later look can tell either, and nothing may be sent blindly
                delivery.last_error_code, delivery.last_error = out.error.code, out.error.message
                steps.ask_a_person(uow, delivery, "the channel can never tell whether it went "
                                   f"out ({out.error.message})",
                                   "平台无法查询是否已发出，发送方未留下结果")
            elif out.error.retryable or out.error.kind == "outcome_unknown":
                # until the channel answers nothing may be re-sent; past the policy's
                # max_age a person decides rather than a loop asking for ever
                policy = steps.policy_or_ask(uow, delivery)  # None: a person is asked
                if policy is not None and phase == "lookup" and steps.budget_age(delivery) >= policy.max_age_seconds:
                    delivery.last_error_code, delivery.last_error = out.error.code, out.error.message
                    steps.ask_a_person(uow, delivery, "the channel could not say whether it "
                                       f"went out within max_age ({policy.max_age_seconds:g} s)",
                                       f"平台在 {policy.max_age_seconds:g} 秒内始终无法答复是否已发出")
                elif policy is not None:
                    # looks cost no attempt, but each waits longer (up to the cap)
                    delay = policy.delay(delivery.attempts)
                    delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
                    steps.send(uow, task, delivery, delay)
            else:
                steps.set_state(uow, delivery, D.FAILED, error=(out.error.code, out.error.message))
        elif out.value is not None:
            delivery.receipt = out.value.to_json()
            delivery.remote_id, delivery.url = out.value.remote_id, out.value.url
            # an async platform went live at the accepted go-live call; confirming came later
            delivery.published_at = delivery.published_at or out.value.published_at
            steps.set_state(uow, delivery, D.PUBLISHED)
        elif phase == "lookup":  # it never went out: publish again within the policy
            steps.not_sent_yet(uow, delivery)
        else:  # still publishing on the platform's side
            delivery.lease_until = None
            delivery.next_attempt_at = utcnow() + timedelta(seconds=1)
            steps.send(uow, "confirm", delivery, countdown=1.0)
        uow.commit()
    finish(ctx, _release_of(ctx, delivery_id))


def _release_of(ctx: Context, delivery_id: int) -> int:
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery.release_id


def finish(ctx: Context, release_id: int) -> None:
    """When every channel is done, the release is published, partially published or failed."""
    with UnitOfWork(ctx) as uow:
        release = steps.locked(uow.session, Release, release_id)
        if release.state != R.PUBLISHING:
            return
        deliveries = [d for d in steps.current_deliveries(uow.session, release)
                      if d.state != D.CANCELLED or d.last_error_code == "left_out"]
        if not all(d.state in TERMINAL_DELIVERY_STATES for d in deliveries):
            return
        live = sorted(d.published_at for d in deliveries
                      if d.state == D.PUBLISHED and d.published_at is not None)
        target = (R.PUBLISHED if len(live) == len(deliveries)
                  else R.PARTIALLY_PUBLISHED if live else R.FAILED)
        release.state = release_transition(release.state, target)
        if live:
            release.first_live_at, release.last_live_at = live[0], live[-1]
            release.spread_ms = round((live[-1] - live[0]).total_seconds() * 1000, 3)
        uow.session.add(release)
        audit.record(
            uow.session, actor=steps.WORKER, action="release.finished", subject_type="release",
            subject_id=release.id, release_id=release.id, before={"state": R.PUBLISHING},
            after={"state": target, "spread_ms": release.spread_ms,
                   "published": len(live), "channels": len(deliveries)},
        )
        uow.commit()
