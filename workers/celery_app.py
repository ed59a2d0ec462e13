"""The Celery app: settings chosen so that no work is lost.

The broker carries only ids; the database says what is owed, and the reaper
re-drives anything a lost message leaves behind.
"""

from __future__ import annotations

from functools import cache

from celery import Celery
from celery.signals import setup_logging

from orchestrator.settings import Settings, get_settings
from orchestrator.usecases.unit_of_work import QUEUES as WORK_QUEUES
from orchestrator.usecases.unit_of_work import Queue

QUEUES = WORK_QUEUES  # what `tongfa worker` serves when no -Q is given


def make_app(settings: Settings) -> Celery:
    url = settings.resolved_broker_url
    app = Celery("tongfa", broker=url, include=["workers.tasks"])
    options: dict = {}
    if url.startswith("filesystem://"):
        folder = settings.broker_dir
        for sub in ("out", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
    elif url.startswith(("redis://", "rediss://")):
        options = {"visibility_timeout": 3600}
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,  # a task is acked only when it has run
        task_reject_on_worker_lost=True,  # a killed worker's task goes back to the queue
        worker_prefetch_multiplier=1,  # a worker holds one task it has not started
        task_ignore_result=True,
        task_default_queue=Queue.NORMAL.value,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


@setup_logging.connect
def _json_logs(loglevel: str | int | None = None, **_: object) -> None:
    """Workers log one JSON object a line, like the API (secrets redacted), at `-l`'s level."""
    from orchestrator.observability import configure_logging

    configure_logging(loglevel or get_settings().log_level)


@cache
def app_for(settings: Settings) -> Celery:
    return make_app(settings)


app = app_for(get_settings())  # what `celery -A workers.celery_app worker` runs
