"""The one place that writes audit rows; the auditor's queries.

Events are appended in the caller's transaction with no lock and no position; the
sequencer (usecases/transparency) puts them in a Merkle tree and signs checkpoints, and
usecases/audit_verify checks the lot. Events older than the tree also carry the hash
chain they were written with (prev_hash, hash), still checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from hashlib import sha256
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from orchestrator.domain.audit_actions import Action, action_named
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.hashing import canonical_json
from orchestrator.domain.redaction import redact
from orchestrator.settings import Settings
from orchestrator.store.models import AuditEvent

# `at` is stamped as a transaction commits, so ids follow time only roughly (two commits
# race for ids): a time filter starts its id scan this much earlier
ID_TIME_SKEW = dt.timedelta(minutes=1)


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
def _add_pending(session: Session) -> None:
    """Add this transaction's events as it commits, stamped with the commit's time. No
    lock: their positions in the log are the sequencer's to give."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    now = utcnow()
    for event in pending:
        event.at = now
        session.add(event)
    session.flush()


@sa_event.listens_for(OrmSession, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def event_hash(event: Any) -> str:
    """The hash-chain link of an event recorded before the Merkle tree (kept, and checked)."""
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
        first = session.exec(select(AuditEvent.id).where(AuditEvent.at >= since - ID_TIME_SKEW)
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


def as_dict(event: Any) -> dict[str, Any]:
    """An event (or a row of its table) as exported, and as its Merkle leaf commits to."""
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


def verify(session: Session, settings: Settings | None = None, verifier: Any = None) -> dict[str, Any]:
    """Check the log against its events, its checkpoints and what was published outside."""
    from orchestrator.usecases.audit_verify import verify as verify_log

    return verify_log(session, settings, verifier)
