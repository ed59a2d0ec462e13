"""The one place that writes audit rows, and the auditor's queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.clock import iso
from orchestrator.domain.redaction import redact
from orchestrator.store.models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    release_id: int | None = None,
    channel: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one AuditEvent to the caller's transaction (it commits with the change)."""
    event = AuditEvent(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        release_id=release_id,
        channel=channel,
        before=redact(before),
        after=redact(after),
        detail=redact(detail),
    )
    session.add(event)
    return event


def query(
    session: Session,
    *,
    release_id: int | None = None,
    channel: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 1000,
    after_id: int = 0,
) -> list[AuditEvent]:
    """Events in order, filtered; keyset pagination through after_id."""
    stmt = select(AuditEvent).where(AuditEvent.id > after_id)
    if release_id is not None:
        stmt = stmt.where(AuditEvent.release_id == release_id)
    if channel:
        stmt = stmt.where(AuditEvent.channel == channel)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at < until)
    return list(session.exec(stmt.order_by(AuditEvent.id).limit(limit)))


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "release_id": event.release_id,
        "channel": event.channel,
        "before": event.before,
        "after": event.after,
        "detail": event.detail,
    }
