"""Going live: every staged channel of a release (and of its go-live group) at one instant.

Each channel's publish call runs in its own thread, all released together by a barrier;
the outcomes are recorded in one transaction. An outcome the channel could not tell goes
to reconciliation, an asynchronous platform's to confirmation (follow_up).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlmodel import select

from channels.contract import ChannelAdapter, InvalidConfig, Receipt
from channels.registry import UnknownKind
from orchestrator.domain.clock import utcnow
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import quota
from orchestrator.usecases.channels import get_channel, posting_quota
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.delivery.claims import KIND_NOT_LOADED, Claim, Outcome
from orchestrator.usecases.delivery.follow_up import finish
from orchestrator.usecases.delivery.signed import intact, refuse_tampered, signed_intact
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)


def fire(ctx: Context, release_id: int) -> None:
    """Publish every staged channel of a release (and of its go-live group) at one instant:
    at once from this process when one share holds them all, else split over the worker
    processes, which all send at the same instant shortly after (delivery.instant)."""
    from orchestrator.usecases.delivery import instant

    with UnitOfWork(ctx) as uow:
        first = claims.locked(uow.session, Release, release_id)
        members = [first]
        if first.golive_group and first.group_status == "member":
            members = list(uow.session.exec(select(Release).where(
                Release.golive_group == first.golive_group,
                Release.group_status == "member").order_by(Release.id)))
        live = [m for m in members if m.state == R.PUBLISHING]
        member_ids = [m.id for m in members]
        # one process left to the work that comes meanwhile (the next release's staging):
        # a share waiting for it would go out late, on its own
        shares = instant.plan(uow, live, spare=1)
        at = instant.gathered(ctx, len(shares))
        if shares:
            at = instant.arm(uow, shares, at)
        if len(shares) > 1:
            instant.send_shares(uow, first.priority, shares, at)
        uow.commit()
    settled = instant.go_out(ctx, shares[0], at) if len(shares) == 1 else []
    for member_id in member_ids:
        if member_id not in settled:
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
        if not intact(uow, release, delivery, signed_intact(uow, release)):
            refuse_tampered(uow, release, delivery)
            uow.commit()
            finish(ctx, release.id)
            return
        claim = _claim_publish(uow, delivery)
        uow.commit()
    if claim is not None:
        _publish_all(ctx, [claim])
        finish(ctx, release.id)


def _claim_publish(uow: UnitOfWork, delivery: Delivery) -> Claim | None:
    """A claim for publishing, within the channel's posting quota shared by all workers."""
    channel = get_channel(uow.session, delivery.channel)
    try:
        limit = posting_quota(channel, uow.ctx.adapters.kind(channel))
    except InvalidConfig as bad:  # a stored quota that does not parse: this channel fails
        if delivery.state == D.STAGED:
            claims.set_state(uow, delivery, D.FAILED,
                             error=(bad.code, f"{bad.kind}: {bad.message}"))
        return None
    except UnknownKind as missing:  # its plugin stopped loading: this channel fails alone
        if delivery.state == D.STAGED:
            claims.set_state(uow, delivery, D.FAILED, error=(KIND_NOT_LOADED, str(missing)))
        return None
    wait = quota.take(uow.session, channel.name, limit)
    if wait > 0:  # over quota: the post waits for its window instead of being refused
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= utcnow():
            delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
            uow.session.add(delivery)
            claims.send(uow, "publish", delivery, countdown=wait)
        return None
    claim = claims.claim_for(uow, delivery.id, (D.STAGED,), D.PUBLISHING)
    if claim is None:
        quota.give_back(uow.session, channel.name)
    return claim


def concurrently(taken: list[Claim], call: Callable[[Claim], Any]) -> list[Outcome]:
    """Run one adapter call per channel in threads, all leaving at the same instant, each
    with its connection already open (the warm adapter keeps it from stage to publish)."""
    if not taken:
        return []
    start = threading.Barrier(len(taken))

    def one(claim: Claim) -> Outcome:
        connect_ahead(claim)
        start.wait()
        return claims.call_adapter(lambda: call(claim))

    with ThreadPoolExecutor(max_workers=len(taken)) as pool:
        return list(pool.map(one, taken))


def connect_ahead(claim: Claim) -> None:
    """Best effort, before the barrier: a failure only means the call connects itself, and
    a thread that died here would leave the others waiting at the barrier."""
    try:
        claim.adapter.connect()
    except Exception as exc:  # its text may name what it connects with: only the type is logged
        log.warning("%s: could not connect ahead of the call (%s)", claim.channel,
                    type(exc).__name__)


def _publish_all(ctx: Context, taken: list[Claim]) -> None:
    outcomes = concurrently(taken, lambda c: c.adapter.publish(c.payload, c.staged, c.key))
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        for claim, out in zip(taken, outcomes, strict=True):
            _record_publish(uow, claim, out)
        uow.commit()


def _record_publish(uow: UnitOfWork, claim: Claim, out: Outcome) -> None:
    delivery = claims.fenced(uow, claim.delivery_id, claim.fence)
    if delivery is not None:
        record_publish(uow, delivery, claim, out)


def record_publish(uow: UnitOfWork, delivery: Delivery, claim: Claim, out: Outcome) -> None:
    """A publish call's outcome, on the delivery the caller holds at the claim's fence."""
    claims.record_attempt(uow, delivery, "publish", out)
    err = out.error
    if err is None:
        _accept_receipt(uow, delivery, out.value, claim.adapter)
    elif err.kind == "outcome_unknown" or err.code == "internal":
        claims.set_state(uow, delivery, D.RECONCILING, error=(err.code, err.message))
        claims.send(uow, "reconcile", delivery, countdown=1.0)
    else:
        claims.retry_or_fail(uow, delivery, err, D.STAGED, "publish")


def _accept_receipt(uow: UnitOfWork, delivery: Delivery, receipt: Receipt,
                    adapter: ChannelAdapter) -> None:
    delivery.receipt = receipt.to_json()
    delivery.remote_id, delivery.url = receipt.remote_id, receipt.url
    delivery.published_at = receipt.published_at  # the instant the platform took it
    if adapter.capabilities.async_publish and not receipt.details.get("confirmed"):
        claims.set_state(uow, delivery, D.CONFIRMING)
        claims.send(uow, "confirm", delivery, countdown=0.5)
        return
    claims.set_state(uow, delivery, D.PUBLISHED)
