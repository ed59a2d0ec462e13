"""Channel instances: an adapter kind + config + encrypted credentials."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from channels.contract import ChannelAdapter, ChannelError
from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.redaction import redact_text
from orchestrator.settings import Settings
from orchestrator.store import secrets
from orchestrator.store.models import ChannelInstance
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork


def _check(kind: str, config: dict[str, Any], credentials: dict[str, Any]) -> None:
    try:
        cls = adapter_class(kind)
        cls(config, credentials)
    except UnknownKind as exc:
        raise InvalidInput([("kind", str(exc))]) from None
    except ValidationError as exc:
        raise InvalidInput(
            [(".".join(map(str, e["loc"])) or "config", e["msg"]) for e in exc.errors()]
        ) from None


def save_channel(
    uow: UnitOfWork,
    name: str,
    kind: str,
    config: dict[str, Any],
    credentials: dict[str, Any] | None,
    actor: str,
) -> ChannelInstance:
    """Add or replace a channel instance; credentials=None keeps the stored ones."""
    s = uow.session
    row = s.exec(select(ChannelInstance).where(ChannelInstance.name == name)).first()
    old_creds = secrets.decrypt(uow.ctx.settings, row.credentials_encrypted) if row else {}
    creds = old_creds if credentials is None else credentials
    _check(kind, config, creds)
    before = {"kind": row.kind, "config": row.config} if row else None
    row = row or ChannelInstance(name=name, kind=kind)
    row.kind, row.config, row.updated_at = kind, config, utcnow()
    row.credentials_encrypted = secrets.encrypt(uow.ctx.settings, creds)
    row.credentials_rejected = False
    s.add(row)
    audit.record(
        s, actor=actor, action="channel.saved", subject_type="channel", subject_id=name,
        channel=name, before=before,
        after={"kind": kind, "config": config, "credentials_changed": credentials is not None},
    )
    uow.commit()
    return row


def get_channel(session: Session, name: str) -> ChannelInstance:
    row = session.exec(select(ChannelInstance).where(ChannelInstance.name == name)).first()
    if row is None:
        raise NotFound(f"no channel named {name!r}")
    return row


def list_channels(session: Session) -> list[ChannelInstance]:
    return list(session.exec(select(ChannelInstance).order_by(ChannelInstance.name)))


def adapter_for(settings: Settings, row: ChannelInstance) -> ChannelAdapter:
    return adapter_class(row.kind)(row.config, secrets.decrypt(settings, row.credentials_encrypted))


def public_view(row: ChannelInstance) -> dict[str, Any]:
    """What the API and CLI may show: never the credentials."""
    return {
        "name": row.name,
        "kind": row.kind,
        "config": row.config,
        "enabled": row.enabled,
        "has_credentials": bool(row.credentials_encrypted),
        "credentials_rejected": row.credentials_rejected,
    }


def test_channel(uow: UnitOfWork, name: str, actor: str) -> tuple[bool, str]:
    row = get_channel(uow.session, name)
    try:
        ok, message = True, adapter_for(uow.ctx.settings, row).test_connection()
    except ChannelError as exc:
        ok, message = False, f"{exc.kind}: {redact_text(exc.message)}"
    audit.record(
        uow.session, actor=actor, action="channel.tested", subject_type="channel",
        subject_id=name, channel=name, after={"ok": ok, "message": message},
    )
    uow.commit()
    return ok, message


def set_paused(uow: UnitOfWork, name: str, paused: bool, actor: str) -> None:
    """A paused channel's deliveries wait (nothing is claimed) until it is resumed."""
    row = get_channel(uow.session, name)
    before = {"paused": row.paused}
    row.paused, row.updated_at = paused, utcnow()
    uow.session.add(row)
    audit.record(uow.session, actor=actor, action="channel.paused" if paused else "channel.resumed",
                 subject_type="channel", subject_id=name, channel=name, before=before,
                 after={"paused": paused})
    uow.commit()


HEALTH_WINDOW_DAYS = 7


def health(session: Session, row: ChannelInstance) -> dict[str, Any]:
    """Last success, and the share of failed attempts over the last week."""
    from sqlalchemy import func

    from orchestrator.store.models import Delivery, DeliveryAttempt

    last_ok = session.exec(select(func.max(Delivery.published_at))
                           .where(Delivery.channel == row.name)).one()
    since = utcnow() - dt.timedelta(days=HEALTH_WINDOW_DAYS)
    outcomes = session.exec(
        select(DeliveryAttempt.outcome, func.count())
        .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(Delivery.channel == row.name, DeliveryAttempt.started_at >= since)
        .group_by(DeliveryAttempt.outcome)).all()
    total = sum(n for _, n in outcomes)
    failed = sum(n for outcome, n in outcomes if outcome != "ok")
    return {**public_view(row), "last_success": last_ok, "attempts": total,
            "failure_rate": (failed / total) if total else None, "updated_at": row.updated_at}
