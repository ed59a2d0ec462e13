"""When releases may go live together, and what a release became once its channels are done.

Pure decisions on plain facts: the use cases (orchestrator.usecases.delivery) load the rows,
lock them and pass them in; nothing here reads a database or a clock of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.domain.states import TERMINAL_DELIVERY_STATES
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R


class GoLiveFacts(Protocol):
    """What the go-live decision reads of a release."""

    state: str
    held: bool
    reschedule_by: str | None
    golive_group: str | None
    group_status: str | None
    go_live_at: dt.datetime | None


class DeliveryFacts(Protocol):
    """What the release's outcome reads of one of its deliveries."""

    state: str
    last_error_code: str | None
    published_at: dt.datetime | None


def waiting_for(release: GoLiveFacts) -> str:
    """Why a release may not go live on its own account now ('' when nothing stops it)."""
    if release.held:
        return "held: an approver signs a new go-live time to release it"
    if release.reschedule_by is not None:
        return "a go-live move waits for an approver's signature"
    if release.group_status == "pending":
        return f"waiting for the owner of group {release.golive_group} to consent"
    if release.group_status == "refused":
        return f"the owner of group {release.golive_group} refused it: edit the group"
    if release.group_status == "removed":
        return f"the owner of group {release.golive_group} removed it: edit the group"
    return ""


def ready_to_go_live(members: Sequence[tuple[GoLiveFacts, Collection[str]]],
                     states: Collection[str], now: dt.datetime) -> bool:
    """Whether releases (each with its deliveries' states) may go live together now.

    Each must be in one of `states`, wait for nothing, and have every channel staged; and
    none goes out before its own signed time, so a group waits for its latest member.
    """
    for release, delivery_states in members:
        if release.state not in states or waiting_for(release) or not delivery_states:
            return False
        if any(state != D.STAGED for state in delivery_states):
            return False
        if release.go_live_at is not None and release.go_live_at > now:
            return False
    return True


@dataclass(frozen=True)
class Finished:
    """A release whose every channel is done: what it became, and when it was live."""

    state: R
    published: int
    channels: int
    first_live_at: dt.datetime | None = None
    last_live_at: dt.datetime | None = None

    @property
    def spread_ms(self) -> float | None:
        """From the first channel live to the last (None when none went live)."""
        if self.first_live_at is None or self.last_live_at is None:
            return None
        return round((self.last_live_at - self.first_live_at).total_seconds() * 1000, 3)


def counts_for_the_outcome(delivery: DeliveryFacts) -> bool:
    """A channel cancelled with its release does not count; one an approver left out of
    the go-live does (it was meant to go out and did not)."""
    return delivery.state != D.CANCELLED or delivery.last_error_code == "left_out"


def finished(deliveries: Sequence[DeliveryFacts]) -> Finished | None:
    """Published when every channel went live, partially published when some did, failed
    when none did; None while any channel is still on its way."""
    counted = [d for d in deliveries if counts_for_the_outcome(d)]
    if not all(d.state in TERMINAL_DELIVERY_STATES for d in counted):
        return None
    live = sorted(d.published_at for d in counted
                  if d.state == D.PUBLISHED and d.published_at is not None)
    state = (R.PUBLISHED if len(live) == len(counted)
             else R.PARTIALLY_PUBLISHED if live else R.FAILED)
    if not live:
        return Finished(state, 0, len(counted))
    return Finished(state, len(live), len(counted), live[0], live[-1])
