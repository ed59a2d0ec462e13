"""Held releases are never silent: which channel holds a release from going live, and why.

The go-live gate (delivery.gate.cleared_to_go_live) asks; the answer goes on the release (its
state reason, the board, the approver's queue) and into an alert. An approver may let
the other channels go live without the held ones (golive.force_go_live) or wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from orchestrator.domain.clock import iso
from orchestrator.domain.states import DeliveryState as D
from orchestrator.store.models import Release
from orchestrator.usecases import alerts
from orchestrator.usecases.channels import get_channel
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Hold:
    """One channel that keeps a release from going live, and why, said two ways."""

    channel: str
    delivery_id: int
    why: str  # the release's state reason
    message: str  # the alert, for the approver and the channel admins


def channel_holds(session: Session, release: Release) -> list[Hold]:
    """The channels of this release that cannot go live now: paused, credentials rejected,
    could not be staged, or failing to stage (retrying). Each holds the whole release
    until it clears or an approver lets the rest go live without it (force_go_live)."""
    holds = []
    for d in claims.current_deliveries(session, release):
        if d.state not in (D.PENDING, D.STAGING, D.STAGED, D.FAILED):
            continue
        channel = get_channel(session, d.channel)
        head = f"稿件 {release.id}「{release.title}」暂缓上线：渠道 {d.channel} "
        tail = "。可等待，或由领导签发人决定不等待该渠道、其余渠道立即上线（须填写理由）。"
        if channel.paused:
            why, says = f"{d.channel} is paused", "已被渠道管理员暂停"
        elif channel.credentials_rejected:
            why, says = (f"{d.channel}'s credentials were rejected",
                         "的凭据被平台拒绝，须渠道管理员重新授权")
        elif d.state == D.FAILED:
            why = f"{d.channel} could not be staged: {d.last_error or d.last_error_code}"
            says = f"准备失败（{d.last_error_code or '无代码'}），须渠道管理员重新发送"
        elif d.state == D.PENDING and d.last_error:
            why = f"{d.channel} is failing to stage, retrying: {d.last_error}"
            says = f"准备屡次失败（{d.last_error_code or '无代码'}），正在重试"
        else:
            continue
        holds.append(Hold(d.channel, d.id, why, head + says + tail))
    return holds


def speak_of_holds(uow: UnitOfWork, release: Release, holds: list[Hold]) -> bool:
    """Alert on each new hold (an urgent release at once, others after a grace period);
    close the alerts of holds that cleared. True when something holds the release."""
    changed = alerts.clear(uow.session, alerts.HELD, release.id, keep={h.channel for h in holds})
    for hold in holds:
        changed += alerts.raise_alert(uow, alerts.HELD, release, hold.message,
                                      channel=hold.channel, delivery_id=hold.delivery_id,
                                      at_once=False) is not None
    if changed:
        uow.commit()
    return bool(holds)


def held_releases(session: Session, actor: str) -> list[dict[str, Any]]:
    """The approver's queue of held releases: each one `actor` may let go live without the
    channels that hold it, with what holds it; urgent first, then oldest hold first."""
    from orchestrator.domain.access import Op
    from orchestrator.usecases import access

    who = access.principal(session, actor)
    found: dict[int, dict[str, Any]] = {}
    for alert in alerts.open_alerts(session, alerts.HELD):
        if alert.release_id not in found:
            release = session.get(Release, alert.release_id)
            if release is None or not access.allows(session, who, Op.FORCE, release):
                continue
            found[alert.release_id] = {"id": release.id, "title": release.title,
                                       "state": release.state, "priority": release.priority,
                                       "since": iso(alert.raised_at), "held_by": []}
        if alert.release_id in found:
            found[alert.release_id]["held_by"].append({"channel": alert.channel,
                                                       "message": alert.message})
    return sorted(found.values(), key=lambda r: (r["priority"] != "urgent", r["since"]))
