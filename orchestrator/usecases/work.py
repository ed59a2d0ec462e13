"""The task table: each piece of work a use case hands to the workers, by name, and the
use case that does it. Stated once: the Celery tasks (workers/tasks.py), the test drain
and the work queue (which refuses a name not here) all read it.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.usecases import alerts, corrections, integrity
from orchestrator.usecases.delivery import firing, follow_up, instant, staging

TASKS: dict[str, Callable[..., None]] = {
    "stage_release": staging.stage_release,  # release_id
    "stage": staging.stage,  # delivery_id
    "fire": firing.fire,  # release_id
    "fire_share": instant.fire_share,  # deliveries, at_ms: one process's share of a go-live
    "publish": firing.publish_one,  # delivery_id
    "reconcile": follow_up.reconcile,  # delivery_id
    "confirm": follow_up.confirm,  # delivery_id
    "withdraw": corrections.withdraw_delivery,  # delivery_id
    integrity.TASK: integrity.check_one,  # delivery_id, on its own queue
    "send_alerts": alerts.send_due,
}
