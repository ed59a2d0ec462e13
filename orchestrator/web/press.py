"""The press office's room: compose with live per-channel preview, submit, schedule, follow.

Thin over the use cases: releases.create/edit/submit, golive.schedule,
deliveries.for_release. The board is one small JSON document polled every second,
so following a go-live needs no reload and no extra server machinery.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from orchestrator.domain.access import Op
from orchestrator.domain.clock import instant, iso, utcnow
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import parse_release
from orchestrator.domain.states import EDITABLE_RELEASE_STATES
from orchestrator.usecases import access, deliveries, golive, releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from orchestrator.web import forms
from orchestrator.web.auth import PRESS, Viewer, flash, require
from orchestrator.web.pages import (
    STATE_LABELS,
    act,
    ctx_of,
    local_time,
    redirect,
    render,
)

router = APIRouter(prefix="/press")
Author = Annotated[Viewer, Depends(require(PRESS))]


@router.get("")
def press_home(request: Request, who: Author) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        viewer, found = releases.visible_releases(uow.session, who.name, op=Op.READ)
        rows = [releases.as_dict(uow.session, r, viewer) for r in found]
        joiners = golive.group_joiners(uow.session, who.name)
    return render(request, "press_list.html", who, releases=rows, joiners=joiners)


def _compose(request: Request, who: Viewer, values: dict[str, Any], release: dict | None,
             problems: list[dict[str, str]] | None = None, status: int = 200) -> Response:
    return render(request, "compose.html", who, status=status, values=values, release=release,
                  channels=forms.channel_rows(ctx_of(request), who.name), metadata=forms.METADATA,
                  disclosures=forms.DISCLOSURES, override_fields=forms.override_fields,
                  problems=problems or [])


@router.get("/new")
def new_form(request: Request, who: Author) -> Response:
    return _compose(request, who, forms.blank_values(), None)


def _save(request: Request, who: Viewer, values: dict[str, Any], release_id: int | None,
          then_submit: bool) -> Response:
    ctx = ctx_of(request)
    try:
        data = parse_release(forms.release_data(values))
        with UnitOfWork(ctx) as uow:
            if release_id is None:
                release_id = releases.create(uow, data, who.name)
            else:
                releases.edit(uow, release_id, data, who.name)
    except InvalidInput as exc:
        shown = None if release_id is None else {"id": release_id}
        return _compose(request, who, values, shown, forms.problems_of(exc), status=422)
    flash(request, f"稿件 {release_id} 已保存")
    if then_submit:
        return _submit(request, who, release_id)
    return redirect(request, f"/press/{release_id}")


@router.post("/new")
async def create(request: Request, who: Author) -> Response:
    form = await request.form()
    return _save(request, who, forms.values_of(form), None, form.get("then") == "submit")


@router.post("/preview")
async def preview(request: Request, who: Author) -> JSONResponse:
    values = forms.values_of(await request.form())
    return JSONResponse(forms.preview(ctx_of(request), values, who.name))


def _release(request: Request, release_id: int, who: Viewer
             ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, bool]]:
    """The release as `who` may see it (NotFound otherwise), its deliveries, their actions."""
    with UnitOfWork(ctx_of(request)) as uow:
        release = releases.readable(uow.session, release_id, who.name)
        viewer = access.principal(uow.session, who.name)
        rows = [deliveries.as_dict(uow.session, d, with_attempts=False)
                for d in deliveries.for_release(uow.session, release_id, actor=who.name)]
        return (releases.as_dict(uow.session, release, viewer), rows,
                releases.permissions(uow.session, release, viewer))


@router.get("/{release_id}")
def show(request: Request, release_id: int, who: Author) -> Response:
    release, rows, may = _release(request, release_id, who)
    return render(request, "release.html", who, release=release, deliveries=rows, may=may,
                  editable=may["edit"], schedulable=may["schedule"],
                  held=bool(release.get("held_by")))


@router.get("/{release_id}/board.json")
def board(request: Request, release_id: int, who: Author) -> JSONResponse:
    release, rows, _ = _release(request, release_id, who)
    for row in rows:
        row["state_label"] = STATE_LABELS.get(row["state"], row["state"])
    return JSONResponse({
        "release": {k: release[k] for k in ("id", "state", "state_reason", "held_by", "go_live_at",
                                            "first_live_at", "last_live_at", "spread_ms")}
        | {"state_label": STATE_LABELS.get(release["state"], release["state"])},
        "deliveries": rows, "at": iso(utcnow()),
    })


@router.get("/{release_id}/edit")
def edit_form(request: Request, release_id: int, who: Author) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        release = releases.readable(uow.session, release_id, who.name)
        values, state = forms.values_of_release(release), release.state
        may_edit = access.allows(uow.session, access.principal(uow.session, who.name), Op.EDIT,
                                 release)
    if state not in EDITABLE_RELEASE_STATES:
        flash(request, f"稿件处于“{STATE_LABELS.get(state, state)}”状态，不能再修改", "error")
        return redirect(request, f"/press/{release_id}")
    if not may_edit:
        flash(request, "只有稿件作者或其指定的合作者可以修改此稿件", "error")
        return redirect(request, f"/press/{release_id}")
    return _compose(request, who, values, {"id": release_id, "state": state})


@router.post("/{release_id}/edit")
async def edit(request: Request, release_id: int, who: Author) -> Response:
    form = await request.form()
    return _save(request, who, forms.values_of(form), release_id, form.get("then") == "submit")


def _submit(request: Request, who: Viewer, release_id: int) -> Response:
    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            digest = releases.submit(uow, release_id, who.name)
        return f"已提交审核；审核人将签署的内容指纹：{digest[:16]}…"

    return act(request, who, run, f"/press/{release_id}")


@router.post("/{release_id}/submit")
def submit(request: Request, release_id: int, who: Author) -> Response:
    return _submit(request, who, release_id)


@router.post("/{release_id}/schedule")
async def schedule(request: Request, release_id: int, who: Author) -> Response:
    form = await request.form()

    def run() -> str:
        at = None if form.get("now") else instant(str(form.get("at", "")), "at")
        if at is None and not form.get("now"):
            raise InvalidInput([("at", "请填写上线时间，或选择“就绪后立即上线”")])
        with UnitOfWork(ctx_of(request)) as uow:
            state = golive.schedule(uow, release_id, at, who.name)
            pending = releases.get_release(uow.session, release_id).reschedule_by is not None
        when = f"定于 {local_time(at)}（北京时间）上线" if at else "各渠道就绪后立即同时上线"
        if pending:  # after sign-off the time is signed too: a leader signs the move
            return f"已申请改为{when}；须由未参与撰稿的领导签发人签署后生效，此前不会上线"
        return f"{when}；当前状态：{STATE_LABELS.get(state, state)}"

    return act(request, who, run, f"/press/{release_id}")





@router.post("/{release_id}/consent")
async def consent(request: Request, release_id: int, who: Author) -> Response:
    """The go-live group's owner lets a release join the group, or refuses it."""
    form = await request.form()
    accept, comment = form.get("accept") == "1", str(form.get("comment", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            golive.consent_to_group(uow, release_id, who.name, accept, comment)
        return f"已{'同意' if accept else '拒绝'}稿件 {release_id} 加入同步上线组"

    return act(request, who, run, "/press")


@router.post("/{release_id}/group-remove")
async def group_remove(request: Request, release_id: int, who: Author) -> Response:
    """The go-live group's owner takes a consented release out of the group (移出本组)."""
    form = await request.form()
    comment = str(form.get("comment", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            golive.remove_from_group(uow, release_id, who.name, comment)
        return f"已将稿件 {release_id} 移出同步上线组"

    return act(request, who, run, "/press")
