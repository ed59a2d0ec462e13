"""The go-live and outcome decisions on plain facts: no database, no clock of their own."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestrator.domain.publishing import finished, ready_to_go_live, waiting_for
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


@dataclass
class Rel:
    state: str = R.APPROVED
    held: bool = False
    reschedule_by: str | None = None
    golive_group: str | None = None
    group_status: str | None = None
    go_live_at: dt.datetime | None = None


@dataclass
class Del:
    state: str
    published_at: dt.datetime | None = None
    last_error_code: str | None = None


def at(ms: int) -> dt.datetime:
    return NOW + dt.timedelta(milliseconds=ms)


def test_a_release_with_every_channel_staged_is_ready() -> None:
    assert ready_to_go_live([(Rel(), [D.STAGED, D.STAGED])], (R.APPROVED,), NOW)


def test_one_channel_not_staged_holds_the_whole_group() -> None:
    staged, staging = (Rel(), [D.STAGED]), (Rel(), [D.STAGED, D.STAGING])
    assert not ready_to_go_live([staged, staging], (R.APPROVED,), NOW)


def test_a_release_without_deliveries_is_never_ready() -> None:
    assert not ready_to_go_live([(Rel(), [])], (R.APPROVED,), NOW)


def test_a_member_signed_for_later_makes_the_group_wait() -> None:
    later = (Rel(go_live_at=NOW + dt.timedelta(seconds=1)), [D.STAGED])
    assert not ready_to_go_live([(Rel(), [D.STAGED]), later], (R.APPROVED,), NOW)
    assert ready_to_go_live([(Rel(go_live_at=NOW), [D.STAGED])], (R.APPROVED,), NOW)


def test_a_member_in_another_state_or_waiting_is_not_ready() -> None:
    assert not ready_to_go_live([(Rel(state=R.SCHEDULED), [D.STAGED])], (R.APPROVED,), NOW)
    assert ready_to_go_live([(Rel(state=R.SCHEDULED), [D.STAGED])],
                            (R.SCHEDULED, R.APPROVED), NOW)
    assert not ready_to_go_live([(Rel(held=True), [D.STAGED])], (R.APPROVED,), NOW)


def test_why_a_release_waits_on_its_own_account() -> None:
    assert waiting_for(Rel()) == ""
    assert waiting_for(Rel(held=True)).startswith("held")
    assert "signature" in waiting_for(Rel(reschedule_by="leader"))
    assert "consent" in waiting_for(Rel(golive_group="g", group_status="pending"))
    assert "refused" in waiting_for(Rel(golive_group="g", group_status="refused"))
    assert "removed" in waiting_for(Rel(golive_group="g", group_status="removed"))
    assert waiting_for(Rel(golive_group="g", group_status="member")) == ""


def test_every_channel_live_is_published_with_its_spread() -> None:
    done = finished([Del(D.PUBLISHED, at(30)), Del(D.PUBLISHED, at(0))])
    assert done is not None and done.state == R.PUBLISHED
    assert (done.published, done.channels) == (2, 2)
    assert (done.first_live_at, done.last_live_at, done.spread_ms) == (at(0), at(30), 30.0)


def test_some_channels_live_is_partially_published() -> None:
    done = finished([Del(D.PUBLISHED, at(0)), Del(D.FAILED)])
    assert done is not None and done.state == R.PARTIALLY_PUBLISHED
    assert (done.published, done.channels) == (1, 2)


def test_no_channel_live_is_failed_with_no_spread() -> None:
    done = finished([Del(D.FAILED), Del(D.FAILED)])
    assert done is not None and done.state == R.FAILED
    assert done.spread_ms is None and done.first_live_at is None


def test_a_channel_still_on_its_way_settles_nothing() -> None:
    assert finished([Del(D.PUBLISHED, at(0)), Del(D.CONFIRMING)]) is None
    assert finished([Del(D.PUBLISHED, at(0)), Del(D.RECONCILING)]) is None
    assert finished([Del(D.PUBLISHED, at(0)), Del(D.NEEDS_DECISION)]) is None  # a person decides


def test_a_cancelled_channel_does_not_count_but_one_left_out_does() -> None:
    cancelled = finished([Del(D.PUBLISHED, at(0)), Del(D.CANCELLED)])
    assert cancelled is not None and cancelled.state == R.PUBLISHED and cancelled.channels == 1
    left_out = finished([Del(D.PUBLISHED, at(0)), Del(D.CANCELLED, last_error_code="left_out")])
    assert left_out is not None and left_out.state == R.PARTIALLY_PUBLISHED
