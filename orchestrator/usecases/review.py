"""Sign-off and rejection (谁审查谁负责): each signature binds the exact content hash."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from orchestrator.domain.access import Op
from orchestrator.domain.clock import utcnow
from orchestrator.domain.errors import InvalidInput, Refused
from orchestrator.domain.review import (
    URGENT_POLICY,
    ReviewPolicy,
    Signature,
    excluded_signers,
    parse_policy,
)
from orchestrator.domain.states import ReleaseState, release_transition
from orchestrator.store.models import Release, SignOff
from orchestrator.usecases import access, audit
from orchestrator.usecases.delivery import claims, staging
from orchestrator.usecases.releases import get_release
from orchestrator.usecases.rendering import render_all
from orchestrator.usecases.unit_of_work import UnitOfWork


def policy_for(uow: UnitOfWork, release: Release) -> ReviewPolicy:
    """Urgent releases take the fast track; it is never self-approved either."""
    settings = uow.ctx.settings
    if release.priority == "urgent":
        return parse_policy(settings.urgent_review_policy, URGENT_POLICY)
    return parse_policy(settings.review_policy)


def signatures(session: Session, release: Release) -> list[Signature]:
    """The review signatures that count: this revision's, on the hash now under review."""
    rows = session.exec(
        select(SignOff).where(
            SignOff.release_id == release.id,
            SignOff.revision == release.revision,
            SignOff.content_hash == release.content_hash,
            SignOff.purpose == "review",
            SignOff.voided == False,  # noqa: E712
            SignOff.decision == "approve",
        )
    ).all()
    return [Signature(r.signer, r.step) for r in rows]


def excluded(release: Release) -> frozenset[str]:
    """Who may not sign this release in any role (four-eyes over every revision)."""
    return excluded_signers(release.author, release.co_authors, release.contributors)


def signable_step(uow: UnitOfWork, release: Release, actor: str) -> int:
    """The step `actor` may sign now, or Forbidden/NotFound with the reason."""
    who = access.check(uow.session, actor, Op.SIGN, release)
    return policy_for(uow, release).check_signer(
        actor, set(who.roles), excluded(release), signatures(uow.session, release))


def _prepare(uow: UnitOfWork, release_id: int, actor: str) -> tuple[Release, ReviewPolicy, int, str]:
    """Check who may sign now, and that the content is still what was submitted."""
    s = uow.session
    get_release(s, release_id)  # NotFound, not a 500, for an id that does not exist
    # locked until commit: a second signer of the same step (or a rejection) waits, then
    # sees this signature and the state it left
    release = claims.locked(s, Release, release_id)
    access.check(s, actor, Op.SIGN, release)  # who first: a state is news only to readers
    policy = policy_for(uow, release)
    step = signable_step(uow, release, actor)
    _, digest = render_all(uow.ctx.settings, s, release)
    if digest != release.content_hash:
        raise Refused("the content changed since it was submitted; submit it again to review it")
    return release, policy, step, digest


def _record(session: Session, signoff: SignOff) -> None:
    """Store a signature; the database keeps one per step of one hash (uq_sign_off_valid_step)
    should a signer ever get past the row lock."""
    try:
        with session.begin_nested():
            session.add(signoff)
    except IntegrityError:
        raise Refused(f"step {signoff.step + 1} was signed a moment ago by someone else; "
                      "look at the release again") from None


def approve(uow: UnitOfWork, release_id: int, actor: str, comment: str = "") -> str:
    """Sign the current step; the last signature approves and fans out. Returns the new state."""
    s = uow.session
    release, policy, step, digest = _prepare(uow, release_id, actor)
    _record(s, SignOff(release_id=release.id, revision=release.revision, step=step,
                       role=policy.steps[step].role, signer=actor, decision="approve",
                       comment=comment, content_hash=digest))
    audit.record(
        s, actor=actor, action="review.signed", subject_type="release", subject_id=release.id,
        release_id=release.id,
        after={"step": step + 1, "role": policy.steps[step].role, "content_hash": digest},
        detail={"comment": comment} if comment else None,
    )
    s.flush()
    if policy.current_step(signatures(s, release)) is None:
        _approve(uow, release, actor, digest)
    uow.commit()
    return release.state


def _approve(uow: UnitOfWork, release: Release, actor: str, digest: str) -> None:
    before = {"state": release.state}
    release.state = release_transition(release.state, ReleaseState.APPROVED)
    release.approved_hash = digest
    if release.go_live_at is not None and release.go_live_at > utcnow():
        release.state = release_transition(release.state, ReleaseState.SCHEDULED)
    release.updated_at = utcnow()
    uow.session.add(release)
    audit.record(
        uow.session, actor=actor, action="release.approved", subject_type="release",
        subject_id=release.id, release_id=release.id, before=before,
        after={"state": release.state, "approved_hash": digest},
    )
    staging.create_deliveries(uow, release)


def reject(uow: UnitOfWork, release_id: int, actor: str, comment: str) -> None:
    if not comment.strip():
        raise InvalidInput([("comment", "a rejection needs a reason")])
    s = uow.session
    release, policy, step, digest = _prepare(uow, release_id, actor)
    _record(s, SignOff(release_id=release.id, revision=release.revision, step=step,
                       role=policy.steps[step].role, signer=actor, decision="reject",
                       comment=comment, content_hash=digest))
    release.state = release_transition(release.state, ReleaseState.REJECTED)
    release.state_reason = comment
    s.add(release)
    audit.record(
        s, actor=actor, action="review.rejected", subject_type="release", subject_id=release.id,
        release_id=release.id, before={"state": ReleaseState.IN_REVIEW},
        after={"state": release.state, "step": step + 1}, detail={"comment": comment},
    )
    uow.commit()
