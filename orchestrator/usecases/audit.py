"""The one place that writes audit rows; the auditor's queries; the chain's verification.

Each event carries the hash of the one before it (a hash chain over a canonical
form), and signed checkpoints note the head, so an edited, removed, reordered or
truncated event is found by `verify`.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterator
from hashlib import sha256
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from orchestrator.domain.audit_actions import Action, action_named
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.hashing import canonical_json
from orchestrator.domain.redaction import redact
from orchestrator.settings import Settings
from orchestrator.store.models import AuditCheckpoint, AuditEvent
from orchestrator.store.secrets import audit_key

CHAIN_LOCK = 7420002  # PostgreSQL advisory lock: one appender at a time keeps one chain


def record(
    session: Session,
    *,
    actor: str,
    action: Action | str,
    subject_type: str,
    subject_id: object,
    release_id: int | None = None,
    channel: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one AuditEvent to the caller's transaction (it commits with the change).

    Where the action came from (the context's origin, e.g. the CLI and its OS user) goes
    into `detail`, which the chain already hashes: older events verify unchanged."""
    origin = session.info.get("origin")
    if origin:
        detail = {**origin, **(detail or {})}
    event = AuditEvent(
        actor=actor, action=action_named(action).value, subject_type=subject_type, subject_id=str(subject_id),
        release_id=release_id, channel=channel,
        before=redact(before), after=redact(after), detail=redact(detail), prev_hash="",
    )
    session.info.setdefault(PENDING, []).append(event)
    return event


PENDING = "audit_pending"


@sa_event.listens_for(OrmSession, "before_commit")
def _chain_pending(session: Session) -> None:
    """Chain this transaction's events as it commits. The chain lock is the LAST lock a
    transaction takes (after every row lock it holds), so two transactions can never wait
    on each other through it; `at` is stamped under the lock, so ids follow time."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
    row = session.execute(select(AuditEvent.id, AuditEvent.hash)
                          .order_by(AuditEvent.id.desc()).limit(1)).first()
    last_id, prev_hash = (row[0], row[1]) if row else (0, "")
    now = utcnow()
    for event in pending:
        last_id += 1
        event.id, event.at, event.prev_hash = last_id, now, prev_hash
        event.hash = prev_hash = event_hash(event)
        session.add(event)
    session.flush()


@sa_event.listens_for(OrmSession, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def event_hash(event: AuditEvent) -> str:
    body = {k: v for k, v in as_dict(event).items() if k not in ("hash",)}
    return sha256(event.prev_hash.encode() + canonical_json(body)).hexdigest()


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
    if since is not None:  # events are appended in time order: start the id scan there
        first = session.exec(select(AuditEvent.id).where(AuditEvent.at >= since)
                             .order_by(AuditEvent.at, AuditEvent.id).limit(1)).first()
        after_id = max(after_id, (first or 2**62) - 1)
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


def export(engine: Any, batch: int = 2000, **filters: Any) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first, a page at a time: memory stays flat at any size."""
    after_id = 0
    while True:
        with Session(engine) as session:
            rows = query(session, limit=batch, after_id=after_id, **filters)
            page = [as_dict(e) for e in rows]
        yield from page
        if len(page) < batch:
            return
        after_id = page[-1]["id"]


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
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


# ------------------------------------------------------------------ checkpoints, verify


def _sign(settings: Settings, event_id: int, event_hash_: str) -> str:
    return hmac.new(audit_key(settings), f"{event_id}:{event_hash_}".encode(), sha256).hexdigest()


def checkpoint(session: Session, settings: Settings) -> AuditCheckpoint | None:
    """Sign the chain's current head (caller commits). None when nothing is new."""
    head = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    last = session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).first()
    if head is None or (last is not None and last.event_id == head.id):
        return None
    row = AuditCheckpoint(event_id=head.id, event_hash=head.hash,
                          signature=_sign(settings, head.id, head.hash))
    session.add(row)
    return row


def verify(session: Session, settings: Settings | None = None, batch: int = 5000) -> dict[str, Any]:
    """Walk the chain; report the first event that was altered, removed, reordered or cut off."""
    prev_hash, checked, after_id, last_id = "", 0, 0, 0
    hashes: dict[int, str] = {}
    while True:
        rows = list(session.exec(select(AuditEvent).where(AuditEvent.id > after_id)
                                 .order_by(AuditEvent.id).limit(batch)))
        if not rows:
            break
        for event in rows:
            if event.prev_hash != prev_hash:
                return _verdict(False, checked, event.id,
                                "an event before this one was removed or the order changed")
            if event_hash(event) != event.hash:
                return _verdict(False, checked, event.id, "this event was altered")
            prev_hash, last_id, checked = event.hash, event.id, checked + 1
            hashes[event.id] = event.hash
        after_id = rows[-1].id
    if settings is not None:
        for cp in session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
            if not hmac.compare_digest(cp.signature, _sign(settings, cp.event_id, cp.event_hash)):
                return _verdict(False, checked, cp.event_id, f"checkpoint {cp.id} is not genuine")
            if cp.event_id > last_id:
                return _verdict(False, checked, last_id + 1,
                                f"the trail was cut off: checkpoint {cp.id} saw event {cp.event_id}")
            if hashes.get(cp.event_id) != cp.event_hash:
                return _verdict(False, checked, cp.event_id,
                                f"event differs from what checkpoint {cp.id} signed")
    return _verdict(True, checked, None, "the audit trail is intact")


def _verdict(ok: bool, checked: int, first_bad_id: int | None, reason: str) -> dict[str, Any]:
    return {"ok": ok, "checked": checked, "first_bad_id": first_bad_id, "reason": reason}
