"""The mechanics every delivery step uses: claims and fences, attempts, states, retries.

A claim is one compare-and-set (state, due, lease, channel not waiting) that adds one
to the fence; whoever records an outcome must still hold that fence. Every state
change goes through `set_state`, every adapter call through `call_adapter` and
`record_attempt`, so the audit trail sees each of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, select

from channels.contract import ChannelAdapter, ChannelError, InvalidConfig
from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import NotFound
from orchestrator.domain.redaction import redact_text
from orchestrator.domain.release import MAX_ID
from orchestrator.domain.retry import RetryPolicy
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import delivery_transition
from orchestrator.store.models import ChannelInstance, Delivery, DeliveryAttempt, Release
from orchestrator.usecases import audit
from orchestrator.usecases.channels import get_channel, retry_policy
from orchestrator.usecases.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
WORKER = "worker"  # the actor of automatic steps in the audit trail


def send(uow: UnitOfWork, task: str, delivery: Delivery, countdown: float = 0.0) -> None:
    """Enqueue a delivery's next step on its release's queue (urgent work never waits)."""
    release = uow.session.get(Release, delivery.release_id)
    priority = release.priority if release is not None else "normal"
    uow.enqueue(task, priority=priority, countdown=countdown, delivery_id=delivery.id)


# ------------------------------------------------------------------ claiming


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds (at `fence`), with the warm adapter of its channel."""

    delivery_id: int
    release_id: int
    fence: int
    channel: str
    payload: dict[str, Any]
    staged: dict[str, Any]
    receipt: dict[str, Any] | None
    key: str
    adapter: ChannelAdapter
    attempt: int


waiting_channels = select(ChannelInstance.name).where(
    or_(ChannelInstance.paused, ChannelInstance.credentials_rejected)
)


def claim(
    uow: UnitOfWork, delivery_id: int, from_states: tuple[D, ...], to: D
) -> Delivery | None:
    """Atomic compare-and-set; None when another worker has it or it is not due."""
    taken = claim_many(uow, [delivery_id], from_states, to)
    return taken[0] if taken else None


def claim_many(uow: UnitOfWork, delivery_ids: list[int], from_states: tuple[D, ...], to: D,
               due_by: datetime | None = None) -> list[Delivery]:
    """The compare-and-set of `claim` on many deliveries in one statement: those taken
    (in id order). `due_by`: taken ahead of an instant, due by then, the lease running
    from it."""
    if not delivery_ids:
        return []
    now = utcnow()
    due = max(now, due_by or now)
    taken = list(uow.session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            Delivery.state.in_(from_states),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= due),
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
            Delivery.channel.not_in(waiting_channels),  # paused, or credentials rejected
        )
        .values(
            state=to, fence=Delivery.fence + 1, attempts=Delivery.attempts + 1,
            lease_until=due + timedelta(seconds=uow.ctx.settings.lease_seconds),
            next_attempt_at=None, updated_at=now,
        )
        .returning(Delivery.id)
    ).scalars())
    if not taken:
        return []
    return list(uow.session.exec(select(Delivery).where(Delivery.id.in_(taken))
                                 .order_by(Delivery.id)
                                 .execution_options(populate_existing=True)))


KIND_NOT_LOADED = "kind_not_loaded"  # the channel's kind is not installed or failed to load


def claim_for(uow: UnitOfWork, delivery_id: int, from_states: tuple[D, ...], to: D) -> Claim | None:
    delivery = claim(uow, delivery_id, from_states, to)
    return None if delivery is None else as_claim(uow, delivery)


def as_claim(uow: UnitOfWork, delivery: Delivery) -> Claim:
    assert delivery.id is not None
    return Claim(
        delivery.id, delivery.release_id, delivery.fence, delivery.channel, delivery.payload,
        delivery.staged, delivery.receipt, delivery.idempotency_key, adapter(uow, delivery),
        delivery.attempts,
    )


def adapter(uow: UnitOfWork, delivery: Delivery) -> ChannelAdapter:
    """The warm adapter of the delivery's channel at its current configuration."""
    return uow.ctx.adapters.adapter(uow.ctx.settings, get_channel(uow.session, delivery.channel))


def locked(session: Session, model: type, row_id: int) -> Any:
    """The row, locked until commit (PostgreSQL; SQLite's write lock is already held), as
    it is now: a copy this session loaded before the lock is overwritten, never used."""
    row = session.exec(select(model).where(model.id == row_id).with_for_update()
                       .execution_options(populate_existing=True)).one_or_none() \
        if 1 <= row_id <= MAX_ID else None
    if row is None:  # an id from a request (force-go-live, withdraw) may name no row
        raise NotFound(f"no {model.__name__.lower()} with id {row_id}")
    return row


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


# each kind of call to a channel, as the audit trail names its attempts
ATTEMPTED = {"stage": Action.DELIVERY_ATTEMPT_STAGE, "publish": Action.DELIVERY_ATTEMPT_PUBLISH,
             "lookup": Action.DELIVERY_ATTEMPT_LOOKUP, "confirm": Action.DELIVERY_ATTEMPT_CONFIRM,
             "withdraw": Action.DELIVERY_ATTEMPT_WITHDRAW}


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
        uow.session, actor=WORKER, action=ATTEMPTED[phase], subject_type="delivery",
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
            uow.session, actor=WORKER, action=Action.DELIVERY_STATE, subject_type="delivery",
            subject_id=delivery.id, release_id=delivery.release_id, channel=delivery.channel,
            before={"state": before}, after={"state": target},
            detail={"error_code": delivery.last_error_code} if error else None,
        )


def fenced(uow: UnitOfWork, delivery_id: int, fence: int) -> Delivery | None:
    """The delivery if we still hold it; a stale worker's result is dropped."""
    delivery = locked(uow.session, Delivery, delivery_id)
    if delivery.fence != fence:
        log.warning("delivery %s: fence %s is stale (now %s)", delivery_id, fence, delivery.fence)
        return None
    return delivery


def fenced_many(uow: UnitOfWork, taken: list[Claim]) -> dict[int, Delivery]:
    """`fenced` for many claims, their rows locked in one statement (in id order, as every
    locker takes them): delivery id -> the delivery, for the claims still held."""
    rows = uow.session.exec(select(Delivery).where(
        Delivery.id.in_([c.delivery_id for c in taken])).order_by(Delivery.id)
        .with_for_update().execution_options(populate_existing=True)).all()
    fences = {c.delivery_id: c.fence for c in taken}
    held = {}
    for delivery in rows:
        assert delivery.id is not None
        if delivery.fence == fences[delivery.id]:
            held[delivery.id] = delivery
        else:
            log.warning("delivery %s: fence %s is stale (now %s)", delivery.id,
                        fences[delivery.id], delivery.fence)
    return held


def retry_or_fail(uow: UnitOfWork, delivery: Delivery, err: ChannelError,
                   back_to: D, task: str) -> None:
    channel = get_channel(uow.session, delivery.channel)
    if err.kind == "credentials_expired":  # wait for an admin; this costs no attempt
        flag_credentials(uow, channel)
        set_state(uow, delivery, back_to, error=(err.code, err.message))
        delivery.budget_from += 1
        send(uow, task, delivery)  # claimed only once credentials are fixed
        return
    try:
        policy = policy_of(channel)
    except InvalidConfig as bad:  # a stored policy that does not parse: this channel fails
        set_state(uow, delivery, D.FAILED, error=(bad.code, f"{bad.kind}: {bad.message}"))
        return
    tries = delivery.attempts - delivery.budget_from
    if err.retryable and policy.may_retry(tries, budget_age(delivery)):
        delay = policy.delay(tries, getattr(err, "retry_after", None))
        set_state(uow, delivery, back_to, error=(err.code, err.message))
        delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
        delivery.lease_until = None
        send(uow, task, delivery, countdown=delay)
        return
    set_state(uow, delivery, D.FAILED, error=(err.code, f"{err.kind}: {err.message}"))


def policy_of(channel: ChannelInstance) -> RetryPolicy:
    return retry_policy(channel)


def policy_or_ask(uow: UnitOfWork, delivery: Delivery) -> RetryPolicy | None:
    """The channel's retry policy for an outcome not yet known; None (a person is asked,
    as nothing may be sent blindly) when the stored policy does not parse."""
    try:
        return policy_of(get_channel(uow.session, delivery.channel))
    except InvalidConfig as bad:
        ask_a_person(uow, delivery, f"the channel's retry policy is invalid ({bad.message})",
                     f"渠道的重试策略无效（{bad.message}），无法按策略继续")
        return None


def budget_age(delivery: Delivery) -> float:
    """Seconds since the retry budget started: the delivery's creation or its last re-send."""
    return (utcnow() - (delivery.budget_since or delivery.created_at)).total_seconds()


def not_sent_yet(uow: UnitOfWork, delivery: Delivery) -> None:
    """Lookup is sure an unknown outcome did not go out: send again within the channel's
    retry policy (the unknown attempts count), else stop and ask a person."""
    policy = policy_or_ask(uow, delivery)
    if policy is None:
        return
    tries = delivery.attempts - delivery.budget_from
    if not policy.may_retry(tries, budget_age(delivery)):
        ask_a_person(uow, delivery, f"{tries} attempts within the retry policy "
                     f"(max_attempts {policy.max_attempts}) ended without a confirmed post, "
                     "and the channel says none went out",
                     f"已按重试策略尝试 {tries} 次，平台查询均显示未发出")
        return
    delay = policy.delay(tries)
    set_state(uow, delivery, D.STAGED)
    delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    send(uow, "publish", delivery, countdown=delay)


def ask_a_person(uow: UnitOfWork, delivery: Delivery, why: str, said: str) -> None:
    """needs_decision: nothing drives this delivery again until a channel admin re-sends it
    or marks it published (recovery.resend, recovery.mark_published). Alerts at once."""
    from orchestrator.usecases import alerts

    set_state(uow, delivery, D.NEEDS_DECISION,
              error=(delivery.last_error_code, f"needs a decision: {why}; last answer: "
                                               f"{delivery.last_error or 'none'}"))
    delivery.next_attempt_at = None
    release = uow.session.get(Release, delivery.release_id)
    assert release is not None
    alerts.raise_alert(
        uow, alerts.NEEDS_DECISION, release, channel=delivery.channel, delivery_id=delivery.id,
        message=f"稿件 {release.id}「{release.title}」在渠道 {delivery.channel} 的发布结果无法确认："
                f"{said}（最后答复 {delivery.last_error_code or '无'}）。请渠道管理员到平台查看后决定："
                "确未发出的，重新发送；已经发出的，填写链接标记为已发布。")


def flag_credentials(uow: UnitOfWork, channel: ChannelInstance) -> None:
    channel.credentials_rejected = True
    uow.session.add(channel)
    audit.record(
        uow.session, actor=WORKER, action=Action.CHANNEL_CREDENTIALS_REJECTED, subject_type="channel",
        subject_id=channel.name, channel=channel.name,
    )


def current_deliveries(session: Session, release: Release) -> list[Delivery]:
    return list(session.exec(
        select(Delivery).where(Delivery.release_id == release.id,
                               Delivery.revision == release.revision)
    ))
