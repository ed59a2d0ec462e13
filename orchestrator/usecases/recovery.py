"""A channel admin's hands: re-send a failed delivery, cancel one, pause a channel."""

from __future__ import annotations

from orchestrator.domain.access import Op, may_ever
from orchestrator.domain.errors import Forbidden, NotFound, Refused
from orchestrator.domain.release import MAX_ID
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import access, audit, fanout
from orchestrator.usecases import delivery_steps as steps
from orchestrator.usecases.unit_of_work import UnitOfWork


def _delivery(uow: UnitOfWork, delivery_id: int, actor: str) -> tuple[Delivery, Release]:
    # an id no row can have is simply not found (a database would overflow on it)
    delivery = uow.session.get(Delivery, delivery_id) if 1 <= delivery_id <= MAX_ID else None
    who = access.principal(uow.session, actor)
    if not may_ever(who, Op.RESEND):
        raise Forbidden(f"{actor} needs the role channel_admin")
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    release = steps.locked(uow.session, Release, delivery.release_id)
    access.check(uow.session, actor, Op.RESEND, release)
    if delivery.revision != release.revision:
        raise Refused("this delivery belongs to an earlier revision of the release")
    return delivery, release


def resend(uow: UnitOfWork, delivery_id: int, actor: str) -> None:
    """New attempts for the same delivery, with a fresh retry budget; staged again first."""
    delivery, release = _delivery(uow, delivery_id, actor)
    if delivery.state != D.FAILED:
        raise Refused(f"only a failed delivery can be re-sent; this one is {delivery.state}")
    if release.state in (R.PARTIALLY_PUBLISHED, R.FAILED):
        release.state = release_transition(release.state, R.PUBLISHING)
        uow.session.add(release)
    steps.set_state(uow, delivery, D.PENDING)
    delivery.budget_from, delivery.next_attempt_at = delivery.attempts, None
    delivery.last_error_code = delivery.last_error = None
    audit.record(uow.session, actor=actor, action="delivery.resend", subject_type="delivery",
                 subject_id=delivery.id, release_id=release.id, channel=delivery.channel,
                 after={"release_state": release.state})
    steps.send(uow, "stage", delivery)
    uow.commit()


def cancel(uow: UnitOfWork, delivery_id: int, actor: str) -> None:
    delivery, release = _delivery(uow, delivery_id, actor)
    if delivery.state not in (D.FAILED, D.PENDING, D.STAGED):
        raise Refused(f"a delivery that is {delivery.state} cannot be cancelled")
    steps.set_state(uow, delivery, D.CANCELLED)
    audit.record(uow.session, actor=actor, action="delivery.cancelled", subject_type="delivery",
                 subject_id=delivery.id, release_id=release.id, channel=delivery.channel)
    uow.commit()
    fanout.finish(uow.ctx, release.id)
