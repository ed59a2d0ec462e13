"""Deliberately broken builds, to prove that the chaos instrument can see what they do.

Loaded into a real `celery worker` only by the rig (`--include tests.broken_builds`),
and only acting when TONGFA_TEST_BROKEN_BUILD names a build; production code has no
switch for any of this. It patches the worker's modules as the worker starts, before
its pool forks, so every pool process runs the broken code:

    lookup_not_sent      every adapter's lookup() answers "not sent", so an outcome
                         that was unknown is always published again
    claim_without_fence  a publish claim takes the delivery whatever its state and
                         lease (no compare-and-set): a redelivered task publishes again
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

BUILD = os.environ.get("TONGFA_TEST_BROKEN_BUILD", "")


def lookup_not_sent() -> None:
    from channels import registry

    for kind in registry.kinds():
        registry.adapter_class(kind).lookup = lambda self, payload, key, staged=None: None


def claim_without_fence() -> None:
    from sqlalchemy import update

    from orchestrator.domain.clock import utcnow
    from orchestrator.domain.states import DeliveryState as D
    from orchestrator.store.models import Delivery
    from orchestrator.usecases.delivery import claims

    right = claims.claim

    def claim(uow: Any, delivery_id: int, from_states: Any, to: Any) -> Any:
        if to != D.PUBLISHING:
            return right(uow, delivery_id, from_states, to)
        now = utcnow()
        uow.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
            state=to, fence=Delivery.fence + 1, attempts=Delivery.attempts + 1,
            lease_until=now + timedelta(seconds=uow.ctx.settings.lease_seconds),
            next_attempt_at=None, updated_at=now))
        return uow.session.get(Delivery, delivery_id, populate_existing=True)

    claims.claim = claim


BUILDS = {"lookup_not_sent": lookup_not_sent, "claim_without_fence": claim_without_fence}

if BUILD:
    BUILDS[BUILD]()
