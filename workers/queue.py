"""The WorkQueue the use cases send to, implemented on Celery."""

from __future__ import annotations

from orchestrator.settings import Settings
from workers.celery_app import app_for


class CeleryQueue:
    def __init__(self, settings: Settings) -> None:
        self.app = app_for(settings)

    def send(self, task: str, *, priority: str, countdown: float = 0.0, **kwargs: int) -> None:
        # integrity read-backs have their own queue: they never wait behind, or delay, a publish
        queue = priority if priority in ("urgent", "integrity") else "normal"
        self.app.send_task(f"tongfa.{task}", kwargs=kwargs, queue=queue,
                           countdown=countdown or None)
