"""The auditors' room: search the trail, a release's timeline, streamed exports, verify.

Read-only by design: the only POST here runs the integrity check, which changes
nothing. Exports stream through audit.export (keyset on the event id, one short
transaction per page), so a year of events never sits in memory or holds a lock.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import select
from starlette.responses import Response

from orchestrator.domain.clock import instant
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import MAX_ID
from orchestrator.domain.spreadsheet import safe_cell
from orchestrator.store.models import AuditEvent
from orchestrator.usecases import audit, releases
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.auth import AUDIT, Viewer, require
from orchestrator.web.pages import ctx_of, problem_text, render

router = APIRouter(prefix="/audit")
Auditor = Annotated[Viewer, Depends(require(AUDIT))]
PAGE = 100
EXPORT_PAGE = 1000
COLUMNS = ("id", "at", "actor", "action", "subject_type", "subject_id", "release_id", "channel",
           "before", "after", "detail", "prev_hash", "hash")
FILTERS = ("release", "channel", "actor", "action", "since", "until")


def filters_of(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """Query-string filters → audit.query keywords (and the raw values for the form)."""
    raw = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    release = raw["release"]
    # ASCII digits only (str.isdigit() also takes '²'), and an id a row can have
    if release and not (release.isascii() and release.isdigit() and 1 <= int(release) <= MAX_ID):
        raise InvalidInput([("release", "稿件编号应为数字")])
    return {
        "release_id": int(release) if release else None,
        "channel": raw["channel"] or None, "actor": raw["actor"] or None,
        "action": raw["action"] or None,
        "since": instant(raw["since"], "since"), "until": instant(raw["until"], "until"),
    }, raw


def _actions(ctx: Context) -> list[str]:
    with UnitOfWork(ctx) as uow:
        return list(uow.session.exec(select(AuditEvent.action).distinct()
                                     .order_by(AuditEvent.action)))


@router.get("")
def search(request: Request, who: Auditor,
           after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> Response:
    ctx = ctx_of(request)
    error, rows, raw = "", [], {k: request.query_params.get(k, "") for k in FILTERS}
    try:
        keywords, raw = filters_of(request)
        with UnitOfWork(ctx) as uow:
            rows = [audit.as_dict(e) for e in
                    audit.query(uow.session, limit=PAGE + 1, after_id=after_id, **keywords)]
    except InvalidInput as exc:
        error = problem_text(exc)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    query = urlencode({k: v for k, v in raw.items() if v})
    return render(request, "audit.html", who, status=422 if error else 200, rows=rows,
                  raw=raw, error=error, query=query,
                  next_after=rows[-1]["id"] if more else None, actions=_actions(ctx),
                  verdict=None)


@router.post("/verify")
def verify(request: Request, who: Auditor) -> Response:
    ctx = ctx_of(request)
    with UnitOfWork(ctx) as uow:
        verdict = audit.verify(uow.session, ctx.settings)
    raw = dict.fromkeys(FILTERS, "")
    return render(request, "audit.html", who, rows=[], raw=raw, error="", query="",
                  next_after=None, actions=_actions(ctx), verdict=verdict)


@router.get("/release/{release_id}")
def timeline(request: Request, release_id: int, who: Auditor) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        release = releases.show(uow.session, release_id, who.name)
        events = [audit.as_dict(e) for e in
                  audit.query(uow.session, release_id=release_id, limit=100_000)]
    return render(request, "audit_timeline.html", who, release=release, events=events)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return safe_cell(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return "" if value is None else safe_cell(value)


def _csv(ctx: Context, keywords: dict[str, Any]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # so a spreadsheet opens the Chinese text as UTF-8
    writer.writerow(COLUMNS)
    for count, row in enumerate(audit.export(ctx.engine, batch=EXPORT_PAGE, **keywords), 1):
        writer.writerow([_cell(row[c]) for c in COLUMNS])
        if count % EXPORT_PAGE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(ctx: Context, keywords: dict[str, Any]) -> Iterator[str]:
    yield "["
    for count, row in enumerate(audit.export(ctx.engine, batch=EXPORT_PAGE, **keywords)):
        yield ("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False)
    yield "\n]\n"


@router.get("/export.{fmt}")
def export(request: Request, fmt: str, who: Auditor) -> Response:
    if fmt not in ("csv", "json"):
        return render(request, "error.html", who, status=404, title="没有这种格式",
                      message="导出格式只有 csv 和 json")
    try:
        keywords, _ = filters_of(request)
    except InvalidInput as exc:
        return render(request, "error.html", who, status=422, title="筛选条件有误",
                      message=problem_text(exc))
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    body = (_csv if fmt == "csv" else _json)(ctx_of(request), keywords)
    name = f"tongfa-audit{'-release-' + str(keywords['release_id']) if keywords['release_id'] else ''}.{fmt}"
    return StreamingResponse(body, media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
