"""The state machines of a release and of a delivery: one transition table each.

Every state change in the product goes through `release_transition` or
`delivery_transition`; anything not in the table raises IllegalTransition.
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator.domain.errors import IllegalTransition


class ReleaseState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


R = ReleaseState
RELEASE_TRANSITIONS: dict[ReleaseState, frozenset[ReleaseState]] = {
    R.DRAFT: frozenset({R.IN_REVIEW, R.WITHDRAWN}),
    # in_review -> in_review: an edit during review voids the sign-offs so far
    R.IN_REVIEW: frozenset({R.IN_REVIEW, R.APPROVED, R.REJECTED, R.DRAFT, R.WITHDRAWN}),
    R.REJECTED: frozenset({R.DRAFT, R.WITHDRAWN}),
    # approved/scheduled -> in_review: an edit after sign-off sends it back to review
    R.APPROVED: frozenset({R.SCHEDULED, R.PUBLISHING, R.IN_REVIEW, R.WITHDRAWN}),
    R.SCHEDULED: frozenset({R.APPROVED, R.PUBLISHING, R.IN_REVIEW, R.WITHDRAWN}),
    R.PUBLISHING: frozenset({R.PUBLISHED, R.PARTIALLY_PUBLISHED, R.FAILED}),
    # a re-send of failed deliveries starts publishing again
    R.PARTIALLY_PUBLISHED: frozenset({R.PUBLISHING, R.WITHDRAWN}),
    R.FAILED: frozenset({R.PUBLISHING, R.WITHDRAWN}),
    R.PUBLISHED: frozenset({R.WITHDRAWN}),
    R.WITHDRAWN: frozenset(),
}
EDITABLE_RELEASE_STATES = frozenset({R.DRAFT, R.REJECTED, R.IN_REVIEW, R.APPROVED, R.SCHEDULED})


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting to be staged (or to retry staging)
    STAGING = "staging"  # claimed by a worker
    STAGED = "staged"  # ready; waits for the go-live instant
    PUBLISHING = "publishing"  # the publish call is under way
    CONFIRMING = "confirming"  # the platform accepted; it confirms asynchronously
    RECONCILING = "reconciling"  # outcome unknown: lookup decides before any re-send
    # the retry policy is spent and the channel still cannot say it went out: a channel
    # admin re-sends it or marks it published with its URL; nothing drives it meanwhile
    NEEDS_DECISION = "needs_decision"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


D = DeliveryState
DELIVERY_TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    D.PENDING: frozenset({D.STAGING, D.FAILED, D.CANCELLED}),
    D.STAGING: frozenset({D.STAGED, D.PENDING, D.FAILED}),
    D.STAGED: frozenset({D.PUBLISHING, D.PENDING, D.FAILED, D.CANCELLED}),
    D.PUBLISHING: frozenset({D.PUBLISHED, D.CONFIRMING, D.RECONCILING, D.STAGED, D.FAILED}),
    D.CONFIRMING: frozenset({D.PUBLISHED, D.FAILED, D.CONFIRMING}),
    D.RECONCILING: frozenset({D.PUBLISHED, D.STAGED, D.FAILED, D.RECONCILING,
                              D.NEEDS_DECISION}),
    D.NEEDS_DECISION: frozenset({D.PENDING, D.PUBLISHED, D.CANCELLED}),
    D.PUBLISHED: frozenset({D.WITHDRAWN}),
    D.FAILED: frozenset({D.PENDING, D.CANCELLED}),  # an admin's re-send starts over
    D.CANCELLED: frozenset(),
    D.WITHDRAWN: frozenset(),
}
TERMINAL_DELIVERY_STATES = frozenset({D.PUBLISHED, D.FAILED, D.CANCELLED, D.WITHDRAWN})


def release_transition(current: str, target: ReleaseState) -> ReleaseState:
    """Return target if the move is legal; raise IllegalTransition otherwise."""
    if target not in RELEASE_TRANSITIONS[ReleaseState(current)]:
        raise IllegalTransition("release", current, target)
    return target


def delivery_transition(current: str, target: DeliveryState) -> DeliveryState:
    if target not in DELIVERY_TRANSITIONS[DeliveryState(current)]:
        raise IllegalTransition("delivery", current, target)
    return target


# what the press office calls each release and delivery state
STATE_LABELS = {
    "draft": "草稿", "in_review": "审核中", "rejected": "已退回", "approved": "已签发",
    "scheduled": "已定时", "publishing": "发布中", "published": "已发布",
    "partially_published": "部分发布", "failed": "发布失败", "withdrawn": "已撤回",
    "pending": "待准备", "staging": "准备中", "staged": "已就绪", "confirming": "待平台确认",
    "reconciling": "核对中", "cancelled": "已取消", "needs_decision": "待人工决定",
}
