"""Integrity watch: what is live must be what was approved, and stay that way.

After go-live and then periodically, the current delivery of every target whose channel
can be read back is compared with its signed payload; any difference (a defaced page,
injected spam blocks, a deleted post) raises an alert with a diff, in the audit trail.

A *target* is one thing a channel shows: a channel instance and the remote id the
platform gave (a website page, a Weibo post, a WeChat article, a desk's item version, a
CMS page). A correction that replaces the item in place (website, CMS) publishes to the
same target, and a withdrawal takes it down: only the target's latest word is compared,
so neither raises an alert on the original.

The scheduler only says which checks are due (`enqueue_due`, database only): each check
runs as its own task (`tongfa.integrity`, queue `integrity`) so slow read-backs never
hold up the scheduler's tick, its lease or a go-live.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from channels.contract import MANUAL, ChannelAdapter, ChannelError, Receipt
from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.redaction import redact_text
from orchestrator.domain.states import DeliveryState as D
from orchestrator.store.models import Delivery, IntegrityAlert, Release
from orchestrator.usecases import alerts, audit
from orchestrator.usecases.channels import get_channel
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
MAX_DIFF = 20_000
TASK = "integrity"


def diff(approved: str, found: str) -> str:
    lines = difflib.unified_diff(approved.splitlines(), found.splitlines(), "approved", "live",
                                 lineterm="", n=2)
    return "\n".join(lines)[:MAX_DIFF]


def same(approved: str, live: str) -> bool:
    """Equal once line breaks are one kind: a platform or server that writes CR/LF (or
    reads it back as LF) has not changed what readers see."""
    return _lines(approved) == _lines(live)


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def due(session: Session, every_seconds: float, limit: int) -> list[Delivery]:
    """The current delivery of each target whose last check is older than every_seconds."""
    due_before = utcnow() - timedelta(seconds=every_seconds)
    rows = list(session.exec(
        select(Delivery).join(Release, Release.id == Delivery.release_id).where(
            Delivery.state == D.PUBLISHED, Delivery.revision == Release.revision,
            or_(Delivery.checked_at.is_(None), Delivery.checked_at < due_before),
        ).order_by(Delivery.id).limit(limit)).all())
    latest = _latest_word(session, rows)
    return [d for d in rows if d.receipt and _readable(d.kind) and latest.get(_target(d)) == d.id
            and not (d.remote_id or "").startswith(MANUAL)]  # no platform id to read it by


def _readable(kind: str) -> bool:
    """The kind's adapter can read a delivery back (else no task is worth sending)."""
    try:
        return adapter_class(kind).read_back is not ChannelAdapter.read_back
    except UnknownKind:
        return False


def _target(delivery: Delivery) -> tuple[str, str]:
    return delivery.channel, delivery.remote_id or f"delivery-{delivery.id}"


def _latest_word(session: Session, rows: list[Delivery]) -> dict[tuple[str, str], int | None]:
    """Per target, the delivery whose publish is the latest thing said there; None when
    the latest thing was a withdrawal (nothing is meant to be shown)."""
    remote_ids = {d.remote_id for d in rows if d.remote_id}
    others = list(session.exec(select(Delivery).where(
        Delivery.remote_id.in_(remote_ids), Delivery.state.in_([D.PUBLISHED, D.WITHDRAWN]))
    ).all()) if remote_ids else []
    said: dict[tuple[str, str], tuple[Any, int, int | None]] = {}
    for d in {x.id: x for x in [*rows, *others]}.values():
        withdrawn = d.state == D.WITHDRAWN
        # when it became published or withdrawn, by our clock (a platform's may differ)
        word = (_naive(d.updated_at), d.id, None if withdrawn else d.id)
        if _target(d) not in said or word[:2] > said[_target(d)][:2]:
            said[_target(d)] = word
    return {target: word[2] for target, word in said.items()}


def _naive(value: Any) -> Any:
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value


def enqueue_due(ctx: Context, every_seconds: float | None = None, limit: int = 200) -> int:
    """Send one integrity task per due check (for the scheduler's tick: no read-back here)."""
    if every_seconds is None:
        every_seconds = ctx.settings.integrity_interval_seconds
    with UnitOfWork(ctx) as uow:
        rows = due(uow.session, every_seconds, limit)
        for delivery in rows:
            delivery.checked_at = utcnow()  # not sent again before its next round
            uow.session.add(delivery)
            uow.enqueue(TASK, priority=TASK, delivery_id=delivery.id)
        uow.commit()
    return len(rows)


def check(ctx: Context, every_seconds: float | None = None, limit: int = 200) -> list[dict]:
    """Every due check, here and now (the CLI, tests); returns the new alerts."""
    if every_seconds is None:
        every_seconds = ctx.settings.integrity_interval_seconds
    with UnitOfWork(ctx) as uow:
        ids = [d.id for d in due(uow.session, every_seconds, limit)]
    return [alert for delivery_id in ids for alert in check_one(ctx, delivery_id)]


def check_one(ctx: Context, delivery_id: int) -> list[dict]:
    """Read one delivery back and compare it with what was approved; the new alert, if any."""
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != D.PUBLISHED or not delivery.receipt:
            return []
        if _latest_word(uow.session, [delivery]).get(_target(delivery)) != delivery.id:
            return []  # superseded by a correction or taken down since it was due
        adapter = ctx.adapters.adapter(ctx.settings, get_channel(uow.session, delivery.channel))
        payload, receipt = delivery.payload, Receipt.from_json(delivery.receipt)
    try:
        live = adapter.read_back(payload, receipt)  # outside any transaction
    except ChannelError as exc:
        return _unreadable(ctx, delivery_id, adapter, payload, exc)
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        delivery.checked_at = utcnow()
        delivery.unreadable_since = None
        uow.session.add(delivery)
        alerts = []
        if live is not None:  # None: this channel cannot be read back
            approved = adapter.shown(payload)
            if not same(approved, live) and not _already_alerted(uow, delivery_id, live):
                alerts.append(_alert(uow, delivery, approved, live))
        uow.commit()
    return alerts


def answered_otherwise(exc: ChannelError) -> bool:
    """The platform answered, with something other than the page: a redirect (elsewhere:
    a hijacked server sends every reader there) or a refusal. Not a moment's trouble: a
    server error, no connection, 408 or 429 may be gone by the next round."""
    code = exc.code or ""
    if not code.startswith("http_") or not code[5:].isdigit():
        return False
    status = int(code[5:])
    return 300 <= status < 500 and status not in (408, 429)


def _unreadable(ctx: Context, delivery_id: int, adapter: ChannelAdapter, payload: Any,
                exc: ChannelError) -> list[dict]:
    """A read-back that failed: an alert naming what was seen when the platform answered
    with something else, or when it has not been readable for integrity_unreadable_alert_
    seconds; until then, try again next round."""
    seen = redact_text(f"（读回时平台没有给出审定页面：{exc}，代码 {exc.code}）")
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        if delivery is None:
            return []
        now = utcnow()
        delivery.checked_at = now
        if delivery.unreadable_since is None:
            delivery.unreadable_since = now
        uow.session.add(delivery)
        unreadable_for = (now - delivery.unreadable_since).total_seconds()
        log.warning("integrity: delivery %s on %s cannot be read back (%s, for %.0fs)",
                    delivery_id, delivery.channel, exc.code, unreadable_for)
        # a channel's own refusal to connect (e.g. a private base_url not in
        # TONGFA_OUTBOUND_ALLOW) is a configuration matter: logged, not a defacement
        found = []
        if exc.code != "outbound_refused" and (
                answered_otherwise(exc) or (
                    (exc.retryable or exc.kind == "outcome_unknown")  # a GET: no answer
                    and unreadable_for >= ctx.settings.integrity_unreadable_alert_seconds)):
            if not _already_alerted(uow, delivery_id, seen):
                found.append(_alert(uow, delivery, adapter.shown(payload), seen))
        uow.commit()
    return found


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
    audit.record(uow.session, actor="integrity", action=Action.INTEGRITY_ALERT,
                 subject_type="delivery", subject_id=delivery.id, release_id=delivery.release_id,
                 channel=delivery.channel, detail={"alert": row.id, "diff": row.diff[:2000]})
    # people hear of it through the one alert outbox (sent by a worker, retried)
    release = uow.session.get(Release, delivery.release_id)
    if release is not None:
        alerts.raise_alert(uow, alerts.INTEGRITY, release,
                           f"渠道 {delivery.channel} 上的发布内容与审定稿不一致\n{row.diff[:2000]}",
                           channel=delivery.channel, delivery_id=delivery.id)
    return as_dict(row)


def as_dict(row: IntegrityAlert) -> dict[str, Any]:
    return {"id": row.id, "delivery_id": row.delivery_id, "release_id": row.release_id,
            "channel": row.channel, "detected_at": iso(row.detected_at), "diff": row.diff,
            "resolved": row.resolved}


def open_alerts(ctx: Context, actor: str | None = None) -> list[dict[str, Any]]:
    """Open integrity alerts: of the releases whose deliveries `actor` may read (their
    unit's, or below it for auditors), or every one (None: the system, the operator)."""
    from orchestrator.domain.access import Op
    from orchestrator.usecases import access

    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(IntegrityAlert).where(
            IntegrityAlert.resolved == False).order_by(IntegrityAlert.id)).all()  # noqa: E712
        if actor is not None:
            who = access.principal(uow.session, actor)
            releases = {r.release_id: uow.session.get(Release, r.release_id) for r in rows}
            rows = [r for r in rows if releases[r.release_id] is not None
                    and access.allows(uow.session, who, Op.DELIVERIES, releases[r.release_id])]
        return [as_dict(r) for r in rows]
