"""Thin Celery tasks: each calls one use case with ids; all state is in the database.

One Celery task per row of the task table (orchestrator.usecases.work), named
`tongfa.<name>`.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.bootstrap import worker_context
from orchestrator.usecases.work import TASKS
from workers.celery_app import app

context = worker_context  # one per process; a test may put its own here


def _task(name: str, use_case: Callable[..., None]) -> Callable[..., None]:
    def run(**ids: int) -> None:
        use_case(context(), **ids)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = use_case.__doc__
    return app.task(name=f"tongfa.{name}")(run)  # type: ignore[no-any-return]


tasks = {name: _task(name, use_case) for name, use_case in TASKS.items()}
