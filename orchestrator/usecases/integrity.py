"""Integrity watch: what is live must be what was approved, and stay that way.

After go-live and then periodically, every published delivery whose channel can be
read back is compared with its signed payload; any difference (a defaced page,
injected spam blocks, a deleted post) raises an alert with a diff, in the audit trail.
"""

from __future__ import annotations

import difflib
import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import select

from channels.contract import ChannelError, Receipt
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.states import DeliveryState as D
from orchestrator.store.models import Delivery, IntegrityAlert
from orchestrator.usecases import audit
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

MAX_DIFF = 20_000


def diff(approved: str, found: str) -> str:
    lines = difflib.unified_diff(approved.splitlines(), found.splitlines(), "approved", "live",
                                 lineterm="", n=2)
    return "\n".join(lines)[:MAX_DIFF]


def check(ctx: Context, every_seconds: float | None = None, limit: int = 200) -> list[dict]:
    """Compare what is live with what was approved; returns the new alerts."""
    if every_seconds is None:
        every_seconds = ctx.settings.integrity_interval_seconds
    due_before = utcnow() - timedelta(seconds=every_seconds)
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(Delivery).where(
            Delivery.state == D.PUBLISHED,
            or_(Delivery.checked_at.is_(None), Delivery.checked_at < due_before),
        ).order_by(Delivery.id).limit(limit)).all()
        targets = [(d.id, adapter_for(ctx.settings, get_channel(uow.session, d.channel)),
                    d.payload, Receipt.from_json(d.receipt)) for d in rows if d.receipt]
    found = {}
    for delivery_id, adapter, payload, receipt in targets:  # outside any transaction
        try:
            found[delivery_id] = (adapter.read_back(payload, receipt), adapter, payload)
        except ChannelError:
            continue  # cannot read now: try again next round
    alerts = []
    with UnitOfWork(ctx) as uow:
        for delivery_id, (live, adapter, payload) in found.items():
            delivery = uow.session.get(Delivery, delivery_id)
            delivery.checked_at = utcnow()
            uow.session.add(delivery)
            if live is None:
                continue  # this channel cannot be read back
            approved = adapter.shown(payload)
            if live == approved or _already_alerted(uow, delivery_id, live):
                continue
            alerts.append(_alert(uow, delivery, approved, live))
        uow.commit()
    return alerts


def _already_alerted(uow: UnitOfWork, delivery_id: int, live: str) -> bool:
    digest = hashlib.sha256(live.encode()).hexdigest()
    return uow.session.exec(select(IntegrityAlert).where(
        IntegrityAlert.delivery_id == delivery_id, IntegrityAlert.found_sha256 == digest,
        IntegrityAlert.resolved == False)).first() is not None  # noqa: E712


def _alert(uow: UnitOfWork, delivery: Delivery, approved: str, live: str) -> dict[str, Any]:
    row = IntegrityAlert(delivery_id=delivery.id, release_id=delivery.release_id,
                         channel=delivery.channel, diff=diff(approved, live) or "(removed)",
                         found_sha256=hashlib.sha256(live.encode()).hexdigest())
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow.session, actor="integrity", action="integrity.alert",
                 subject_type="delivery", subject_id=delivery.id, release_id=delivery.release_id,
                 channel=delivery.channel, detail={"alert": row.id, "diff": row.diff[:2000]})
    return as_dict(row)


def as_dict(row: IntegrityAlert) -> dict[str, Any]:
    return {"id": row.id, "delivery_id": row.delivery_id, "release_id": row.release_id,
            "channel": row.channel, "detected_at": iso(row.detected_at), "diff": row.diff,
            "resolved": row.resolved}


def open_alerts(ctx: Context) -> list[dict[str, Any]]:
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(IntegrityAlert).where(
            IntegrityAlert.resolved == False).order_by(IntegrityAlert.id)).all()  # noqa: E712
        return [as_dict(r) for r in rows]
