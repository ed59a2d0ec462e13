"""A channel admin's hands: re-send a failed delivery, decide one that needs a decision
(re-send it, or mark it published with its URL), cancel one."""

from __future__ import annotations

from channels.contract import MANUAL, Receipt
from orchestrator.domain.access import Op, may_ever
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound, Refused
from orchestrator.domain.release import MAX_ID, live_url_problems, note_problems
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import access, alerts, audit
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.delivery import claims, follow_up
from orchestrator.usecases.unit_of_work import UnitOfWork


def _delivery(uow: UnitOfWork, delivery_id: int, actor: str) -> tuple[Delivery, Release]:
    # an id no row can have is simply not found (a database would overflow on it)
    delivery = uow.session.get(Delivery, delivery_id) if 1 <= delivery_id <= MAX_ID else None
    who = access.principal(uow.session, actor)
    if not may_ever(who, Op.RESEND):
        raise Forbidden(f"{actor} needs the role channel_admin")
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    release = claims.locked(uow.session, Release, delivery.release_id)
    access.check(uow.session, actor, Op.RESEND, release)
    if delivery.revision != release.revision:
        raise Refused("this delivery belongs to an earlier revision of the release")
    return delivery, release


def resend(uow: UnitOfWork, delivery_id: int, actor: str) -> None:
    """New attempts for the same delivery, with a fresh retry budget; staged again first.

    For a delivery that needs a decision this is the admin's word that it did not go out."""
    delivery, release = _delivery(uow, delivery_id, actor)
    if delivery.state not in (D.FAILED, D.NEEDS_DECISION):
        raise Refused(f"only a failed delivery or one that needs a decision can be re-sent; "
                      f"this one is {delivery.state}")
    before = {"state": delivery.state, "attempts": delivery.attempts,
              "last_error_code": delivery.last_error_code}
    if release.state in (R.PARTIALLY_PUBLISHED, R.FAILED):
        release.state = release_transition(release.state, R.PUBLISHING)
        uow.session.add(release)
    claims.set_state(uow, delivery, D.PENDING)
    delivery.budget_from, delivery.next_attempt_at = delivery.attempts, None
    delivery.budget_since = utcnow()
    delivery.last_error_code = delivery.last_error = None
    alerts.clear(uow.session, alerts.NEEDS_DECISION, release.id, channel=delivery.channel)
    audit.record(uow.session, actor=actor, action="delivery.resend", subject_type="delivery",
                 subject_id=delivery.id, release_id=release.id, channel=delivery.channel,
                 before=before, after={"release_state": release.state})
    claims.send(uow, "stage", delivery)
    uow.commit()


def mark_published(uow: UnitOfWork, delivery_id: int, actor: str, url: str,
                   note: str = "") -> None:
    """The admin found the post on the platform: the delivery is published at `url`.

    Only for a delivery that needs a decision, where the machine could not tell; the URL
    is what readers will be pointed to, so it must be a plain https link on the channel's
    own platform; the adapter turns it into the platform's receipt where it can."""
    delivery, release = _delivery(uow, delivery_id, actor)
    problems = live_url_problems(url) + note_problems(note)
    if problems:
        raise InvalidInput(problems)
    adapter = adapter_for(uow.ctx.settings, get_channel(uow.session, delivery.channel))
    if problems := live_url_problems(url, adapter.web_hosts()):
        raise InvalidInput(problems)
    if delivery.state != D.NEEDS_DECISION:
        raise Refused(f"only a delivery that needs a decision can be marked published; "
                      f"this one is {delivery.state}")
    now = utcnow()
    try:  # the platform's own id for the post, so it is withdrawn and watched as any other
        receipt = adapter.receipt_for_url(url, now)
    except ValueError as exc:
        raise InvalidInput([("url", str(exc))]) from None
    if receipt is None:  # this kind cannot tell its post from a URL: withdrawn by hand
        receipt = Receipt(remote_id=f"{MANUAL}{delivery.id}", url=url, published_at=now)
    receipt.details.update({"marked_by": actor, **({"note": note} if note else {})})
    delivery.receipt = receipt.to_json()
    delivery.remote_id, delivery.url, delivery.published_at = receipt.remote_id, url, now
    claims.set_state(uow, delivery, D.PUBLISHED)
    alerts.clear(uow.session, alerts.NEEDS_DECISION, release.id, channel=delivery.channel)
    audit.record(uow.session, actor=actor, action="delivery.marked_published",
                 subject_type="delivery", subject_id=delivery.id, release_id=release.id,
                 channel=delivery.channel, before={"state": D.NEEDS_DECISION},
                 after={"state": D.PUBLISHED, "url": url, "remote_id": receipt.remote_id},
                 detail={"note": note} if note else None)
    uow.commit()
    follow_up.finish(uow.ctx, release.id)


def cancel(uow: UnitOfWork, delivery_id: int, actor: str, reason: str) -> None:
    """Give up on a delivery of a release already live: one that failed, or one that needs
    a decision and that the admin will not re-send nor mark published. A reason is required.

    Before go-live a channel admin drops no channel from a signed release: leaving one out
    is the approver's forced partial go-live (golive.force_go_live), so the release either
    goes live whole, is forced by an approver, or stays visibly held."""
    delivery, release = _delivery(uow, delivery_id, actor)
    if release.state not in (R.PUBLISHING, R.PARTIALLY_PUBLISHED, R.FAILED):
        raise Refused(f"release {release.id} has not gone live: only an approver may let it "
                      f"go live without {delivery.channel} (force go-live, with a reason)")
    if delivery.state not in (D.FAILED, D.NEEDS_DECISION):
        raise Refused(f"only a failed delivery or one that needs a decision can be cancelled; "
                      f"this one is {delivery.state}")
    if not reason.strip():
        raise InvalidInput([("reason", "say why this delivery is given up")])
    before = {"state": delivery.state, "attempts": delivery.attempts,
              "last_error_code": delivery.last_error_code}
    claims.set_state(uow, delivery, D.CANCELLED)
    alerts.clear(uow.session, alerts.NEEDS_DECISION, release.id, channel=delivery.channel)
    audit.record(uow.session, actor=actor, action="delivery.cancelled", subject_type="delivery",
                 subject_id=delivery.id, release_id=release.id, channel=delivery.channel,
                 before=before, after={"state": D.CANCELLED}, detail={"reason": reason})
    uow.commit()
    follow_up.finish(uow.ctx, release.id)
