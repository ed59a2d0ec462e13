"""Channel instances: an adapter kind + config + encrypted credentials."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from channels import outbound
from channels.contract import (
    ChannelAdapter,
    ChannelError,
    InvalidConfig,
    Problem,
    config_value,
    endpoint_host,
)
from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ratelimit import RateLimit
from orchestrator.domain.redaction import MASK, without_url_passwords
from orchestrator.domain.retry import RetryPolicy
from orchestrator.settings import Settings
from orchestrator.store import secrets
from orchestrator.store.models import ChannelInstance
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork

ROUTE_CHANGED = "此项决定凭据发往何处、交给谁，已更改：请重新填写凭据（已存的凭据不会发往新的目标）"


def _kind(kind: str) -> type[ChannelAdapter]:
    try:
        return adapter_class(kind)
    except UnknownKind as exc:
        raise InvalidInput([("kind", str(exc))]) from None


def posting_quota(channel: ChannelInstance, cls: type[ChannelAdapter] | None = None
                  ) -> RateLimit | None:
    """The instance's `config.rate`, else its kind's default (of class `cls` when the caller
    looked it up); `"rate": null` turns it off. InvalidConfig (this channel only) if the
    stored value does not parse."""
    if "rate" in channel.config:
        return _stored(channel, "rate", RateLimit.from_config)
    try:
        return RateLimit.from_config((cls or adapter_class(channel.kind)).default_rate)
    except UnknownKind:
        return None


def retry_policy(channel: ChannelInstance) -> RetryPolicy:
    """The instance's `config.retry` (defaults for what it leaves out); InvalidConfig (this
    channel only) if the stored value does not parse, e.g. edited in the database."""
    return _stored(channel, "retry", RetryPolicy.from_config)


def _stored(channel: ChannelInstance, key: str, parse: Callable[[Any], Any]) -> Any:
    try:
        return parse(channel.config.get(key))
    except InvalidInput as exc:
        raise InvalidConfig([Problem(_field(key, field), message)
                             for field, message in exc.problems]) from None


def _field(key: str, field: str) -> str:
    return f"{key}.{field}" if field else key


def policy_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """`config.retry` and `config.rate` as the one RetryPolicy and RateLimit read them."""
    found = []
    for key, parse in (("retry", RetryPolicy.from_config), ("rate", RateLimit.from_config)):
        try:
            parse(config.get(key))
        except InvalidInput as exc:
            found += [(f"config.{_field(key, field)}", message) for field, message in exc.problems]
    return found


def _checked(cls: type[ChannelAdapter], config: dict[str, Any], credentials: dict[str, Any]
             ) -> None:
    """InvalidInput naming each field the config and credentials schemas refuse."""
    problems = []
    for part, model, value in (("config", cls.config_model, config),
                               ("credentials", cls.credentials_model, credentials)):
        try:
            if model is not None:
                model.model_validate(value)
        except ValidationError as exc:
            problems += [(".".join([part, *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
    if problems:
        raise InvalidInput(problems)


def _adapter(cls: type[ChannelAdapter], config: dict[str, Any], credentials: dict[str, Any]
             ) -> ChannelAdapter:
    """The adapter this (checked) input makes, or InvalidInput naming each bad field."""
    try:
        return cls(config, credentials)
    except InvalidConfig as exc:
        raise InvalidInput([(f"config.{p.field}", p.message) for p in exc.problems]) from None


def _effective(cls: type[ChannelAdapter], config: dict[str, Any]) -> dict[str, Any]:
    """The config with its defaults filled in (as given, if it does not validate)."""
    try:
        return cls.config_model.model_validate(config).model_dump()
    except ValidationError:
        return config


def credential_route(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Where a channel's credentials go and whom they are entrusted to, key by key
    (endpoints, then user names, pinned keys, TLS, account ids), defaults filled in.
    Changing any of it needs the credentials typed in again (save_channel)."""
    cls = _kind(kind)
    effective = _effective(cls, config)
    return {key: config_value(effective, key)
            for key in dict.fromkeys((*cls.endpoints, *cls.transport))}


def _moved_route(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The route's keys that change, and any key whose URL with a password in it does:
    a new password (or a new place for the old one) is a credential of its own."""
    before, after = credential_route(kind, old), credential_route(kind, new)
    moved = [key for key in after if before[key] != after[key]]
    return moved + [key for key in dict.fromkeys((*old, *new)) if key not in moved
                    and old.get(key) != new.get(key)
                    and (_has_password(old.get(key)) or _has_password(new.get(key)))]


def _has_password(value: Any) -> bool:
    return without_url_passwords(value) != value


def shown_config(config: dict[str, Any]) -> dict[str, Any]:
    """A channel's config as any view or audit row may show it: a password inside a URL
    (http://u:pw@host, a redis://:pw@host token store) masked; credentials belong in the
    encrypted credentials, never here."""
    return without_url_passwords(config)


def _unmasked(old: Any, new: Any) -> Any:
    """The new config with each masked URL password that was sent back as shown (an edit
    form) put back from the stored config, where the URL is otherwise the same."""
    if isinstance(new, dict):
        was = old if isinstance(old, dict) else {}
        return {k: _unmasked(was.get(k), v) for k, v in new.items()}
    if isinstance(new, list):
        was = old if isinstance(old, list) and len(old) == len(new) else [None] * len(new)
        return [_unmasked(o, v) for o, v in zip(was, new, strict=True)]
    if isinstance(new, str) and isinstance(old, str) and MASK in new \
            and _has_password(old) and without_url_passwords(old) == new:
        return old
    return new


def _place_problems(settings: Settings, cls: type[ChannelAdapter],
                    config: dict[str, Any]) -> list[tuple[str, str]]:
    """Where the channel would connect, write and read, checked against this deployment's
    rules before anything is made of the config (an adapter may create its directories)."""
    found = []
    sandbox = bool(_effective(cls, config).get("sandbox"))
    allowed = outbound.Allowed.of(settings.outbound_allow) + (
        outbound.SANDBOX if sandbox else outbound.NOTHING)
    for key in cls.endpoints:
        value = config_value(config, key)
        host = endpoint_host(value)
        if host and not (key in cls.private_files and "://" not in str(value)):
            try:
                outbound.check(host, None, allowed)
            except outbound.OutboundRefused as exc:
                found.append((f"config.{key}", exc.reason))
    for key, reason in file_problems(settings, cls, config):
        found.append((f"config.{key}", reason))
    roots = settings.allowed_web_roots
    for key in cls.directories:
        value = config_value(config, key)
        if isinstance(value, str) and not within(Path(value), roots):
            found.append((f"config.{key}", "目录须位于允许的网站目录之下（TONGFA_WEB_ROOTS）："
                          + "、".join(map(str, roots))))
    return found


def file_problems(settings: Settings, cls: type[ChannelAdapter],
                  config: dict[str, Any]) -> list[tuple[str, str]]:
    """The config keys naming a file or directory outside the private roots. "" is the
    adapter's default; a URL (a redis:// token store) is an address, checked as an endpoint."""
    roots = settings.allowed_private_roots
    found = []
    for key in cls.private_files:
        value = config_value(config, key)
        if value in (None, "") or (isinstance(value, str) and key in cls.endpoints
                                   and value.split("://", 1)[0] in ("redis", "rediss")):
            continue
        if not isinstance(value, str) or not within(Path(value), roots):
            found.append((key, "文件须位于允许的私有目录之下（TONGFA_PRIVATE_ROOTS）："
                          + "、".join(map(str, roots))))
    return found


def within(path: Path, roots: tuple[Path, ...]) -> bool:
    """`path`, with `..` and every symlink resolved, is one of `roots` or lies under one."""
    try:
        real = path.expanduser().resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop: not a place
        return False
    return any(real.is_relative_to(root) for root in roots)


def save_channel(
    uow: UnitOfWork,
    name: str,
    kind: str,
    config: dict[str, Any],
    credentials: dict[str, Any] | None,
    actor: str,
) -> ChannelInstance:
    """Add or replace a channel instance; credentials=None keeps the stored ones, unless a
    key of the credential route changes: then they must be given again, so none go where,
    or to whom, their owner did not say."""
    s = uow.session
    settings = uow.ctx.settings
    row = s.exec(select(ChannelInstance).where(ChannelInstance.name == name)).first()
    if row is not None and row.kind != kind:
        raise InvalidInput([("kind", f"已有渠道的类型不能更改（现为 {row.kind}）；请新建一个渠道")])
    cls = _kind(kind)
    if row is not None:
        config = _unmasked(row.config, config)
    if row is not None and credentials is None:
        moved = _moved_route(kind, row.config, config)
        if moved:
            raise InvalidInput([(f"config.{key}", ROUTE_CHANGED) for key in moved])
    old_creds = secrets.decrypt(settings, row.credentials_encrypted) if row else {}
    creds = old_creds if credentials is None else credentials
    _checked(cls, config, creds)
    problems = policy_problems(config) + _place_problems(settings, cls, config)
    if problems:
        raise InvalidInput(problems)
    _adapter(cls, config, creds)
    before = {"kind": row.kind, "config": shown_config(row.config)} if row else None
    row = row or ChannelInstance(name=name, kind=kind)
    row.kind, row.config, row.updated_at = kind, config, utcnow()
    row.credentials_encrypted = secrets.encrypt(settings, creds)
    row.credentials_rejected = False
    s.add(row)
    audit.record(
        s, actor=actor, action="channel.saved", subject_type="channel", subject_id=name,
        channel=name, before=before,
        after={"kind": kind, "config": shown_config(config), "credentials_changed": credentials is not None},
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


def adapter_for(settings: Settings, row: ChannelInstance,
                cls: type[ChannelAdapter] | None = None) -> ChannelAdapter:
    """The adapter of a stored channel (of class `cls` when the caller looked it up);
    InvalidConfig (nothing read) if it names a file outside the private roots, e.g. stored
    before that rule or changed in the database. Deliveries use warm ones (delivery.adapters)."""
    cls = cls or adapter_class(row.kind)
    outside = file_problems(settings, cls, row.config)
    if outside:
        raise InvalidConfig([Problem(key, reason) for key, reason in outside])
    adapter = cls(row.config, secrets.decrypt(settings, row.credentials_encrypted))
    adapter.allow_outbound(outbound.Allowed.of(settings.outbound_allow))
    return adapter


def callback_token(settings: Settings, row: ChannelInstance) -> str:
    """The secret a channel's platform signs its event callbacks with ("" if none)."""
    if row.kind != "wechat":
        return ""
    return str(secrets.decrypt(settings, row.credentials_encrypted).get("callback_token") or "")


def public_view(row: ChannelInstance) -> dict[str, Any]:
    """What the API and CLI may show: never the credentials."""
    return {
        "name": row.name,
        "kind": row.kind,
        "config": shown_config(row.config),
        "enabled": row.enabled,
        "has_credentials": bool(row.credentials_encrypted),
        "credentials_rejected": row.credentials_rejected,
    }


def test_channel(uow: UnitOfWork, name: str, actor: str) -> tuple[bool, str]:
    row = get_channel(uow.session, name)
    try:
        ok, message = True, adapter_for(uow.ctx.settings, row).test_connection()
    except ChannelError as exc:
        ok, message = False, test_failure(exc)
    audit.record(
        uow.session, actor=actor, action="channel.tested", subject_type="channel",
        subject_id=name, channel=name, after={"ok": ok, "message": message},
    )
    uow.commit()
    return ok, message


TEST_FAILED = {
    "credentials_expired": "凭据被拒绝，请核对后重新填写",
    "rate_limited": "渠道限流，请稍后再试",
    "retryable": "暂时连接不上，请稍后再试",
    "outcome_unknown": "没有得到答复",
    "config": "配置不符合规则",
    "permanent": "对方拒绝了请求",
}
SAFE_CODE = re.compile(r"[\w.:-]{1,40}")


def test_failure(exc: ChannelError) -> str:
    """A fixed sentence per outcome and the status or platform code: never what the remote
    side wrote, which could carry markup, a phishing link or an echoed secret."""
    text = TEST_FAILED.get(exc.kind, "连接测试失败")
    code = exc.code if exc.code and SAFE_CODE.fullmatch(exc.code) else "无"
    return f"{text}（{exc.kind}，代码 {code}）"


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
