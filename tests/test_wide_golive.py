"""Wide go-live: a release split over worker processes, everything ready before the instant,
every share sent at that instant, exactly once (issue 14)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event
from sqlmodel import select

from orchestrator.domain import clock
from orchestrator.domain.clock import sleep_until
from orchestrator.store.models import Delivery, DeliveryAttempt, Release
from orchestrator.usecases import channels, scheduler
from orchestrator.usecases.delivery import firing, gate, instant
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import fakes
from tests.conftest import RecordingQueue, approve_all, drain


class MovingClock:
    """Moves the process's clock when slept on; notes what it saw before each sleep."""

    def __init__(self, look=None) -> None:  # type: ignore[no-untyped-def]
        self.slept: list[float] = []
        self.look = look
        self.seen: list[object] = []

    def now(self) -> dt.datetime:
        return clock.utcnow()

    def sleep(self, seconds: float) -> None:
        if self.look is not None:
            self.seen.append(self.look())
        self.slept.append(seconds)
        clock.travel(seconds)


def wide(ctx: Context, width: int, processes: int, share: int = 3,
         prefix: str = "m") -> tuple[Context, list[str]]:
    names = [f"{prefix}{i}" for i in range(width)]
    for name in names:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, "memory", {"account": name,
                                                         "retry": {"base_seconds": 0.0}},
                                  {"token": f"secret-token-{name}"}, "admin_ops")
    settings = ctx.settings.model_copy(update={"go_live_share": share})
    return Context(ctx.engine, settings, RecordingQueue(processes), clock=MovingClock()), names


def states(ctx: Context) -> dict[str, tuple[str, int]]:
    with UnitOfWork(ctx) as uow:
        return {d.channel: (d.state, d.fence) for d in uow.session.exec(select(Delivery))}


def posted(names: list[str]) -> int:
    return sum(len(fakes.posts(name)) for name in names)


def sent(queue: RecordingQueue, task: str) -> list[dict]:
    return [kwargs for name, kwargs in queue.sent if name == task]


@pytest.fixture
def wide_ctx(ctx, people):  # type: ignore[no-untyped-def]
    return ctx


def test_shares_are_dealt_one_per_process_and_never_smaller_than_asked():
    assert instant.deal(list(range(10)), 4, 3) == [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]
    assert instant.deal(list(range(10)), 4, 5) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert instant.deal(list(range(5)), 8, 25) == [[0, 1, 2, 3, 4]]  # one process does it all
    assert instant.deal([7], 1, 1) == [[7]]


def test_sleeping_until_an_instant_never_returns_before_it():
    class Early(MovingClock):
        def sleep(self, seconds: float) -> None:  # a sleep that ends early, as sleeps may
            super().sleep(seconds * 0.6)

    at = clock.utcnow() + dt.timedelta(seconds=2)
    early = Early()
    late = sleep_until(at, early)
    assert clock.utcnow() >= at and late >= 0 and len(early.slept) > 1


def test_a_wide_go_live_is_split_over_the_processes_claimed_and_ready_before_its_instant(
        wide_ctx):
    ctx, names = wide(wide_ctx, 9, processes=4)  # three shares: one process is left spare
    ctx.clock.look = lambda: (states(ctx), posted(names))  # type: ignore[attr-defined]
    rid = _approved(ctx, names)
    drain(ctx, limit=1)  # staging; the release is cleared and armed, in three shares
    shares = sent(ctx.queue, "fire_share")  # type: ignore[arg-type]
    assert len(shares) == 3 and len({s["at_ms"] for s in shares}) == 1
    assert sorted(i for s in shares for i in s["deliveries"]) == sorted(
        d.id for d in _deliveries(ctx))
    assert ctx.clock.slept == []  # type: ignore[attr-defined]
    # the scheduler's pass over the release meanwhile leaves its channels to their shares
    gate.hold_or_fire(ctx, rid)
    assert sent(ctx.queue, "publish") == []  # type: ignore[arg-type]
    drain(ctx)
    # the first share slept once, until the instant, with its claims already taken
    [(before, posts_before)] = ctx.clock.seen  # type: ignore[attr-defined]
    first = {d.channel for d in _deliveries(ctx) if d.id in shares[0]["deliveries"]}
    assert posts_before == 0
    assert {before[c][0] for c in first} == {"publishing"}
    assert {before[c][0] for c in set(names) - first} == {"staged"}
    assert posted(names) == 9 and all(len(fakes.posts(n)) == 1 for n in names)
    assert _release(ctx, rid).state == "published"


def test_a_release_gone_live_leaves_its_channels_to_the_go_live_not_to_tasks_of_their_own(
        wide_ctx, monkeypatch):
    """The scheduler's pass clears it first (a fire task is on its way); the staging worker's
    pass then finds it going live: neither sends a channel out on its own meanwhile."""
    from orchestrator.usecases.delivery import staging

    ctx, names = wide(wide_ctx, 6, processes=3)
    monkeypatch.setattr(staging, "hold_or_fire", lambda *args, **kwargs: False)
    rid = _approved(ctx, names)
    drain(ctx)  # staged; the staging worker's own pass comes late
    monkeypatch.undo()
    assert _release(ctx, rid).state == "approved"
    assert gate.hold_or_fire(ctx, rid)  # the scheduler's pass: live, a fire task sent
    assert not gate.hold_or_fire(ctx, rid, enqueue_fire=False)  # the staging worker's
    assert sent(ctx.queue, "publish") == []  # type: ignore[arg-type]
    drain(ctx)
    assert posted(names) == 6 and all(len(fakes.posts(n)) == 1 for n in names)
    assert _release(ctx, rid).state == "published"


def test_a_copy_of_a_share_sends_nothing_again(wide_ctx):
    ctx, names = wide(wide_ctx, 6, processes=3)  # two shares, one process spare
    rid = _approved(ctx, names)
    drain(ctx, limit=1)
    shares = sent(ctx.queue, "fire_share")  # type: ignore[arg-type]

    def again(share: dict) -> None:  # the broker delivers a share a second time
        instant.fire_share(ctx, share["deliveries"], share["at_ms"])

    copies: list[dict] = []

    def once() -> None:  # one copy arrives while the first share waits for the instant
        if not copies:
            copies.append(shares[0])
            again(shares[0])

    ctx.clock.look = once  # type: ignore[attr-defined]
    drain(ctx)
    assert copies and posted(names) == 6
    attempts = _attempts(ctx)
    for share in shares:  # and each once more, after the go-live
        again(share)
    assert posted(names) == 6 and _attempts(ctx) == attempts
    assert all(len(fakes.posts(n)) == 1 for n in names)
    assert _release(ctx, rid).state == "published"


def test_a_scheduled_release_is_armed_its_lead_ahead_and_nothing_goes_out_before_its_time(
        wide_ctx):
    ctx, names = wide(wide_ctx, 6, processes=2)
    lead = ctx.settings.go_live_lead_seconds
    at = (clock.utcnow() + dt.timedelta(minutes=10)).replace(microsecond=0)
    rid = _approved(ctx, names, go_live_at=at.isoformat())
    drain(ctx)
    assert _release(ctx, rid).state == "scheduled"
    waits = scheduler.seconds_to_next_go_live(ctx)
    assert waits is not None and abs(waits - ((at - clock.utcnow()).total_seconds() - lead)) < 1
    clock.travel((at - clock.utcnow()).total_seconds() - lead - 1)
    assert scheduler.tick(ctx)["fired"] == 0
    clock.travel(1.5)  # within the lead
    assert scheduler.tick(ctx)["fired"] == 1
    shares = sent(ctx.queue, "fire_share")  # type: ignore[arg-type]
    assert len(shares) == 2 and {s["at_ms"] for s in shares} == {round(at.timestamp() * 1000)}
    assert {d.next_attempt_at for d in _deliveries(ctx)} == {at}
    # a re-send or a re-drive before the instant finds nothing it may claim
    for delivery in _deliveries(ctx):
        firing.publish_one(ctx, delivery.id)
    assert scheduler.tick(ctx)["fired"] == 0 and posted(names) == 0
    ctx.clock.look = lambda: clock.utcnow()  # type: ignore[attr-defined]
    drain(ctx)
    assert ctx.clock.seen and ctx.clock.seen[0] < at <= clock.utcnow()  # type: ignore[attr-defined]
    assert posted(names) == 6 and _release(ctx, rid).state == "published"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_after_the_instant_a_share_costs_the_same_statements_however_wide(wide_ctx):
    """No row-by-row lock (or anything row by row) between the calls and the recording."""
    counts = []
    for width, prefix in ((3, "a"), (12, "b")):
        ctx, names = wide(wide_ctx, width, processes=1, share=100, prefix=prefix)
        at = (clock.utcnow() + dt.timedelta(minutes=10)).replace(microsecond=0)
        _approved(ctx, names, go_live_at=at.isoformat())
        drain(ctx)
        clock.travel((at - clock.utcnow()).total_seconds() - 1)
        assert scheduler.tick(ctx)["fired"] == 1
        statements = []
        after = [False]
        ctx.clock.look = lambda after=after: after.__setitem__(0, True)  # type: ignore[attr-defined]

        def count(conn, cursor, statement, *args, after=after, statements=statements):  # type: ignore[no-untyped-def]
            if after[0]:
                statements.append(statement.split()[0])

        event.listen(ctx.engine, "before_cursor_execute", count)
        try:
            drain(ctx)
        finally:
            event.remove(ctx.engine, "before_cursor_execute", count)
        assert posted(names) == width
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def _approved(ctx: Context, names: list[str], **changes) -> int:  # type: ignore[no-untyped-def]
    from orchestrator.usecases import releases
    from tests.conftest import release_input

    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=names, **changes), "press")
    approve_all(ctx, rid)
    return rid


def _deliveries(ctx: Context) -> list[Delivery]:
    with UnitOfWork(ctx) as uow:
        return list(uow.session.exec(select(Delivery).order_by(Delivery.id)))


def _release(ctx: Context, rid: int) -> Release:
    with UnitOfWork(ctx) as uow:
        found = uow.session.get(Release, rid)
        assert found is not None
        return found


def _attempts(ctx: Context) -> int:
    with UnitOfWork(ctx) as uow:
        return len(uow.session.exec(select(DeliveryAttempt)).all())
