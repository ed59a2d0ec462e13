"""The tables. The database is the source of truth; the broker only carries ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from orchestrator.domain.clock import utcnow


def _json(default: Any = None) -> Any:
    factory = (lambda: type(default)()) if default is not None else None
    if factory:
        return Field(default_factory=factory, sa_type=JSON)
    return Field(default=None, sa_type=JSON)


# The root unit (the province office, or the one unit of a single-unit installation) is
# row 1, made by migration 0015; a row that names no unit belongs to it.
ROOT_UNIT_ID = 1


def _unit() -> Any:
    return Field(default=ROOT_UNIT_ID, foreign_key="unit.id", index=True,
                 sa_column_kwargs={"server_default": text(str(ROOT_UNIT_ID))})


class Unit(SQLModel, table=True):
    """An organisational unit (政府网站集约化): the province office at the root, departments
    and cities below it, counties below the cities. People, channels, review policies and
    releases belong to one."""

    __table_args__ = (
        # exactly one root, and it is row 1: every other unit has a parent
        CheckConstraint(f"(id = {ROOT_UNIT_ID}) = (parent_id IS NULL)", name="ck_unit_one_root"),
    )
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=32)
    name: str = Field(max_length=100)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    # the unit's review steps as JSON (domain/review.parse_policy); None: the installation's
    review_policy: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    unit_id: int = _unit()
    display_name: str = ""
    roles: list[str] = _json([])
    password_hash: str = ""  # argon2; empty = cannot sign in to the console
    created_at: dt.datetime = Field(default_factory=utcnow)
    disabled: bool = False  # cannot sign in, call the API or act; kept for the record
    session_generation: int = 0  # in every console cookie; bumped to end them all


class ApiToken(SQLModel, table=True):
    """Bearer tokens, stored only as SHA-256, named by their first characters."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(unique=True, max_length=16)  # e.g. tf_AbCd1234: names it, cannot use it
    label: str = Field(default="", max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None  # to the minute: not a write per request


class LoginFailure(SQLModel, table=True):
    """A failed console sign-in, kept for the throttle's window. In the database, so
    every API process (uvicorn --workers) counts the same failures."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_account_at", "account", "at"),
        Index("ix_login_failure_address_at", "address", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)  # the name as typed, lower-cased: unknown names count
    address: str = Field(max_length=64)
    at: dt.datetime = Field(index=True)


class ChannelInstance(SQLModel, table=True):
    """An adapter kind with its config and encrypted credentials (e.g. one Weibo account)."""

    __tablename__ = "channel_instance"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    unit_id: int = _unit()
    kind: str = Field(max_length=32)
    config: dict[str, Any] = _json({})
    credentials_encrypted: str = ""  # Fernet token; never leaves the store decrypted
    enabled: bool = True
    credentials_rejected: bool = False
    paused: bool = False  # an admin holds its deliveries
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ChannelQuota(SQLModel, table=True):
    """One token bucket per channel instance, shared by every worker process."""

    __tablename__ = "channel_quota"
    channel: str = Field(primary_key=True, max_length=64)
    tokens: float
    refilled_at: dt.datetime


class SchedulerLease(SQLModel, table=True):
    """Who is the one scheduler now; a second one started by mistake waits."""

    __tablename__ = "scheduler_lease"
    name: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=80)
    expires_at: dt.datetime


class GoLiveGroup(SQLModel, table=True):
    """A go-live group (政策解读同步): its owner, who consents to joiners, is fixed when the
    group is first named and never passes to another author (withdrawn or removed members
    included)."""

    __tablename__ = "golive_group"
    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)


class Release(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str
    body_source: str
    body_format: str = "markdown"
    body_html: str
    summary: str = ""
    meta: dict[str, Any] = _json({})
    site_column: str = "新闻发布"  # the website 栏目
    channels: list[str] = _json([])
    overrides: dict[str, Any] = _json({})
    images: list[dict[str, Any]] = _json([])
    attachments: list[dict[str, Any]] = _json([])
    priority: str = "normal"
    parent_id: int | None = Field(default=None, foreign_key="release.id")
    golive_group: str | None = Field(default=None, index=True, max_length=64)  # 政策解读同步
    # member | pending (waits for the group owner's consent) | refused; None without a group
    group_status: str | None = Field(default=None, max_length=16)
    corrects_id: int | None = Field(default=None, foreign_key="release.id")  # 更正
    go_live_at: dt.datetime | None = None
    unit_id: int = _unit()  # the author's unit when it was written; its channels are that unit's
    state: str = Field(default="draft", index=True, max_length=32)
    state_reason: str = ""
    author: str = Field(max_length=64)
    co_authors: list[str] = _json([])  # named by the owner: they may edit, submit, schedule
    contributors: list[str] = _json([])  # who created, edited, submitted or rescheduled: never signers
    revision: int = 1  # +1 on every edit; sign-offs and deliveries belong to one revision
    content_hash: str = ""  # of the current content, as submitted
    approved_hash: str | None = None  # what the sign-offs bound; the dispatcher checks it
    # a go-live move asked for after approval: nothing goes out until an approver signs it
    reschedule_by: str | None = Field(default=None, max_length=64)
    reschedule_to: dt.datetime | None = None  # None with reschedule_by set: as soon as ready
    held: bool = False  # go-live stopped; only a signed reschedule starts it again
    first_live_at: dt.datetime | None = None
    last_live_at: dt.datetime | None = None
    spread_ms: float | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


# one counting review signature per step of one content hash: two signers racing for the
# same step (or an approval racing a rejection) cannot both be stored
VALID_REVIEW_SIGNOFF = "NOT voided AND purpose = 'review'"


class SignOff(SQLModel, table=True):
    __tablename__ = "sign_off"
    __table_args__ = (
        Index("uq_sign_off_valid_step", "release_id", "step", "content_hash", unique=True,
              postgresql_where=text(VALID_REVIEW_SIGNOFF), sqlite_where=text(VALID_REVIEW_SIGNOFF)),
    )
    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    revision: int
    step: int
    role: str
    signer: str = Field(max_length=64)
    decision: str  # approve | reject
    purpose: str = Field(default="review", max_length=16)  # review | reschedule
    comment: str = ""
    content_hash: str
    voided: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """What must reach one channel instance for one revision of a release."""

    __table_args__ = (
        UniqueConstraint("release_id", "channel", "revision"),
        Index("ix_delivery_state_lease", "state", "lease_until"),
    )
    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    revision: int
    channel: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    state: str = Field(default="pending", max_length=32)
    idempotency_key: str = Field(max_length=80)
    payload: dict[str, Any] = _json({})
    staged: dict[str, Any] = _json({})
    receipt: dict[str, Any] | None = _json()
    remote_id: str | None = None
    url: str | None = None
    published_at: dt.datetime | None = None
    checked_at: dt.datetime | None = None  # last integrity check of what is live
    # the first of the integrity checks in a row that could not read what is live
    unreadable_since: dt.datetime | None = None
    attempts: int = 0
    # attempts the retry policy does not count (those before the last re-send, lookups,
    # waits for credentials): it counts attempts - budget_from
    budget_from: int = 0
    budget_since: dt.datetime | None = None  # the last re-send: max_age counts from here
    fence: int = 0  # +1 on every claim; a stale worker's write is refused
    lease_until: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    last_error_code: str | None = None
    last_error: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"
    __table_args__ = (Index("ix_attempt_outcome_id", "outcome", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    number: int
    phase: str  # stage | publish | confirm | lookup
    started_at: dt.datetime
    ended_at: dt.datetime
    duration_ms: float
    outcome: str  # ok | retryable | rate_limited | credentials_expired | permanent | ...
    error_code: str | None = None
    message: str | None = None  # redacted


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    # each filter an auditor uses, paired with id: "WHERE x = ? AND id > ? ORDER BY id LIMIT n"
    __table_args__ = (
        Index("ix_audit_release_at", "release_id", "at"),
        Index("ix_audit_release_id", "release_id", "id"),
        Index("ix_audit_channel_id", "channel", "id"),
        Index("ix_audit_actor_id", "actor", "id"),
        Index("ix_audit_action_id", "action", "id"),
        Index("ix_audit_event_seq", "seq", unique=True),
        # what the sequencer has yet to put in the log: small, whatever the log's size
        Index("ix_audit_unsequenced", "id", postgresql_where=text("seq IS NULL"),
              sqlite_where=text("seq IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    release_id: int | None = None
    channel: str | None = Field(default=None, max_length=64)
    before: dict[str, Any] | None = _json()
    after: dict[str, Any] | None = _json()
    detail: dict[str, Any] | None = _json()
    prev_hash: str = Field(default="", max_length=64)
    # before the transparency log: the hash chain (sha256(prev_hash + canonical(event)));
    # events since carry "" in both, their integrity is the Merkle tree's
    hash: str = Field(default="", max_length=64)
    seq: int | None = Field(default=None, sa_type=BigInteger)  # position in the log, once sequenced


class IntegrityAlert(SQLModel, table=True):
    """A published item that no longer shows what was approved (defaced, injected, removed)."""

    __tablename__ = "integrity_alert"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    release_id: int = Field(index=True)
    channel: str = Field(max_length=64)
    detected_at: dt.datetime = Field(default_factory=utcnow)
    diff: str  # unified diff, approved → found
    found_sha256: str = Field(max_length=64)
    resolved: bool = False


class Alert(SQLModel, table=True):
    """Something a person must hear about: a delivery that needs a decision, a release
    held by one of its channels. Raised in the transaction that found it; sent to the
    alert webhook once due (a held normal release waits a grace period, urgent never)."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_open_due", "cleared_at", "sent_at", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # needs_decision | held
    release_id: int = Field(index=True)
    delivery_id: int | None = None
    channel: str | None = Field(default=None, max_length=64)
    message: str
    raised_at: dt.datetime = Field(default_factory=utcnow)
    due_at: dt.datetime = Field(default_factory=utcnow)  # sent to the webhook from then on
    sent_at: dt.datetime | None = None
    cleared_at: dt.datetime | None = None  # what it said no longer holds (or was decided)


class AuditCheckpoint(SQLModel, table=True):
    """A signed tree head of the audit log (C2SP tlog-checkpoint note), as the log signed it.
    Also published outside the database (witness directory, website): these rows are the
    log's own copy, checked against those."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(sa_type=BigInteger, index=True)
    root_hash: str = Field(max_length=64)  # hex
    note: str
    at: dt.datetime = Field(default_factory=utcnow)


class AuditTreeNode(SQLModel, table=True):
    """A complete subtree of the audit log's Merkle tree: level 0 are the leaf hashes, a node
    at (level, idx) covers leaves [idx·2^level, (idx+1)·2^level). A proof reads O(log n)."""

    __tablename__ = "audit_tree_node"
    level: int = Field(sa_type=SmallInteger, primary_key=True)
    idx: int = Field(sa_type=BigInteger, primary_key=True)
    hash: bytes = Field(sa_type=LargeBinary)


class AuditTreeState(SQLModel, table=True):
    """The log's size and root, one row: the sequencer locks it, so one sequences at a time
    while appenders never wait on it."""

    __tablename__ = "audit_tree_state"
    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(default=0, sa_type=BigInteger)
    root_hash: str = Field(default="", max_length=64)
    updated_at: dt.datetime = Field(default_factory=utcnow)
