"""Fan-out: approval creates deliveries; workers stage each, then fire all at one instant.

Every step is: claim in one transaction (compare-and-set, fence + 1), call the adapter
outside any transaction, record the outcome in one transaction that checks the fence.
A duplicate task finds nothing to claim and does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, select

from channels.contract import ChannelAdapter, ChannelError, Receipt
from orchestrator.domain.clock import utcnow
from orchestrator.domain.hashing import canonical_json, content_hash
from orchestrator.domain.ratelimit import RateLimit
from orchestrator.domain.redaction import redact_text
from orchestrator.domain.retry import RetryPolicy
from orchestrator.domain.states import (
    TERMINAL_DELIVERY_STATES,
    delivery_transition,
    release_transition,
)
from orchestrator.domain.states import (
    DeliveryState as D,
)
from orchestrator.domain.states import (
    ReleaseState as R,
)
from orchestrator.store.models import ChannelInstance, Delivery, DeliveryAttempt, Release
from orchestrator.usecases import audit, quota
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.rendering import hashed_fields, release_view, render_all
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
WORKER = "worker"  # the actor of automatic steps in the audit trail


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
            uow.session, actor=WORKER, action="delivery.created", subject_type="delivery",
            subject_id=delivery.id, release_id=release.id, channel=name,
            after={"state": delivery.state},
        )
    uow.enqueue("stage_release", priority=release.priority, release_id=release.id)


def send(uow: UnitOfWork, task: str, delivery: Delivery, countdown: float = 0.0) -> None:
    """Enqueue a delivery's next step on its release's queue (urgent work never waits)."""
    release = uow.session.get(Release, delivery.release_id)
    priority = release.priority if release is not None else "normal"
    uow.enqueue(task, priority=priority, countdown=countdown, delivery_id=delivery.id)


# ------------------------------------------------------------------ claiming


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    fence: int
    channel: str
    payload: dict[str, Any]
    staged: dict[str, Any]
    receipt: dict[str, Any] | None
    key: str
    adapter: ChannelAdapter
    attempt: int


_waiting_channels = select(ChannelInstance.name).where(
    or_(ChannelInstance.paused, ChannelInstance.credentials_rejected)
)


def _claim(
    uow: UnitOfWork, delivery_id: int, from_states: tuple[D, ...], to: D
) -> Delivery | None:
    """Atomic compare-and-set; None when another worker has it or it is not due."""
    now = utcnow()
    result = uow.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.state.in_(from_states),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
            Delivery.channel.not_in(_waiting_channels),  # paused, or credentials rejected
        )
        .values(
            state=to, fence=Delivery.fence + 1, attempts=Delivery.attempts + 1,
            lease_until=now + timedelta(seconds=uow.ctx.settings.lease_seconds),
            next_attempt_at=None, updated_at=now,
        )
    )
    if result.rowcount != 1:
        return None
    delivery = uow.session.get(Delivery, delivery_id, populate_existing=True)
    assert delivery is not None
    return delivery


def _claim_for(uow: UnitOfWork, delivery_id: int, from_states: tuple[D, ...], to: D) -> Claim | None:
    delivery = _claim(uow, delivery_id, from_states, to)
    return None if delivery is None else _as_claim(uow, delivery)


def _as_claim(uow: UnitOfWork, delivery: Delivery) -> Claim:
    channel = get_channel(uow.session, delivery.channel)
    return Claim(
        delivery.id, delivery.fence, delivery.channel, delivery.payload, delivery.staged,
        delivery.receipt, delivery.idempotency_key, adapter_for(uow.ctx.settings, channel),
        delivery.attempts,
    )


def locked(session: Session, model: type, row_id: int) -> Any:
    """The row, locked until commit (PostgreSQL; SQLite's write lock is already held)."""
    return session.exec(select(model).where(model.id == row_id).with_for_update()).one()


def _signed(uow: UnitOfWork, release: Release) -> bool:
    """The stored payloads and release fields still hash to what the sign-offs bound."""
    stored = {d.channel: d.payload for d in current_deliveries(uow.session, release)}
    return content_hash(hashed_fields(release), stored) == release.approved_hash


def _intact(uow: UnitOfWork, release: Release, delivery: Delivery, signed: bool) -> bool:
    """Never send anything but what was signed off.

    The payload must be the signed one, and rendering it again today (templates, channel
    config) must give the same bytes: a template altered on disk is caught here too.
    """
    if not signed:
        return False
    adapter = adapter_for(uow.ctx.settings, get_channel(uow.session, delivery.channel))
    fresh = adapter.render(release_view(uow.ctx.settings, release, delivery.channel))
    return canonical_json(fresh) == canonical_json(delivery.payload)


def _refuse_tampered(uow: UnitOfWork, release: Release, delivery: Delivery) -> None:
    set_state(uow, delivery, D.FAILED, error=("content_hash_mismatch",
               "content differs from what was signed off; nothing was sent"))
    audit.record(
        uow.session, actor=WORKER, action="delivery.refused", subject_type="delivery",
        subject_id=delivery.id, release_id=release.id, channel=delivery.channel,
        detail={"reason": "content_hash_mismatch", "approved_hash": release.approved_hash},
    )


# ------------------------------------------------------------------ recording


@dataclass
class Outcome:
    started: Any
    ended: Any
    duration_ms: float
    value: Any = None
    error: ChannelError | None = None


def call_adapter(fn: Callable[[], Any]) -> Outcome:
    started, t0 = utcnow(), time.perf_counter()
    try:
        value, error = fn(), None
    except ChannelError as exc:
        value, error = None, exc
    except Exception as exc:  # a bug or an unexpected library error: unknown, never silent
        log.exception("adapter raised a non-channel error")
        value, error = None, ChannelError(f"{type(exc).__name__}: {exc}", code="internal")
    return Outcome(started, utcnow(), (time.perf_counter() - t0) * 1000, value, error)


def record_attempt(uow: UnitOfWork, delivery: Delivery, phase: str, out: Outcome) -> None:
    err = out.error
    uow.session.add(DeliveryAttempt(
        delivery_id=delivery.id, number=delivery.attempts, phase=phase,
        started_at=out.started, ended_at=out.ended, duration_ms=round(out.duration_ms, 3),
        outcome="ok" if err is None else err.kind,
        error_code=None if err is None else err.code,
        message=None if err is None else redact_text(err.message)[:1000],
    ))
    audit.record(
        uow.session, actor=WORKER, action=f"delivery.attempt.{phase}", subject_type="delivery",
        subject_id=delivery.id, release_id=delivery.release_id, channel=delivery.channel,
        after={"number": delivery.attempts, "outcome": "ok" if err is None else err.kind,
               "error_code": None if err is None else err.code,
               "duration_ms": round(out.duration_ms, 1)},
    )


def set_state(uow: UnitOfWork, delivery: Delivery, target: D,
               error: tuple[str | None, str] | None = None) -> None:
    before = delivery.state
    delivery.state = delivery_transition(delivery.state, target)
    delivery.updated_at = utcnow()
    if target not in (D.STAGING, D.PUBLISHING):  # the claim ends with the call
        delivery.lease_until = None
    if error is not None:
        delivery.last_error_code, delivery.last_error = error[0], redact_text(error[1])[:1000]
    uow.session.add(delivery)
    if before != target:
        audit.record(
            uow.session, actor=WORKER, action="delivery.state", subject_type="delivery",
            subject_id=delivery.id, release_id=delivery.release_id, channel=delivery.channel,
            before={"state": before}, after={"state": target},
            detail={"error_code": delivery.last_error_code} if error else None,
        )


def _fenced(uow: UnitOfWork, delivery_id: int, fence: int) -> Delivery | None:
    """The delivery if we still hold it; a stale worker's result is dropped."""
    delivery = locked(uow.session, Delivery, delivery_id)
    if delivery.fence != fence:
        log.warning("delivery %s: fence %s is stale (now %s)", delivery_id, fence, delivery.fence)
        return None
    return delivery


def _retry_or_fail(uow: UnitOfWork, delivery: Delivery, err: ChannelError,
                   back_to: D, task: str) -> None:
    channel = get_channel(uow.session, delivery.channel)
    if err.kind == "credentials_expired":  # wait for an admin; this costs no attempt
        _flag_credentials(uow, channel)
        set_state(uow, delivery, back_to, error=(err.code, err.message))
        delivery.budget_from += 1
        send(uow, task, delivery)  # claimed only once credentials are fixed
        return
    policy = RetryPolicy.from_config(channel.config.get("retry"))
    age = (utcnow() - delivery.created_at).total_seconds()
    tries = delivery.attempts - delivery.budget_from
    if err.retryable and policy.may_retry(tries, age):
        delay = policy.delay(tries, getattr(err, "retry_after", None))
        set_state(uow, delivery, back_to, error=(err.code, err.message))
        delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
        delivery.lease_until = None
        send(uow, task, delivery, countdown=delay)
        return
    set_state(uow, delivery, D.FAILED, error=(err.code, f"{err.kind}: {err.message}"))


def _flag_credentials(uow: UnitOfWork, channel: ChannelInstance) -> None:
    channel.credentials_rejected = True
    uow.session.add(channel)
    audit.record(
        uow.session, actor=WORKER, action="channel.credentials_rejected", subject_type="channel",
        subject_id=channel.name, channel=channel.name,
    )


# ------------------------------------------------------------------ staging


def stage_release(ctx: Context, release_id: int) -> None:
    """Stage every pending channel of a release at once; go live when all are staged."""
    with UnitOfWork(ctx) as uow:
        release = uow.session.get(Release, release_id)
        if release is None or release.state not in (R.APPROVED, R.SCHEDULED):
            return
        pending = [d.id for d in current_deliveries(uow.session, release) if d.state == D.PENDING]
    _stage(ctx, pending)


def stage(ctx: Context, delivery_id: int) -> None:
    """Stage one channel (a retry, a re-send, a re-drive)."""
    _stage(ctx, [delivery_id])


def _stage(ctx: Context, delivery_ids: list[int]) -> None:
    claims, release_ids = [], set()
    with UnitOfWork(ctx) as uow:
        for delivery_id in delivery_ids:
            delivery = _claim(uow, delivery_id, (D.PENDING,), D.STAGING)
            if delivery is None:
                continue
            release = uow.session.get(Release, delivery.release_id)
            assert release is not None
            release_ids.add(release.id)
            if _intact(uow, release, delivery, _signed(uow, release)):
                claims.append(_as_claim(uow, delivery))
            else:
                _refuse_tampered(uow, release, delivery)
        uow.commit()

    def run(claim: Claim) -> dict[str, Any]:
        claim.adapter.validate(claim.payload)
        return claim.adapter.stage(claim.payload, claim.key)

    outcomes = _concurrently(claims, run)
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        for claim, out in zip(claims, outcomes, strict=True):
            delivery = _fenced(uow, claim.delivery_id, claim.fence)
            if delivery is None:
                continue
            record_attempt(uow, delivery, "stage", out)
            if out.error is None:
                delivery.staged = out.value or {}
                set_state(uow, delivery, D.STAGED)
            else:
                _retry_or_fail(uow, delivery, out.error, D.PENDING, "stage")
        uow.commit()
    for release_id in release_ids:
        if hold_or_fire(ctx, release_id, enqueue_fire=False):
            fire(ctx, release_id)  # this worker goes on to fire: no broker hop at go-live


def current_deliveries(session: Session, release: Release) -> list[Delivery]:
    return list(session.exec(
        select(Delivery).where(Delivery.release_id == release.id,
                               Delivery.revision == release.revision)
    ))


def hold_or_fire(ctx: Context, release_id: int, enqueue_fire: bool = True) -> bool:
    """When every channel is staged, an approved release goes live; a failed stage holds it.

    A release in a go-live group goes live only with every other member of the group.
    True when it went live now (with enqueue_fire=False the caller fires it).
    """
    with UnitOfWork(ctx) as uow:
        release = locked(uow.session, Release, release_id)
        if release.state == R.PUBLISHING:  # a re-sent channel joins a release already live
            for delivery in current_deliveries(uow.session, release):
                if delivery.state == D.STAGED:
                    send(uow, "publish", delivery)
            uow.commit()
            return False
        if release.state != R.APPROVED:
            return False
        failed = [d.channel for d in current_deliveries(uow.session, release)
                  if d.state == D.FAILED]
        if failed:
            _note(uow, release, f"held: {', '.join(failed)} could not be staged")
            return False
        members = ready_members(uow.session, release, (R.APPROVED,))
        if members is None:
            if release.golive_group:
                _note(uow, release, f"waiting for the rest of group {release.golive_group}")
            return False
        for member in members:
            go_live(uow, member, actor=WORKER, enqueue_fire=enqueue_fire and member is members[0])
        uow.commit()
        return True


def _note(uow: UnitOfWork, release: Release, reason: str) -> None:
    if release.state_reason != reason:
        release.state_reason = reason
        uow.session.add(release)
        uow.commit()


def ready_members(session: Session, release: Release, states: tuple[R, ...]) -> list[Release] | None:
    """The releases that go live together with this one, if every one is ready; else None."""
    members = [release]
    if release.golive_group:
        members = [locked(session, Release, rid) for rid in session.exec(
            select(Release.id).where(Release.golive_group == release.golive_group,
                                     Release.state != R.WITHDRAWN).order_by(Release.id))]
    for member in members:
        deliveries = current_deliveries(session, member)
        if member.state not in states or not deliveries or any(
                d.state != D.STAGED for d in deliveries):
            return None
    return members


def go_live(uow: UnitOfWork, release: Release, actor: str, enqueue_fire: bool = True) -> None:
    before = {"state": release.state}
    release.state = release_transition(release.state, R.PUBLISHING)
    release.state_reason = ""
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
        first = locked(uow.session, Release, release_id)
        members = [first]
        if first.golive_group:
            members = list(uow.session.exec(select(Release).where(
                Release.golive_group == first.golive_group).order_by(Release.id)))
        claims = []
        for release in members:
            if release.state != R.PUBLISHING:
                continue
            signed = _signed(uow, release)
            for delivery in current_deliveries(uow.session, release):
                if delivery.state != D.STAGED:
                    continue
                if not _intact(uow, release, delivery, signed):
                    _refuse_tampered(uow, release, delivery)
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
        if not _intact(uow, release, delivery, _signed(uow, release)):
            _refuse_tampered(uow, release, delivery)
            uow.commit()
            finish(ctx, release.id)
            return
        claim = _claim_publish(uow, delivery)
        uow.commit()
    if claim is not None:
        _publish_all(ctx, [claim])
        finish(ctx, release.id)


def _claim_publish(uow: UnitOfWork, delivery: Delivery) -> Claim | None:
    """Claim for publishing, within the channel's posting quota shared by all workers."""
    channel = get_channel(uow.session, delivery.channel)
    wait = quota.take(uow.session, channel.name, RateLimit.from_config(channel.config.get("rate")))
    if wait > 0:  # over quota: the post waits for its window instead of being refused
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= utcnow():
            delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
            uow.session.add(delivery)
            send(uow, "publish", delivery, countdown=wait)
        return None
    claim = _claim_for(uow, delivery.id, (D.STAGED,), D.PUBLISHING)
    if claim is None:
        quota.give_back(uow.session, channel.name)
    return claim


def _concurrently(claims: list[Claim], call: Callable[[Claim], Any]) -> list[Outcome]:
    """Run one adapter call per channel in threads, all leaving at the same instant."""
    if not claims:
        return []
    start = threading.Barrier(len(claims))

    def one(claim: Claim) -> Outcome:
        start.wait()
        return call_adapter(lambda: call(claim))

    with ThreadPoolExecutor(max_workers=len(claims)) as pool:
        return list(pool.map(one, claims))


def _publish_all(ctx: Context, claims: list[Claim]) -> None:
    outcomes = _concurrently(claims, lambda c: c.adapter.publish(c.payload, c.staged, c.key))
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        for claim, out in zip(claims, outcomes, strict=True):
            _record_publish(uow, claim, out)
        uow.commit()


def _record_publish(uow: UnitOfWork, claim: Claim, out: Outcome) -> None:
    delivery = _fenced(uow, claim.delivery_id, claim.fence)
    if delivery is None:
        return
    record_attempt(uow, delivery, "publish", out)
    err = out.error
    if err is None:
        _accept_receipt(uow, delivery, out.value, claim.adapter)
    elif err.kind == "outcome_unknown" or err.code == "internal":
        set_state(uow, delivery, D.RECONCILING, error=(err.code, err.message))
        send(uow, "reconcile", delivery, countdown=1.0)
    else:
        _retry_or_fail(uow, delivery, err, D.STAGED, "publish")


def _accept_receipt(uow: UnitOfWork, delivery: Delivery, receipt: Receipt,
                    adapter: ChannelAdapter) -> None:
    delivery.receipt = receipt.to_json()
    delivery.remote_id, delivery.url = receipt.remote_id, receipt.url
    if adapter.capabilities.async_publish and not receipt.details.get("confirmed"):
        delivery.published_at = receipt.published_at  # the instant the platform took it
        set_state(uow, delivery, D.CONFIRMING)
        send(uow, "confirm", delivery, countdown=0.5)
        return
    delivery.published_at = receipt.published_at
    set_state(uow, delivery, D.PUBLISHED)


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
    send(uow, "confirm", delivery)
    uow.commit()
    return True


def reconcile(ctx: Context, delivery_id: int) -> None:
    """Outcome unknown: ask the channel whether it went out before sending anything again."""
    _follow_up(ctx, delivery_id, D.RECONCILING, "lookup")


def confirm(ctx: Context, delivery_id: int) -> None:
    """Async channels: ask whether the platform has finished publishing."""
    _follow_up(ctx, delivery_id, D.CONFIRMING, "confirm")


def _follow_up(ctx: Context, delivery_id: int, state: D, phase: str) -> None:
    with UnitOfWork(ctx) as uow:
        claim = _claim_for(uow, delivery_id, (state,), state)
        uow.commit()
    if claim is None:
        return
    if phase == "lookup":
        out = call_adapter(lambda: claim.adapter.lookup(claim.payload, claim.key))
    else:
        receipt = Receipt.from_json(claim.receipt or {})
        out = call_adapter(lambda: claim.adapter.confirm(receipt))
    with UnitOfWork(ctx) as uow:
        delivery = _fenced(uow, delivery_id, claim.fence)
        if delivery is None:
            return
        record_attempt(uow, delivery, phase, out)
        if out.error is not None:
            task = "reconcile" if phase == "lookup" else "confirm"
            delivery.lease_until = None
            if out.error.kind == "credentials_expired":  # wait for the admin, as publish does
                _flag_credentials(uow, get_channel(uow.session, delivery.channel))
                send(uow, task, delivery)
            elif out.error.retryable or out.error.kind == "outcome_unknown":
                # never give up asking: until the channel answers, nothing may be re-sent
                channel = get_channel(uow.session, delivery.channel)
                policy = RetryPolicy.from_config(channel.config.get("retry"))
                delay = policy.delay(delivery.attempts - delivery.budget_from)
                delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
                send(uow, task, delivery, delay)
            else:
                set_state(uow, delivery, D.FAILED, error=(out.error.code, out.error.message))
        elif out.value is not None:
            delivery.receipt = out.value.to_json()
            delivery.remote_id, delivery.url = out.value.remote_id, out.value.url
            # an async platform went live at the accepted go-live call; confirming came later
            delivery.published_at = delivery.published_at or out.value.published_at
            set_state(uow, delivery, D.PUBLISHED)
        elif phase == "lookup":  # it never went out: publish again, from staged
            set_state(uow, delivery, D.STAGED)
            send(uow, "publish", delivery)
        else:  # still publishing on the platform's side
            delivery.lease_until = None
            delivery.next_attempt_at = utcnow() + timedelta(seconds=1)
            send(uow, "confirm", delivery, countdown=1.0)
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
        release = locked(uow.session, Release, release_id)
        if release.state != R.PUBLISHING:
            return
        deliveries = [d for d in current_deliveries(uow.session, release)
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
            uow.session, actor=WORKER, action="release.finished", subject_type="release",
            subject_id=release.id, release_id=release.id, before={"state": R.PUBLISHING},
            after={"state": target, "spread_ms": release.spread_ms,
                   "published": len(live), "channels": len(deliveries)},
        )
        uow.commit()
