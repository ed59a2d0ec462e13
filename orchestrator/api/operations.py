"""The API of everything the console does beyond writing and signing: going live,
re-sending, pausing, withdrawing, auditing, reporting."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from orchestrator.api.auth import MAX_ID, Actor, RowId, context_of
from orchestrator.domain.access import Duty
from orchestrator.domain.clock import Instant
from orchestrator.domain.spreadsheet import safe_cell
from orchestrator.usecases import (
    audit,
    channels,
    corrections,
    deliveries,
    golive,
    recovery,
    releases,
    report,
)
from orchestrator.usecases.access import require_duty
from orchestrator.usecases.unit_of_work import UnitOfWork

router = APIRouter(prefix="/api/v1")


class Schedule(BaseModel):
    at: Instant | None = None  # None: as soon as every channel is staged


class Reason(BaseModel):
    reason: str


class Decision(BaseModel):
    approve: bool
    comment: str = ""


class LiveAt(BaseModel):
    url: str  # checked by the use case: plain https on the channel's own host
    note: str = ""


class Consent(BaseModel):
    accept: bool
    comment: str = ""


@router.post("/releases/{release_id}/schedule")
def schedule(release_id: RowId, body: Schedule, user: Actor, request: Request) -> dict[str, Any]:
    """Set the go-live time; after approval this asks an approver to sign the new time."""
    with UnitOfWork(context_of(request)) as uow:
        golive.schedule(uow, release_id, body.at, user.name)
        return releases.show(uow.session, release_id, user.name)


@router.post("/releases/{release_id}/reschedule")
def reschedule(release_id: RowId, body: Decision, user: Actor,
               request: Request) -> dict[str, Any]:
    """An approver who wrote no part of it signs (or refuses, with a reason) the new time."""
    with UnitOfWork(context_of(request)) as uow:
        golive.sign_reschedule(uow, release_id, user.name, body.approve, body.comment)
        return releases.show(uow.session, release_id, user.name)


@router.post("/releases/{release_id}/group-consent")
def group_consent(release_id: RowId, body: Consent, user: Actor,
                  request: Request) -> dict[str, Any]:
    """The go-live group's owner lets this release join it, or refuses (with a reason)."""
    with UnitOfWork(context_of(request)) as uow:
        golive.consent_to_group(uow, release_id, user.name, body.accept, body.comment)
        return releases.show(uow.session, release_id, user.name)


class Removal(BaseModel):
    comment: str


@router.post("/releases/{release_id}/group-remove")
def group_remove(release_id: RowId, body: Removal, user: Actor,
                 request: Request) -> dict[str, Any]:
    """The go-live group's owner takes this release out of the group again (with a reason)."""
    with UnitOfWork(context_of(request)) as uow:
        golive.remove_from_group(uow, release_id, user.name, body.comment)
        return releases.show(uow.session, release_id, user.name)


@router.post("/releases/{release_id}/hold")
def hold(release_id: RowId, user: Actor, request: Request) -> dict[str, Any]:
    with UnitOfWork(context_of(request)) as uow:
        golive.hold(uow, release_id, user.name)
        return releases.show(uow.session, release_id, user.name)


@router.post("/releases/{release_id}/force-go-live")
def force_go_live(release_id: RowId, body: Reason, user: Actor,
                  request: Request) -> dict[str, Any]:
    with UnitOfWork(context_of(request)) as uow:
        return {"left_out": golive.force_go_live(uow, release_id, user.name, body.reason)}


@router.post("/releases/{release_id}/withdraw")
def withdraw(release_id: RowId, body: Reason, user: Actor, request: Request) -> dict[str, Any]:
    with UnitOfWork(context_of(request)) as uow:
        return {"channels": corrections.withdraw(uow, release_id, user.name, body.reason)}


@router.get("/releases/{release_id}/correction-plan")
def correction_plan(release_id: RowId, user: Actor, request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    with UnitOfWork(ctx) as uow:
        return corrections.as_plan_view(ctx.settings, uow.session, release_id, user.name)


@router.post("/deliveries/{delivery_id}/resend")
def resend(delivery_id: RowId, user: Actor, request: Request) -> dict[str, str]:
    with UnitOfWork(context_of(request)) as uow:
        recovery.resend(uow, delivery_id, user.name)
    return {"status": "re-sent"}


@router.post("/deliveries/{delivery_id}/cancel")
def cancel(delivery_id: RowId, body: Reason, user: Actor, request: Request) -> dict[str, str]:
    with UnitOfWork(context_of(request)) as uow:
        recovery.cancel(uow, delivery_id, user.name, body.reason)
    return {"status": "cancelled"}


@router.post("/deliveries/{delivery_id}/mark-published")
def mark_published(delivery_id: RowId, body: LiveAt, user: Actor,
                   request: Request) -> dict[str, str]:
    """A delivery that needs a decision went out after all: where it is live."""
    with UnitOfWork(context_of(request)) as uow:
        recovery.mark_published(uow, delivery_id, user.name, body.url, body.note)
    return {"status": "published", "url": body.url}


@router.get("/held")
def held(user: Actor, request: Request) -> list[dict[str, Any]]:
    """The approver's queue: releases held by a channel, and what holds each one."""
    from orchestrator.usecases import holds

    with UnitOfWork(context_of(request)) as uow:
        return holds.held_releases(uow.session, user.name)


@router.get("/decisions")
def decisions(user: Actor, request: Request) -> list[dict[str, Any]]:
    """Deliveries that need a channel admin's decision (re-send, or mark published)."""
    with UnitOfWork(context_of(request)) as uow:
        return deliveries.needing_decision(uow.session, actor=user.name)


@router.post("/channels/{name}/pause")
def pause(name: str, user: Actor, request: Request) -> dict[str, Any]:
    require_duty(user, Duty.CHANNELS)
    with UnitOfWork(context_of(request)) as uow:
        channels.set_paused(uow, name, True, user.name, by=user.name)
    return {"name": name, "paused": True}


@router.post("/channels/{name}/resume")
def resume(name: str, user: Actor, request: Request) -> dict[str, Any]:
    require_duty(user, Duty.CHANNELS)
    with UnitOfWork(context_of(request)) as uow:
        channels.set_paused(uow, name, False, user.name, by=user.name)
    return {"name": name, "paused": False}


@router.get("/attempts")
def attempts(
    user: Actor, request: Request, release: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    channel: str | None = None, outcome: str | None = None, since: Instant | None = None,
    until: Instant | None = None, after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Delivery attempts for auditors, filtered by outcome too; keyset pages via after_id."""
    require_duty(user, Duty.AUDIT)
    with UnitOfWork(context_of(request)) as uow:
        return deliveries.attempts_query(uow.session, release_id=release, channel=channel,
                                         outcome=outcome, since=since, until=until,
                                         after_id=after_id, limit=limit)


@router.get("/audit/verify")
def verify(user: Actor, request: Request) -> dict[str, Any]:
    require_duty(user, Duty.AUDIT)
    ctx = context_of(request)
    with UnitOfWork(ctx) as uow:
        return audit.verify(uow.session, ctx.settings)


@router.get("/audit/export")
def export(
    user: Actor, request: Request, format: Annotated[str, Query(pattern="^(csv|json)$")] = "json",
    release: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, channel: str | None = None,
    actor: str | None = None, action: str | None = None,
) -> StreamingResponse:
    """The whole matching trail, streamed page by page: flat memory at any size."""
    require_duty(user, Duty.AUDIT)
    rows = audit.export(context_of(request).engine, release_id=release, channel=channel,
                        actor=actor, action=action)
    if format == "csv":
        return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8")
    return StreamingResponse(_json_array(rows), media_type="application/json")


def _json_array(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for i, row in enumerate(rows):
        yield ("," if i else "") + json.dumps(row, ensure_ascii=False)
    yield "]"


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    fields = ["id", "at", "actor", "action", "subject_type", "subject_id", "release_id",
              "channel", "before", "after", "detail", "prev_hash", "hash"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(json.dumps(v, ensure_ascii=False)
                                      if isinstance(v, dict) else v) for k, v in row.items()})
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/reports/assessment")
def assessment(user: Actor, request: Request,
               quarter: Annotated[str, Query(pattern=r"^[0-9]{4}Q[1-4]$")]) -> list[dict[str, Any]]:
    """考核: per department, per channel, per quarter."""
    require_duty(user, Duty.REPORTS)
    with UnitOfWork(context_of(request)) as uow:
        return report.assessment(uow.session, quarter)
