"""The composition root: where the entry points get the system they run.

The ASGI app (orchestrator/api/asgi.py), the command line (orchestrator/cli), the Celery
workers (workers/), the benches and the tests build their context and app here, and only
here. So api/, web/, cli/ and workers/ never import one another (tests/unit/
test_entry_points.py reads their imports); this module is the one that knows them all.
Imports are inside the functions: a worker process never loads the web console, the API
never loads Celery's worker side.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from orchestrator.settings import Settings, get_settings
from orchestrator.store.db import engine_for
from orchestrator.usecases.unit_of_work import Context, WorkQueue

if TYPE_CHECKING:
    from fastapi import FastAPI


def make_context(settings: Settings, queue: WorkQueue) -> Context:
    """What every use case needs: the database the settings name, and where work goes."""
    return Context(engine_for(settings.resolved_database_url), settings, queue)


def celery_queue(settings: Settings) -> WorkQueue:
    """The work queue of a running installation: Celery, on the broker the settings name."""
    from workers.queue import CeleryQueue

    return CeleryQueue(settings)


def installed_context(settings: Settings) -> Context:
    """The context of the API, the CLI and the scheduler: work goes to the Celery workers."""
    return make_context(settings, celery_queue(settings))


@cache
def worker_context() -> Context:
    """A Celery worker's context, built once per process from the environment (TONGFA_*)."""
    return installed_context(get_settings())


def make_app(ctx: Context, mounts: dict[str, Any] | None = None) -> FastAPI:
    """The HTTP API with the web console at /console, and `mounts` (path → ASGI app) beside."""
    from orchestrator.api.app import create_app
    from orchestrator.web.console import console_app

    return create_app(ctx, mounts={"/console": console_app(ctx), **(mounts or {})})
