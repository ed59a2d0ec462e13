"""One use case = one transaction; work for the broker is sent only after commit.

If sending fails after the commit, nothing is lost: the rows say what is owed and
the reaper re-drives it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from orchestrator.domain.clock import Clock, WallClock
from orchestrator.settings import Settings
from orchestrator.store.db import session as new_session

if TYPE_CHECKING:
    from orchestrator.usecases.delivery.adapters import AdapterPool

log = logging.getLogger(__name__)


class Queue(StrEnum):
    """The queues the broker carries work on; the workers serve them (tongfa worker -Q)."""

    URGENT = "urgent"  # an urgent release's work: a backlog of normal work never delays it
    NORMAL = "normal"
    INTEGRITY = "integrity"  # read-backs: they never wait behind, or delay, a publish


QUEUES: tuple[str, ...] = tuple(queue.value for queue in Queue)


def queue_for(priority: str) -> Queue:
    """The queue a piece of work of this priority goes on."""
    return Queue(priority) if priority in (Queue.URGENT, Queue.INTEGRITY) else Queue.NORMAL


class WorkQueue(Protocol):
    """Where use cases hand work to the workers (Celery, in workers/)."""

    def send(self, task: str, *, priority: str, countdown: float,
             **kwargs: int | list[int]) -> None: ...

    def processes(self, priority: str) -> int:
        """How many worker processes serve the queue of `priority` now (at least 1)."""
        ...


class NoQueue:
    """For entry points that must not enqueue (the reaper re-drives later)."""

    def send(self, task: str, *, priority: str, countdown: float,
             **kwargs: int | list[int]) -> None:
        log.info("not enqueued (no queue): %s %s", task, kwargs)

    def processes(self, priority: str) -> int:
        return 1


@dataclass
class Context:
    """What every use case needs: where the data is, where work goes, the settings."""

    engine: Engine
    settings: Settings
    queue: WorkQueue = field(default_factory=NoQueue)
    # where actions come from, e.g. {"via": "cli", "os_user": ...}: audit.record adds it
    # to every event's detail (empty for workers and the scheduler)
    origin: dict[str, str] = field(default_factory=dict)
    # the channels' adapters this process has built, carried from step to step
    adapters: AdapterPool = field(default_factory=lambda: _adapter_pool())
    # what a go-live waits for its instant on (tests give one that moves when slept on)
    clock: Clock = field(default_factory=WallClock)


def _adapter_pool() -> AdapterPool:
    from orchestrator.usecases.delivery.adapters import AdapterPool  # it builds on use cases

    return AdapterPool()


class UnitOfWork:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._outbox: list[tuple[str, str, float, dict[str, int | list[int]]]] = []

    def __enter__(self) -> UnitOfWork:
        self.session: Session = new_session(self.ctx.engine)
        if self.ctx.origin:
            self.session.info["origin"] = self.ctx.origin
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is not None:
            self.session.rollback()
        self.session.close()

    def enqueue(
        self, task: str, *, priority: str = "normal", countdown: float = 0.0,
        **kwargs: int | list[int],
    ) -> None:
        """Send `task(**kwargs)` to the workers once this transaction has committed."""
        self._outbox.append((task, priority, countdown, kwargs))

    def commit(self) -> None:
        self.session.commit()
        outbox, self._outbox = self._outbox, []
        for task, priority, countdown, kwargs in outbox:
            try:
                self.ctx.queue.send(task, priority=priority, countdown=countdown, **kwargs)
            except Exception:  # the reaper re-drives from the database
                log.exception("enqueue of %s %s failed after commit", task, kwargs)
