"""Corrections (更正) and withdrawals (撤回) across channels, planned from each adapter's abilities.

A correction is a release of its own (`corrects: ID`), reviewed and signed like any
other; each channel's adapter carries it out its way: the website replaces the page at
the same address, Weibo (no edit) posts a correction that links the corrected page.
A correction of a correction replaces the same first page and item (see versions.py).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from channels.contract import MANUAL, ChannelAdapter, ChannelError, PermanentError, Receipt
from orchestrator.domain.access import Op
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.settings import Settings
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import access, audit
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.releases import get_release
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.usecases.versions import withdrawal_version


def plan(settings: Settings, session: Session, release: Release) -> list[dict[str, str]]:
    """How each target channel will carry out this correction."""
    steps = []
    for name in release.channels:
        adapter = adapter_for(settings, get_channel(session, name))
        how = ("replace the published item at the same address" if adapter.capabilities.can_update
               else "publish a correction notice that links the corrected item")
        steps.append({"channel": name, "kind": adapter.kind, "strategy": how})
    return steps


def withdraw(uow: UnitOfWork, release_id: int, actor: str, reason: str) -> int:
    """Take a published release down everywhere it went; returns how many channels."""
    s = uow.session
    get_release(s, release_id)  # NotFound, not a 500, for an id that does not exist
    release = claims.locked(s, Release, release_id)
    access.check(s, actor, Op.WITHDRAW, release)  # who first: a state is news only to readers
    if not reason.strip():
        raise InvalidInput([("reason", "a withdrawal needs a reason")])
    before = {"state": release.state}
    release.state = release_transition(release.state, R.WITHDRAWN)
    release.state_reason = reason
    s.add(release)
    live = [d for d in claims.current_deliveries(s, release) if d.state == D.PUBLISHED]
    for delivery in live:
        claims.send(uow, "withdraw", delivery)
    audit.record(s, actor=actor, action="release.withdrawn", subject_type="release",
                 subject_id=release.id, release_id=release.id, before=before,
                 after={"state": release.state, "channels": [d.channel for d in live]},
                 detail={"reason": reason})
    uow.commit()
    return len(live)


def withdraw_delivery(ctx: Context, delivery_id: int) -> None:
    """One channel's part of a withdrawal (idempotent: a second run finds it withdrawn)."""
    with UnitOfWork(ctx) as uow:
        delivery = uow.session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != D.PUBLISHED or not delivery.receipt:
            return
        adapter = adapter_for(ctx.settings, get_channel(uow.session, delivery.channel))
        receipt = Receipt.from_json(delivery.receipt)
        release = uow.session.get(Release, delivery.release_id)
        if release is not None:  # a channel that versions its items gives it this number
            receipt.details["withdraw_version"] = withdrawal_version(uow.session, release)
    out = claims.call_adapter(lambda: _withdraw(adapter, receipt))
    with UnitOfWork(ctx) as uow:
        delivery = claims.locked(uow.session, Delivery, delivery_id)
        if delivery.state != D.PUBLISHED:
            return
        claims.record_attempt(uow, delivery, "withdraw", out)
        if out.error is None:
            claims.set_state(uow, delivery, D.WITHDRAWN)
        elif isinstance(out.error, ChannelError) and out.error.retryable:
            claims.send(uow, "withdraw", delivery, countdown=5.0)
        else:
            delivery.last_error_code, delivery.last_error = out.error.code, out.error.message
            uow.session.add(delivery)
        uow.commit()


def _withdraw(adapter: ChannelAdapter, receipt: Receipt) -> None:
    """Ask the platform to take the post down; a post marked published by hand on a kind
    that cannot name it (no platform id) is never reported withdrawn: a person does it."""
    if receipt.remote_id.startswith(MANUAL):
        raise PermanentError(f"marked published by hand at {receipt.url}: the platform cannot "
                             f"be asked to take it down; remove it there by hand",
                             code="manual_receipt")
    adapter.withdraw(receipt)


def as_plan_view(settings: Settings, session: Session, release_id: int,
                 actor: str | None = None) -> dict[str, Any]:
    release = get_release(session, release_id)
    if actor is not None:
        access.check(session, actor, Op.READ, release)
    return {"release": release_id, "corrects": release.corrects_id,
            "plan": plan(settings, session, release)}
