"""The review gate (谁发布谁审查、谁审查谁负责): who may sign which step, and when it is done."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from orchestrator.domain.errors import Forbidden, InvalidInput

ROLES = ("author", "reviewer", "secrecy", "approver", "channel_admin", "auditor", "admin")


@dataclass(frozen=True)
class ReviewStep:
    role: str
    signatures: int = 1


@dataclass(frozen=True)
class Signature:
    """A valid (not voided) approval already given."""

    signer: str
    step: int


@dataclass(frozen=True)
class ReviewPolicy:
    steps: tuple[ReviewStep, ...]

    def current_step(self, signatures: list[Signature]) -> int | None:
        """Index of the first step still short of signatures; None when all are done."""
        for index, step in enumerate(self.steps):
            if sum(1 for s in signatures if s.step == index) < step.signatures:
                return index
        return None

    def check_signer(
        self, signer: str, roles: set[str], contributors: Collection[str],
        signatures: list[Signature],
    ) -> int:
        """The step this person signs now, or Forbidden with the reason.

        `contributors` are the release's authors and everyone who created, edited,
        submitted or rescheduled any revision of it (excluded_signers).
        """
        check_not_contributor(signer, contributors)
        if any(s.signer == signer for s in signatures):
            raise Forbidden(f"{signer} has already signed this release")
        step = self.current_step(signatures)
        if step is None:
            raise Forbidden("every review step is already signed")
        role = self.steps[step].role
        if role not in roles:
            raise Forbidden(f"step {step + 1} needs the role {role}; {signer} does not hold it")
        return step


def excluded_signers(author: str, co_authors: Iterable[str], contributors: Iterable[str]
                     ) -> frozenset[str]:
    """Who may never sign a release: its authors, and whoever wrote any revision of it."""
    return frozenset({author, *co_authors, *contributors})


def check_not_contributor(signer: str, contributors: Collection[str]) -> None:
    """Four-eyes (谁审查谁负责): no one signs what they wrote, edited, submitted or moved."""
    if signer in contributors:
        raise Forbidden(f"{signer} created, edited or submitted a revision of this release "
                        "and cannot sign it: the author cannot sign off their own release")


DEFAULT_POLICY = ReviewPolicy(
    (ReviewStep("reviewer"), ReviewStep("secrecy"), ReviewStep("approver"))
)


# 重大突发事件: fewer steps, but the confidentiality check and a leader's signature stay
URGENT_POLICY = ReviewPolicy((ReviewStep("secrecy"), ReviewStep("approver")))


def parse_policy(text: str | None, default: ReviewPolicy = DEFAULT_POLICY) -> ReviewPolicy:
    """A policy from JSON: [{"role": "reviewer", "signatures": 1}, ...]."""
    if not text:
        return default
    try:
        raw = json.loads(text)
        steps = tuple(ReviewStep(str(s["role"]), int(s.get("signatures", 1))) for s in raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput([("TONGFA_REVIEW_POLICY", f"not a list of steps: {exc}")]) from None
    for i, step in enumerate(steps):
        if step.role not in ROLES or step.signatures < 1:
            raise InvalidInput([(f"TONGFA_REVIEW_POLICY[{i}]", f"bad step {step}")])
    if not steps:
        raise InvalidInput([("TONGFA_REVIEW_POLICY", "needs at least one step")])
    return ReviewPolicy(steps)
