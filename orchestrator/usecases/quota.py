"""Posting quotas per channel instance, held in the database so every worker shares them."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session, select

from orchestrator.domain.clock import utcnow
from orchestrator.domain.ratelimit import RateLimit
from orchestrator.store.models import ChannelQuota

QUOTA_LOCK = 7420003


def take(session: Session, channel: str, limit: RateLimit | None) -> float:
    """Take one post from the channel's bucket in the caller's transaction.

    Returns 0 when taken, else the seconds until one is free (nothing is taken).
    """
    if limit is None:
        return 0.0
    if session.get_bind().dialect.name == "postgresql":
        # a new channel's first row must not be created twice; rows are then locked one by one
        session.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(:c))"),
                        {"k": QUOTA_LOCK, "c": channel})
    now = utcnow()
    row = session.exec(select(ChannelQuota).where(ChannelQuota.channel == channel)
                       .with_for_update()).first()
    if row is None:
        row = ChannelQuota(channel=channel, tokens=limit.capacity, refilled_at=now)
    tokens = limit.refill(row.tokens, (now - row.refilled_at).total_seconds())
    wait = limit.wait_for_one(tokens)
    row.tokens, row.refilled_at = (tokens - 1 if wait == 0 else tokens), now
    session.add(row)
    session.flush()
    return wait


def give_back(session: Session, channel: str) -> None:
    """Return a token taken for a claim that did not happen (a duplicate task)."""
    row = session.exec(select(ChannelQuota).where(ChannelQuota.channel == channel)).first()
    if row is not None:
        row.tokens += 1
        session.add(row)
