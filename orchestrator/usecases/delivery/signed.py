"""Never send anything but what was signed off: the check before every stage and publish."""

from __future__ import annotations

from orchestrator.domain.hashing import canonical_json, content_hash
from orchestrator.domain.states import DeliveryState as D
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import audit
from orchestrator.usecases.delivery.claims import (
    WORKER,
    adapter,
    current_deliveries,
    set_state,
)
from orchestrator.usecases.rendering import hashed_fields, release_view
from orchestrator.usecases.unit_of_work import UnitOfWork


def signed_intact(uow: UnitOfWork, release: Release) -> bool:
    """The stored payloads and release fields still hash to what the sign-offs bound."""
    stored = {d.channel: d.payload for d in current_deliveries(uow.session, release)}
    return content_hash(hashed_fields(release), stored) == release.approved_hash


def intact(uow: UnitOfWork, release: Release, delivery: Delivery, signed: bool) -> bool:
    """Never send anything but what was signed off.

    The payload must be the signed one, and rendering it again today (templates, channel
    config) must give the same bytes: a template altered on disk is caught here too.
    """
    if not signed:
        return False
    fresh = adapter(uow, delivery).render(release_view(uow.ctx.settings, release, delivery.channel))
    return canonical_json(fresh) == canonical_json(delivery.payload)


def refuse_tampered(uow: UnitOfWork, release: Release, delivery: Delivery) -> None:
    set_state(uow, delivery, D.FAILED, error=("content_hash_mismatch",
               "content differs from what was signed off; nothing was sent"))
    audit.record(
        uow.session, actor=WORKER, action="delivery.refused", subject_type="delivery",
        subject_id=delivery.id, release_id=release.id, channel=delivery.channel,
        detail={"reason": "content_hash_mismatch", "approved_hash": release.approved_hash},
    )
