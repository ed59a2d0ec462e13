"""The channel admins' room: instances and their health, configure, test, pause, re-send,
decide what the machine could not (re-send, or mark published with its URL).

Credentials are write-only here as everywhere: the form never holds them, and an
empty credentials field keeps what is stored (channels.save_channel with None).
Health is read from the delivery records, the same rows operators read when
something failed (the Saleor EventDeliveryAttempt idea).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.responses import Response

from channels.registry import UnknownKind, adapter_class, kinds
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.store.models import ChannelInstance
from orchestrator.usecases import channels, deliveries, recovery
from orchestrator.usecases.unit_of_work import UnitOfWork
from orchestrator.web.auth import CHANNELS, Viewer, flash, require
from orchestrator.web.pages import act, ctx_of, redirect, render

router = APIRouter()
Admin = Annotated[Viewer, Depends(require(CHANNELS))]


def health(session: Session, row: ChannelInstance) -> dict[str, Any]:
    return {**channels.health(session, row), "paused": row.paused,
            "needs_credentials": bool(_credential_fields(row.kind))}


@router.get("/channels")
def channel_list(request: Request, who: Admin) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        rows = [health(uow.session, r)
                for r in channels.visible_channels(uow.session, who.name)]
        failed = deliveries.failed(uow.session, actor=who.name)
        undecided = deliveries.needing_decision(uow.session, actor=who.name)
    return render(request, "channels.html", who, channels=rows, failed=failed,
                  undecided=undecided)


def _credential_fields(kind: str) -> list[str]:
    try:
        model = adapter_class(kind).credentials_model
    except UnknownKind:
        return []
    return list(model.model_fields) if model else []


def _form(request: Request, who: Viewer, values: dict[str, Any], existing: dict | None,
          problems: list[str] | None = None, status: int = 200) -> Response:
    return render(request, "channel_form.html", who, status=status, values=values,
                  existing=existing, kinds=kinds(), problems=problems or [],
                  credential_fields={k: _credential_fields(k) for k in kinds()})


@router.get("/channels/new")
def new_channel(request: Request, who: Admin) -> Response:
    return _form(request, who, {"name": "", "kind": "", "config": "{\n}"}, None)


@router.get("/channels/{name}/edit")
def edit_channel(request: Request, name: str, who: Admin) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        view = channels.public_view(uow.session, channels.managed(uow.session, name, who.name))
    values = {"name": name, "kind": view["kind"],
              "config": json.dumps(view["config"], ensure_ascii=False, indent=2)}
    return _form(request, who, values, view)


def _json_field(text: str, field: str, empty: Any) -> Any:
    if not text.strip():
        return empty
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput([(field, f"不是有效的 JSON：{exc.msg}（第 {exc.lineno} 行）")]) from None
    if not isinstance(value, dict):
        raise InvalidInput([(field, "应为一个 JSON 对象 {…}")])
    return value


async def _save(request: Request, who: Viewer, name: str | None) -> Response:
    form = await request.form()
    values = {"name": (name or str(form.get("name", ""))).strip(),
              "kind": str(form.get("kind", "")).strip(), "config": str(form.get("config", ""))}
    existing = None
    ctx = ctx_of(request)
    try:
        if name is not None:
            with UnitOfWork(ctx) as uow:
                existing = channels.public_view(uow.session,
                                                channels.managed(uow.session, name, who.name))
        if not values["name"] or len(values["name"]) > 64:
            raise InvalidInput([("name", "1 到 64 个字符")])
        config = _json_field(values["config"], "config", {})
        creds = _json_field(str(form.get("credentials", "")), "credentials", None)
        with UnitOfWork(ctx) as uow:
            if name is None and values["name"] in {c.name for c in
                                                   channels.list_channels(uow.session)}:
                raise InvalidInput([("name", "已有同名渠道；请到该渠道的“编辑”页修改")])
            channels.save_channel(uow, values["name"], values["kind"], config, creds, who.name,
                                  by=who.name)
    except InvalidInput as exc:
        problems = [f"{f}：{m}" for f, m in exc.problems]
        return _form(request, who, values, existing, problems, status=422)
    flash(request, f"渠道 {values['name']} 已保存" + ("（凭据已更新）" if creds is not None else ""))
    return redirect(request, "/channels")


@router.post("/channels/new")
async def create_channel(request: Request, who: Admin) -> Response:
    return await _save(request, who, None)


@router.post("/channels/{name}/edit")
async def update_channel(request: Request, name: str, who: Admin) -> Response:
    return await _save(request, who, name)


@router.post("/channels/{name}/test")
def test_channel(request: Request, name: str, who: Admin) -> Response:
    with UnitOfWork(ctx_of(request)) as uow:
        try:
            ok, message = channels.test_channel(uow, name, who.name, by=who.name)
        except NotFound as exc:
            flash(request, str(exc), "error")
            return redirect(request, "/channels")
    flash(request, f"{name} 连接测试{'通过' if ok else '失败'}：{message}", "ok" if ok else "error")
    return redirect(request, "/channels")


@router.post("/channels/{name}/pause")
async def pause_channel(request: Request, name: str, who: Admin) -> Response:
    paused = (await request.form()).get("paused") == "1"

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            channels.set_paused(uow, name, paused, who.name, by=who.name)
        return f"渠道 {name} 已{'暂停' if paused else '恢复'}"

    return act(request, who, run, "/channels")


@router.post("/deliveries/{delivery_id}/resend")
def resend(request: Request, delivery_id: int, who: Admin) -> Response:
    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            recovery.resend(uow, delivery_id, who.name)
        return f"投递 {delivery_id} 已重新排队发送"

    return act(request, who, run, "/channels")


@router.post("/deliveries/{delivery_id}/mark-published")
async def mark_published(request: Request, delivery_id: int, who: Admin) -> Response:
    """The admin found it on the platform: published at this URL (recovery.mark_published)."""
    form = await request.form()
    url, note = str(form.get("url", "")).strip(), str(form.get("note", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            recovery.mark_published(uow, delivery_id, who.name, url, note)
        return f"投递 {delivery_id} 已标记为已发布"

    return act(request, who, run, "/channels")


@router.post("/deliveries/{delivery_id}/cancel")
async def cancel(request: Request, delivery_id: int, who: Admin) -> Response:
    """Give up a failed or undecided delivery of a live release, with a reason."""
    reason = str((await request.form()).get("reason", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            recovery.cancel(uow, delivery_id, who.name, reason)
        return f"投递 {delivery_id} 已取消"

    return act(request, who, run, "/channels")
