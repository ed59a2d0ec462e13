"""Thin Celery tasks: each calls one use case with ids; all state is in the database."""

from __future__ import annotations

from functools import cache

from orchestrator.settings import get_settings
from orchestrator.store.db import engine_for
from orchestrator.usecases import alerts, corrections, integrity
from orchestrator.usecases.delivery import firing, follow_up, instant, staging
from orchestrator.usecases.unit_of_work import Context
from workers.celery_app import app
from workers.queue import CeleryQueue


@cache
def context() -> Context:
    settings = get_settings()
    return Context(engine_for(settings.resolved_database_url), settings, CeleryQueue(settings))


@app.task(name="tongfa.stage_release")
def stage_release(release_id: int) -> None:
    staging.stage_release(context(), release_id)


@app.task(name="tongfa.stage")
def stage(delivery_id: int) -> None:
    staging.stage(context(), delivery_id)


@app.task(name="tongfa.fire")
def fire(release_id: int) -> None:
    firing.fire(context(), release_id)


@app.task(name="tongfa.fire_share")
def fire_share(deliveries: list[int], at_ms: int) -> None:
    instant.fire_share(context(), deliveries, at_ms)


@app.task(name="tongfa.publish")
def publish(delivery_id: int) -> None:
    firing.publish_one(context(), delivery_id)


@app.task(name="tongfa.reconcile")
def reconcile(delivery_id: int) -> None:
    follow_up.reconcile(context(), delivery_id)


@app.task(name="tongfa.confirm")
def confirm(delivery_id: int) -> None:
    follow_up.confirm(context(), delivery_id)


@app.task(name="tongfa.withdraw")
def withdraw(delivery_id: int) -> None:
    corrections.withdraw_delivery(context(), delivery_id)


@app.task(name="tongfa.integrity")
def integrity_check(delivery_id: int) -> None:
    """One read-back (queue `integrity`); an alert it raises goes out through send_alerts."""
    integrity.check_one(context(), delivery_id)


@app.task(name="tongfa.send_alerts")
def send_alerts() -> None:
    alerts.send_due(context())
