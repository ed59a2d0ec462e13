"""The WorkQueue the use cases send to, implemented on Celery."""

from __future__ import annotations

import logging
import threading
import time

from orchestrator.settings import Settings
from orchestrator.usecases.unit_of_work import queue_for
from orchestrator.usecases.work import TASKS
from workers.celery_app import app_for

log = logging.getLogger(__name__)
LOOK_EVERY = 60.0  # seconds between two looks at which workers run
LOOK_TIMEOUT = 0.25  # how long a look waits for the workers' answers


class CeleryQueue:
    def __init__(self, settings: Settings) -> None:
        self.app = app_for(settings)
        self._lock = threading.Lock()
        self._looked_at = -LOOK_EVERY
        self._serving: dict[str, int] = {}

    def send(self, task: str, *, priority: str, countdown: float = 0.0,
             **kwargs: int | list[int]) -> None:
        if task not in TASKS:  # a name no worker serves would be lost silently
            raise ValueError(f"no such task {task!r}: add it to orchestrator.usecases.work")
        self.app.send_task(f"tongfa.{task}", kwargs=kwargs, queue=queue_for(priority).value,
                           countdown=countdown or None)

    def processes(self, priority: str) -> int:
        """The pool processes of the workers consuming the queue, asked of the workers
        themselves (at most once a minute); 1 when none answers."""
        with self._lock:
            if time.monotonic() - self._looked_at >= LOOK_EVERY:
                self._serving = self._look()
                self._looked_at = time.monotonic()
            return max(1, self._serving.get(queue_for(priority).value, 0))

    def _look(self) -> dict[str, int]:
        try:
            inspect = self.app.control.inspect(timeout=LOOK_TIMEOUT)
            stats, queues = inspect.stats() or {}, inspect.active_queues() or {}
        except Exception:  # no broker now: one process, as before the look
            log.warning("could not ask the workers how many they are", exc_info=True)
            return {}
        serving: dict[str, int] = {}
        for node, consumed in queues.items():
            pool = int(((stats.get(node) or {}).get("pool") or {}).get("max-concurrency") or 1)
            for queue in {q.get("name") for q in consumed}:
                serving[queue] = serving.get(queue, 0) + pool
        return serving
