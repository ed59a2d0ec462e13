"""Approval creates one delivery per channel; a worker stages them all, then goes live.

Staging does everything that can be done before the go-live instant (validate, upload,
draft), so going live is one call per channel.
"""

from __future__ import annotations

from typing import Any

from channels.registry import UnknownKind
from orchestrator.domain.audit_actions import Action
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import audit
from orchestrator.usecases.channels import get_channel
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.delivery.claims import KIND_NOT_LOADED, Claim
from orchestrator.usecases.delivery.firing import concurrently, fire
from orchestrator.usecases.delivery.gate import hold_or_fire
from orchestrator.usecases.delivery.signed import intact, refuse_tampered, signed_intact
from orchestrator.usecases.rendering import render_all
from orchestrator.usecases.unit_of_work import Context, UnitOfWork


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
            uow.session, actor=claims.WORKER, action=Action.DELIVERY_CREATED, subject_type="delivery",
            subject_id=delivery.id, release_id=release.id, channel=name,
            after={"state": delivery.state},
        )
    uow.enqueue("stage_release", priority=release.priority, release_id=release.id)


def stage_release(ctx: Context, release_id: int) -> None:
    """Stage every pending channel of a release at once; go live when all are staged."""
    with UnitOfWork(ctx) as uow:
        release = uow.session.get(Release, release_id)
        if release is None or release.state not in (R.APPROVED, R.SCHEDULED):
            return
        pending = [d.id for d in claims.current_deliveries(uow.session, release)
                   if d.state == D.PENDING]
    _stage(ctx, pending)


def stage(ctx: Context, delivery_id: int) -> None:
    """Stage one channel (a retry, a re-send, a re-drive)."""
    _stage(ctx, [delivery_id])


def _stage(ctx: Context, delivery_ids: list[int]) -> None:
    taken, signed = [], {}  # release id -> do its stored payloads hash to the signed hash?
    with UnitOfWork(ctx) as uow:  # every channel claimed in one statement
        for delivery in claims.claim_many(uow, delivery_ids, (D.PENDING,), D.STAGING):
            release = uow.session.get(Release, delivery.release_id)
            assert release is not None
            if release.id not in signed:  # once per release, not once per channel
                signed[release.id] = signed_intact(uow, release)
            try:
                if intact(uow, release, delivery, signed[release.id]):
                    taken.append(claims.as_claim(uow, delivery))
                else:
                    refuse_tampered(uow, release, delivery)
            except UnknownKind as missing:  # its plugin failed to load: it fails alone
                claims.set_state(uow, delivery, D.FAILED, error=(KIND_NOT_LOADED, str(missing)))
        uow.commit()

    def run(claim: Claim) -> dict[str, Any]:
        claim.adapter.validate(claim.payload)
        return claim.adapter.stage(claim.payload, claim.key)

    outcomes = concurrently(taken, run)
    with UnitOfWork(ctx) as uow:  # every channel's outcome in one transaction
        held = claims.fenced_many(uow, taken)
        for claim, out in zip(taken, outcomes, strict=True):
            delivery = held.get(claim.delivery_id)
            if delivery is None:
                continue
            claims.record_attempt(uow, delivery, "stage", out)
            if out.error is None:
                delivery.staged = out.value or {}
                claims.set_state(uow, delivery, D.STAGED)
            else:
                claims.retry_or_fail(uow, delivery, out.error, D.PENDING, "stage")
        uow.commit()
    for release_id in signed:
        if hold_or_fire(ctx, release_id, enqueue_fire=False):
            fire(ctx, release_id)  # this worker goes on to fire: no broker hop at go-live
