"""What the press office and auditors read about deliveries and their attempts."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.access import Duty, Op
from orchestrator.domain.clock import iso
from orchestrator.store.models import Delivery, DeliveryAttempt
from orchestrator.usecases import access
from orchestrator.usecases.releases import get_release
from orchestrator.usecases.users import get_user


def for_release(session: Session, release_id: int, all_revisions: bool = False,
                actor: str | None = None) -> list[Delivery]:
    """A release's deliveries; entry points pass the actor (None: the system itself)."""
    release = get_release(session, release_id)
    if actor is not None:
        access.check(session, actor, Op.DELIVERIES, release)
    stmt = select(Delivery).where(Delivery.release_id == release_id)
    if not all_revisions:
        stmt = stmt.where(Delivery.revision == release.revision)
    return list(session.exec(stmt.order_by(Delivery.id)))


def attempts(session: Session, delivery_id: int) -> list[DeliveryAttempt]:
    return list(session.exec(
        select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.id)
    ))


def as_dict(session: Session, delivery: Delivery, with_attempts: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": delivery.id,
        "release_id": delivery.release_id,
        "revision": delivery.revision,
        "channel": delivery.channel,
        "kind": delivery.kind,
        "state": delivery.state,
        "remote_id": delivery.remote_id,
        "url": delivery.url,
        "published_at": iso(delivery.published_at),
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "last_error_code": delivery.last_error_code,
        "last_error": delivery.last_error,
    }
    if with_attempts:
        view["attempt_log"] = [
            {"number": a.number, "phase": a.phase, "started_at": iso(a.started_at),
             "ended_at": iso(a.ended_at), "duration_ms": a.duration_ms, "outcome": a.outcome,
             "error_code": a.error_code, "message": a.message}
            for a in attempts(session, delivery.id)
        ]
    return view


def attempts_query(
    session: Session, *, release_id: int | None = None, channel: str | None = None,
    outcome: str | None = None, since: Any = None, until: Any = None, after_id: int = 0,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Delivery attempts for auditors, filtered; keyset pagination through after_id."""
    stmt = (select(DeliveryAttempt, Delivery.release_id, Delivery.channel)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(DeliveryAttempt.id > after_id))
    if release_id is not None:
        stmt = stmt.where(Delivery.release_id == release_id)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    if outcome:
        stmt = stmt.where(DeliveryAttempt.outcome == outcome)
    if since:
        stmt = stmt.where(DeliveryAttempt.started_at >= since)
    if until:
        stmt = stmt.where(DeliveryAttempt.started_at < until)
    rows = session.exec(stmt.order_by(DeliveryAttempt.id).limit(limit)).all()
    return [{"id": a.id, "release_id": rid, "channel": ch, "delivery_id": a.delivery_id,
             "number": a.number, "phase": a.phase, "outcome": a.outcome,
             "error_code": a.error_code, "message": a.message, "started_at": iso(a.started_at),
             "duration_ms": a.duration_ms} for a, rid, ch in rows]


def failed(session: Session, limit: int = 200, actor: str | None = None) -> list[dict[str, Any]]:
    """Failed deliveries of each release's current revision: the ones a re-send can help
    (those of releases whose deliveries `actor` may read; None: the system)."""
    return _in_state(session, "failed", limit, actor)


def needing_decision(session: Session, limit: int = 200, actor: str | None = None
                     ) -> list[dict[str, Any]]:
    """Deliveries a channel admin must decide: re-send, or mark published with its URL.

    For whoever reads alerts (channel admins, auditors); entry points pass the actor
    (None: the system)."""
    if actor is not None:
        access.require_duty(get_user(session, actor), Duty.ALERTS)
    return _in_state(session, "needs_decision", limit, actor)


def _in_state(session: Session, state: str, limit: int, actor: str | None = None
              ) -> list[dict[str, Any]]:
    from orchestrator.store.models import Release

    rows = session.exec(
        select(Delivery, Release).join(Release, Release.id == Delivery.release_id)
        .where(Delivery.state == state, Delivery.revision == Release.revision)
        .order_by(Delivery.updated_at.desc()).limit(limit)).all()
    if actor is not None:  # another unit's deliveries are none of this person's business
        who = access.principal(session, actor)
        rows = [(d, r) for d, r in rows if access.allows(session, who, Op.DELIVERIES, r)]
    return [{"id": d.id, "release_id": d.release_id, "title": r.title, "channel": d.channel,
             "attempts": d.attempts, "error_code": d.last_error_code, "error": d.last_error,
             "at": iso(d.updated_at)} for d, r in rows]
