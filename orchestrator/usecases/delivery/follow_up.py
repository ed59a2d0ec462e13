"""After the go-live call: reconcile an outcome nobody knows, confirm an asynchronous
publish, and settle the release once every channel is done.

A look at the channel sends nothing, so it costs no attempt of the retry policy; until
the channel answers, nothing may be sent again.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from channels.contract import ChannelError, Receipt
from orchestrator.domain.clock import utcnow
from orchestrator.domain.publishing import finished
from orchestrator.domain.retry import RetryPolicy
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.domain.states import release_transition
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import audit
from orchestrator.usecases.channels import get_channel
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.delivery.claims import Claim
from orchestrator.usecases.unit_of_work import Context, UnitOfWork


def reconcile(ctx: Context, delivery_id: int) -> None:
    """Outcome unknown: ask the channel whether it went out before sending anything again."""
    claim = _claim_a_look(ctx, delivery_id, D.RECONCILING)
    if claim is None:
        return
    out = claims.call_adapter(
        lambda: claim.adapter.lookup(claim.payload, claim.key, staged=claim.staged))
    with UnitOfWork(ctx) as uow:
        delivery = claims.fenced(uow, delivery_id, claim.fence)
        if delivery is None:
            return
        claims.record_attempt(uow, delivery, "lookup", out)
        if out.error is not None:
            policy = _no_answer(uow, delivery, out.error, "reconcile")
            if policy is not None and claims.budget_age(delivery) >= policy.max_age_seconds:
                # past the policy's max_age a person decides rather than a loop asking for ever
                delivery.last_error_code, delivery.last_error = out.error.code, out.error.message
                claims.ask_a_person(uow, delivery, "the channel could not say whether it "
                                    f"went out within max_age ({policy.max_age_seconds:g} s)",
                                    f"平台在 {policy.max_age_seconds:g} 秒内始终无法答复是否已发出")
            elif policy is not None:
                _look_again_later(uow, delivery, policy, "reconcile")
        elif out.value is not None:
            _went_live(uow, delivery, out.value)
        else:  # it never went out: publish again within the policy
            claims.not_sent_yet(uow, delivery)
        uow.commit()
    finish(ctx, claim.release_id)


def confirm(ctx: Context, delivery_id: int) -> None:
    """Async channels: ask whether the platform has finished publishing."""
    claim = _claim_a_look(ctx, delivery_id, D.CONFIRMING)
    if claim is None:
        return
    receipt = Receipt.from_json(claim.receipt or {})
    out = claims.call_adapter(lambda: claim.adapter.confirm(receipt))
    with UnitOfWork(ctx) as uow:
        delivery = claims.fenced(uow, delivery_id, claim.fence)
        if delivery is None:
            return
        claims.record_attempt(uow, delivery, "confirm", out)
        if out.error is not None:
            policy = _no_answer(uow, delivery, out.error, "confirm")
            if policy is not None:
                _look_again_later(uow, delivery, policy, "confirm")
        elif out.value is not None:
            _went_live(uow, delivery, out.value)
        else:  # still publishing on the platform's side
            delivery.lease_until = None
            delivery.next_attempt_at = utcnow() + timedelta(seconds=1)
            claims.send(uow, "confirm", delivery, countdown=1.0)
        uow.commit()
    finish(ctx, claim.release_id)


def platform_says_done(uow: UnitOfWork, channel: str, remote_id: str) -> bool:
    """The platform announced (e.g. WeChat's PUBLISHJOBFINISH) that a publish job ended:
    ask it now instead of at the next poll. False when no delivery waits on that job."""
    delivery = uow.session.exec(select(Delivery).where(
        Delivery.channel == channel, Delivery.remote_id == remote_id,
        Delivery.state == D.CONFIRMING)).first()
    if delivery is None:
        return False
    delivery.next_attempt_at = None
    uow.session.add(delivery)
    claims.send(uow, "confirm", delivery)
    uow.commit()
    return True


def _claim_a_look(ctx: Context, delivery_id: int, state: D) -> Claim | None:
    with UnitOfWork(ctx) as uow:
        delivery = claims.claim(uow, delivery_id, (state,), state)
        if delivery is None:
            return None
        delivery.budget_from += 1  # a look sends nothing: it costs no attempt of the policy
        uow.session.add(delivery)
        claim = claims.as_claim(uow, delivery)
        uow.commit()
        return claim


def _no_answer(uow: UnitOfWork, delivery: Delivery, err: ChannelError, task: str
               ) -> RetryPolicy | None:
    """The channel did not answer the look: the policy to look again by, or None when
    that is settled here (credentials to wait for, a refusal, a person asked)."""
    delivery.lease_until = None
    if err.kind == "credentials_expired":  # wait for the admin, as publish does
        claims.flag_credentials(uow, get_channel(uow.session, delivery.channel))
        claims.send(uow, task, delivery)
        return None
    if err.retryable or err.kind == "outcome_unknown":
        return claims.policy_or_ask(uow, delivery)  # None: a person is asked
    claims.set_state(uow, delivery, D.FAILED, error=(err.code, err.message))
    return None


def _look_again_later(uow: UnitOfWork, delivery: Delivery, policy: RetryPolicy, task: str
                      ) -> None:
    """Looks cost no attempt, but each waits longer (up to the policy's cap)."""
    delay = policy.delay(delivery.attempts)
    delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    claims.send(uow, task, delivery, delay)


def _went_live(uow: UnitOfWork, delivery: Delivery, receipt: Receipt) -> None:
    delivery.receipt = receipt.to_json()
    delivery.remote_id, delivery.url = receipt.remote_id, receipt.url
    # an async platform went live at the accepted go-live call; confirming came later
    delivery.published_at = delivery.published_at or receipt.published_at
    claims.set_state(uow, delivery, D.PUBLISHED)


def finish(ctx: Context, release_id: int) -> None:
    """When every channel is done, the release is published, partially published or failed."""
    with UnitOfWork(ctx) as uow:
        release = claims.locked(uow.session, Release, release_id)
        if release.state != R.PUBLISHING:
            return
        done = finished(claims.current_deliveries(uow.session, release))
        if done is None:
            return
        release.state = release_transition(release.state, done.state)
        if done.published:
            release.first_live_at, release.last_live_at = done.first_live_at, done.last_live_at
            release.spread_ms = done.spread_ms
        uow.session.add(release)
        audit.record(
            uow.session, actor=claims.WORKER, action="release.finished", subject_type="release",
            subject_id=release.id, release_id=release.id, before={"state": R.PUBLISHING},
            after={"state": done.state, "spread_ms": release.spread_ms,
                   "published": done.published, "channels": done.channels},
        )
        uow.commit()
