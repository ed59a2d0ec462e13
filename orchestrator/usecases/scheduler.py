"""The scheduler's tick: fire due go-lives and re-drive whatever a lost message left behind.

Driven from the database alone (no long ETA tasks parked in the broker), so a
restarted scheduler, a purged queue or a SIGKILLed worker costs time, not work.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import utcnow
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Delivery, Release, SchedulerLease
from orchestrator.usecases import alerts, audit, integrity, transparency
from orchestrator.usecases.delivery import claims, follow_up, gate, instant
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
REDRIVE_TASK = {D.PENDING: "stage", D.STAGED: "publish", D.RECONCILING: "reconcile",
                D.CONFIRMING: "confirm"}
# a claimed delivery whose lease ran out: where it goes, and why that is safe
EXPIRED_LEASE = {D.STAGING: D.PENDING,  # staging again is harmless
                 D.PUBLISHING: D.RECONCILING}  # it may have gone out: look before re-sending


def tick(ctx: Context, redrive_after: float = 30.0) -> dict[str, int]:
    counts = {"fired": _fire_due(ctx), "expired": _expire_leases(ctx)}
    counts["redriven"] = _redrive(ctx, redrive_after)
    for release_id in _ids(ctx, R.APPROVED):
        gate.hold_or_fire(ctx, release_id)
    for release_id in _ids(ctx, R.PUBLISHING):
        follow_up.finish(ctx, release_id)
    _checkpoint_audit(ctx)
    # only which checks are due: the read-backs run as their own tasks, off the lease clock
    counts["integrity"] = integrity.enqueue_due(ctx)
    _alerts_due(ctx)
    return counts


def _alerts_due(ctx: Context) -> None:
    """Alerts whose time came (a held release's grace ran out, a webhook to try again):
    a worker sends them; the tick does no network."""
    alerts.clear_stale(ctx)
    if alerts.any_due(ctx):
        with UnitOfWork(ctx) as uow:
            uow.enqueue("send_alerts", priority="urgent")
            uow.commit()


def _checkpoint_audit(ctx: Context, every_seconds: float = 1.0) -> None:
    """Put new audit events in the log and sign a checkpoint about every second; a failure
    here (a full disk under the witness directory) must not stop go-lives."""
    try:
        transparency.checkpoint(ctx, every_seconds=every_seconds)
    except Exception:
        log.exception("audit log checkpoint failed")


def _ids(ctx: Context, state: R) -> list[int]:
    with UnitOfWork(ctx) as uow:
        return list(uow.session.exec(select(Release.id).where(Release.state == state)))


def _fire_due(ctx: Context) -> int:
    """Scheduled releases whose instant is within the lead: cleared by the same gate as an
    immediate go-live (staged, checked again, group ready), then armed for their instant
    and sent in shares to the workers, which make everything ready before it
    (delivery.instant). Nothing goes out before the signed time."""
    fired = 0
    lead = dt.timedelta(seconds=ctx.settings.go_live_lead_seconds)
    with UnitOfWork(ctx) as uow:
        due = uow.session.exec(
            select(Release).where(Release.state == R.SCHEDULED,
                                  Release.go_live_at <= utcnow() + lead)
        ).all()
        for release in due:
            if release.state != R.SCHEDULED:
                continue  # already gone live with its group in this tick
            # a group waits for its latest member: cleared only once that one is due too
            window = utcnow() + lead
            at = min(gate.signed_go_live_at(uow.session, release) or window, window)
            members = gate.cleared_to_go_live(uow, release, (R.SCHEDULED, R.APPROVED), at=at)
            if not members:
                continue
            for member in members:
                gate.go_live(uow, member, actor="scheduler", enqueue_fire=False)
            shares = instant.plan(uow, members)
            at = instant.arm(uow, shares, max(at, utcnow()))
            instant.send_shares(uow, release.priority, shares, at)
            fired += 1
        uow.commit()
    return fired


def _expire_leases(ctx: Context) -> int:
    expired = 0
    with UnitOfWork(ctx) as uow:
        for source, target in EXPIRED_LEASE.items():
            rows = uow.session.exec(
                select(Delivery).where(Delivery.state == source, Delivery.lease_until < utcnow())
            ).all()
            for delivery in rows:
                claims.set_state(uow, delivery, target)
                delivery.lease_until = None
                audit.record(
                    uow.session, actor="reaper", action=Action.DELIVERY_LEASE_EXPIRED,
                    subject_type="delivery", subject_id=delivery.id,
                    release_id=delivery.release_id, channel=delivery.channel,
                    before={"state": source}, after={"state": target},
                )
                claims.send(uow, REDRIVE_TASK[target], delivery)
                expired += 1
        uow.commit()
    return expired


def _redrive(ctx: Context, redrive_after: float) -> int:
    """Re-send the task of every delivery idle past redrive_after; claims dedupe."""
    now = utcnow()
    idle = now - timedelta(seconds=redrive_after)
    sent = 0
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(
            select(Delivery, Release.state, Release.priority)
            .join(Release, Release.id == Delivery.release_id)
            .where(Delivery.state.in_(list(REDRIVE_TASK)), Delivery.updated_at < idle,
                   Delivery.revision == Release.revision)
        ).all()
        for delivery, release_state, priority in rows:
            if delivery.state == D.STAGED and release_state != R.PUBLISHING:
                continue  # staged and waiting for its go-live: nothing owed yet
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
                continue
            if delivery.lease_until is not None and delivery.lease_until > now:
                continue
            uow.session.execute(update(Delivery).where(Delivery.id == delivery.id)
                                .values(updated_at=now))
            uow.enqueue(REDRIVE_TASK[D(delivery.state)], priority=priority,
                        delivery_id=delivery.id)
            sent += 1
        uow.commit()
    return sent


def seconds_to_next_go_live(ctx: Context) -> float | None:
    with UnitOfWork(ctx) as uow:
        due = uow.session.exec(select(Release.go_live_at).where(
            Release.state == R.SCHEDULED, Release.go_live_at.is_not(None))
            .order_by(Release.go_live_at).limit(1)).first()
    if due is None:
        return None  # a go-live is made ready its lead before the instant
    return (due - utcnow()).total_seconds() - ctx.settings.go_live_lead_seconds


def hold_lease(ctx: Context, holder: str, ttl: float = 10.0) -> bool:
    """Take or renew the scheduler lease; False while another scheduler holds it."""
    now = utcnow()
    with UnitOfWork(ctx) as uow:
        lease = uow.session.exec(select(SchedulerLease).where(SchedulerLease.name == "scheduler")
                                 .with_for_update()).first()
        if lease is not None and lease.holder != holder and lease.expires_at > now:
            return False
        lease = lease or SchedulerLease(name="scheduler", holder=holder, expires_at=now)
        lease.holder, lease.expires_at = holder, now + timedelta(seconds=ttl)
        uow.session.add(lease)
        try:
            uow.commit()
        except IntegrityError:  # another scheduler created the row first
            return False
    return True


def run(ctx: Context, should_stop: Callable[[float], bool], period: float = 0.25) -> None:
    """Tick until told to stop; wake exactly at a go-live time rather than up to a period late.

    Only the holder of the scheduler lease ticks: a second scheduler started by mistake
    waits, and takes over within the lease's ttl if the first one dies.
    """
    holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    while True:
        try:
            if not hold_lease(ctx, holder):
                if should_stop(1.0):
                    return
                continue
            tick(ctx, redrive_after=ctx.settings.redrive_seconds)
            wait = seconds_to_next_go_live(ctx)
        except Exception:  # keep going: the next tick retries
            log.exception("scheduler tick failed")
            wait = None
        if should_stop(period if wait is None else max(0.0, min(period, wait))):
            return
