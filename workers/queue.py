"""The WorkQueue the use cases send to, implemented on Celery."""

from __future__ import annotations

from orchestrator.settings import Settings
from orchestrator.usecases.unit_of_work import queue_for
from orchestrator.usecases.work import TASKS
from workers.celery_app import app_for


class CeleryQueue:
    def __init__(self, settings: Settings) -> None:
        self.app = app_for(settings)

    def send(self, task: str, *, priority: str, countdown: float = 0.0, **kwargs: int) -> None:
        if task not in TASKS:  # a name no worker serves would be lost silently
            raise ValueError(f"no such task {task!r}: add it to orchestrator.usecases.work")
        self.app.send_task(f"tongfa.{task}", kwargs=kwargs, queue=queue_for(priority).value,
                           countdown=countdown or None)
