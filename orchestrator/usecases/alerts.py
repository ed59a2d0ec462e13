"""Alerts for a person: a delivery that needs a decision, a release held by a channel,
a published item that no longer shows what was signed (integrity).

Raised in the transaction that found the trouble (so a crash cannot lose one), sent to
the alert webhook by a worker once due. A held release of normal priority is given
`held_alert_seconds` to clear on its own (a stage retry that succeeds says nothing);
an urgent one, and every delivery that needs a decision, alerts at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import iso, utcnow
from orchestrator.store.models import Alert, Release
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

NEEDS_DECISION, HELD, INTEGRITY = "needs_decision", "held", "integrity"
RAISED = {NEEDS_DECISION: Action.ALERT_NEEDS_DECISION, HELD: Action.ALERT_HELD,
          INTEGRITY: Action.ALERT_INTEGRITY}  # what the audit trail calls raising each kind
RETRY_SEND_SECONDS = 60.0  # a webhook that failed is tried again this much later


def raise_alert(uow: UnitOfWork, kind: str, release: Release, message: str, *,
                channel: str | None = None, delivery_id: int | None = None,
                at_once: bool = True) -> Alert | None:
    """One open alert per (kind, release, channel): raising it again changes nothing."""
    s = uow.session
    if _open(s, kind, release.id, channel) is not None:
        return None
    now = utcnow()
    grace = 0.0 if at_once or release.priority == "urgent" else uow.ctx.settings.held_alert_seconds
    alert = Alert(kind=kind, release_id=release.id, delivery_id=delivery_id, channel=channel,
                  message=message, raised_at=now, due_at=now + timedelta(seconds=grace))
    s.add(alert)
    s.flush()
    audit.record(s, actor="worker", action=RAISED[kind], subject_type="release",
                 subject_id=release.id, release_id=release.id, channel=channel,
                 after={"alert": alert.id, "due_at": iso(alert.due_at)},
                 detail={"message": message})
    if grace == 0:
        uow.enqueue("send_alerts", priority=release.priority)
    return alert


def clear(session: Session, kind: str, release_id: int, *, channel: str | None = None,
          keep: Iterable[str | None] = ()) -> int:
    """Close the open alerts of this kind on a release: of one channel when given, else
    all but those on the channels in `keep` (their trouble goes on)."""
    kept = set(keep)
    rows = [a for a in _open_rows(session, kind, release_id)
            if (channel is None or a.channel == channel) and a.channel not in kept]
    for row in rows:
        row.cleared_at = utcnow()
        session.add(row)
    return len(rows)


def open_for(session: Session, kind: str, release_id: int) -> list[Alert]:
    return sorted(_open_rows(session, kind, release_id), key=lambda a: a.id or 0)


def clear_stale(ctx: Context) -> int:
    """Close alerts whose cause went away without passing a decision point (a held
    release edited back into review or withdrawn; a decided delivery)."""
    from orchestrator.store.models import Delivery

    with UnitOfWork(ctx) as uow:
        s = uow.session
        rows = s.exec(select(Alert, Release.state, Delivery.state)
                      .join(Release, Release.id == Alert.release_id)
                      .outerjoin(Delivery, Delivery.id == Alert.delivery_id)
                      .where(Alert.cleared_at.is_(None))).all()
        stale = [a for a, release_state, delivery_state in rows
                 if (a.kind == HELD and release_state not in ("approved", "scheduled"))
                 or (a.kind == NEEDS_DECISION and delivery_state != "needs_decision")]
        for alert in stale:
            alert.cleared_at = utcnow()
            s.add(alert)
        if stale:
            uow.commit()
    return len(stale)


def _open_rows(session: Session, kind: str, release_id: int) -> list[Alert]:
    return list(session.exec(select(Alert).where(
        Alert.kind == kind, Alert.release_id == release_id, Alert.cleared_at.is_(None))))


def _open(session: Session, kind: str, release_id: int, channel: str | None) -> Alert | None:
    return next((a for a in _open_rows(session, kind, release_id) if a.channel == channel), None)


def open_alerts(session: Session, kind: str | None = None) -> list[Alert]:
    stmt = select(Alert).where(Alert.cleared_at.is_(None)).order_by(Alert.id)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    return list(session.exec(stmt))


def as_dict(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "kind": alert.kind, "release_id": alert.release_id,
            "delivery_id": alert.delivery_id, "channel": alert.channel,
            "message": alert.message, "raised_at": iso(alert.raised_at),
            "due_at": iso(alert.due_at), "sent_at": iso(alert.sent_at)}


def any_due(ctx: Context) -> bool:
    """For the scheduler's tick: is an alert waiting to be sent? (no network here)"""
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(Alert.id).where(
            Alert.cleared_at.is_(None), Alert.sent_at.is_(None),
            Alert.due_at <= utcnow()).limit(1)).first() is not None


def send_due(ctx: Context) -> int:
    """Post every due, unsent, open alert to the webhook (a worker's task); returns how
    many were accepted. One that fails is tried again later; with no webhook configured
    an alert counts as told (the console and `tongfa alerts` still show it)."""
    from orchestrator import notify  # HTTP: outside any transaction

    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(Alert).where(
            Alert.cleared_at.is_(None), Alert.sent_at.is_(None),
            Alert.due_at <= utcnow()).order_by(Alert.id).limit(100)).all()
        due = [as_dict(a) for a in rows]
    if not due:
        return 0
    accepted = notify.operator_alerts(ctx.settings, due)
    with UnitOfWork(ctx) as uow:
        for item in due:
            alert = uow.session.get(Alert, item["id"])
            if alert is None or alert.sent_at is not None:
                continue
            if item["id"] in accepted or not notify.configured(ctx.settings):
                alert.sent_at = utcnow()
            else:
                alert.due_at = utcnow() + timedelta(seconds=RETRY_SEND_SECONDS)
            uow.session.add(alert)
        uow.commit()
    return len(accepted)
