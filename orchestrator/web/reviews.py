"""The reviewers' room: what waits for my signature, exactly what each channel will show.

A reviewer signs a content hash, so the page shows the documents the adapters make
from the stored release (releases.preview) and the hash they bind. On a resubmission
the page diffs each channel's document against the earlier revision: from that
revision's delivery rows when it had been approved (their payloads are stored), else
from the console's note of what was shown to reviewers of that revision. The note is
only a display aid kept under var/; the signature always binds the fresh render.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session, select
from starlette.responses import Response

from orchestrator.domain.access import Op
from orchestrator.domain.errors import Refused
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import access, golive, holds, releases, review
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.auth import REVIEW, Viewer, require
from orchestrator.web.pages import act, ctx_of, render

router = APIRouter(prefix="/review")
Reviewer = Annotated[Viewer, Depends(require(REVIEW))]
Forcer = Annotated[Viewer, Depends(require(Op.FORCE))]
Rescheduler = Annotated[Viewer, Depends(require(Op.SIGN_RESCHEDULE))]


def signable_step(uow: UnitOfWork, release: Release, who: Viewer) -> tuple[int | None, str]:
    """(step index, '') when `who` may sign now; (None, why not) otherwise."""
    if release.state != "in_review":
        return None, "稿件不在审核中"
    try:
        step = review.signable_step(uow, release, who.name)
    except Refused as exc:
        if who.name in review.excluded(release):
            return None, "作者本人不能签发自己的稿件，撰写、修改或提交过本稿任一修订的人也不能签发（谁发布谁审查、谁审查谁负责）"
        return None, str(exc)
    return step, ""


@router.get("")
def queue(request: Request, who: Reviewer) -> Response:
    waiting = []
    with UnitOfWork(ctx_of(request)) as uow:
        _, found = releases.visible_releases(uow.session, who.name, state="in_review",
                                             limit=500, op=Op.READ)
        for release in found:
            step, _ = signable_step(uow, release, who)
            if step is not None:
                role = review.policy_for(uow, release).steps[step].role
                waiting.append({"id": release.id, "title": release.title,
                                "author": release.author, "revision": release.revision,
                                "priority": release.priority, "step": step + 1, "role": role,
                                "updated_at": release.updated_at})
        held = holds.held_releases(uow.session, who.name)
    return render(request, "review_queue.html", who, waiting=waiting, held=held)


def _documents(ctx: Context, session: Session, payloads: dict[str, dict[str, Any]]
               ) -> list[dict[str, Any]]:
    shown = []
    for name, payload in payloads.items():
        row = get_channel(session, name)
        adapter = adapter_for(ctx.settings, row)
        fmt = adapter.formats[0]
        shown.append({"name": name, "kind": row.kind, "html": fmt == "html",
                      "document": adapter.document(payload, fmt)})
    return shown


def _note_path(ctx: Context, release_id: int, revision: int) -> Path:
    return Path(ctx.settings.var_dir) / "console" / "seen" / str(release_id) / f"r{revision}.json"


def _keep_note(ctx: Context, release: Release, digest: str, docs: list[dict[str, Any]]) -> None:
    path = _note_path(ctx, release.id or 0, release.revision)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    note = {"revision": release.revision, "content_hash": digest, "title": release.title,
            "body_source": release.body_source,
            "documents": {d["name"]: d["document"] for d in docs}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(note, handle, ensure_ascii=False)
    os.replace(tmp, path)


def _earlier(ctx: Context, session: Session, release: Release) -> tuple[dict[str, str], str, int]:
    """The most recent earlier revision's documents, where they came from, and its number."""
    for revision in range(release.revision - 1, 0, -1):
        rows = session.exec(select(Delivery).where(Delivery.release_id == release.id,
                                                   Delivery.revision == revision)).all()
        if rows:
            docs = _documents(ctx, session, {r.channel: r.payload for r in rows
                                             if r.channel in release.channels})
            return {d["name"]: d["document"] for d in docs}, "该修订签发时存档的发送内容", revision
        path = _note_path(ctx, release.id or 0, revision)
        if path.exists():
            note = json.loads(path.read_text(encoding="utf-8"))
            docs = dict(note["documents"]) | {"（正文原稿）": note.get("body_source", "")}
            return docs, "控制台记录的该修订审核时所见内容", revision
    return {}, "", 0


def _diffs(before: dict[str, str], now: dict[str, str]) -> list[dict[str, Any]]:
    differ = difflib.HtmlDiff(wrapcolumn=60)
    found = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name, ""), now.get(name, "")
        table = None if old == new else differ.make_table(
            old.splitlines(), new.splitlines(), "上一修订", "本次", context=True, numlines=2)
        found.append({"name": name, "changed": old != new, "table": table})
    return found


@router.get("/{release_id}")
def show(request: Request, release_id: int, who: Reviewer) -> Response:
    ctx = ctx_of(request)
    with UnitOfWork(ctx) as uow:
        release = releases.readable(uow.session, release_id, who.name)
        rendered = releases.preview(uow, release_id, who.name)
        docs = _documents(ctx, uow.session, rendered["channels"])
        step, why_not = signable_step(uow, release, who)
        policy = review.policy_for(uow, release)
        if release.state == "in_review":
            _keep_note(ctx, release, rendered["content_hash"], docs)
        diffs, source, earlier = [], "", 0
        if release.revision > 1:
            before, source, earlier = _earlier(ctx, uow.session, release)
            now = {d["name"]: d["document"] for d in docs}
            if "（正文原稿）" in before:
                now["（正文原稿）"] = release.body_source
            diffs = _diffs(before, now) if before else []
        viewer = access.principal(uow.session, who.name)
        view = releases.as_dict(uow.session, release, viewer)
        may = releases.permissions(uow.session, release, viewer)
    held = view.get("held_by") or []
    can_force = may["force_go_live"] and bool(held)
    can_sign_reschedule = (may["sign_reschedule"] and view["reschedule"] is not None
                           and who.name not in view["contributors"])
    return render(request, "review_release.html", who, release=view, documents=docs,
                  digest=rendered["content_hash"],
                  digest_matches=rendered["content_hash"] == view["content_hash"],
                  step=step, why_not=why_not, steps=[s.role for s in policy.steps],
                  diffs=diffs, diff_source=source, earlier=earlier, held=held,
                  can_force=can_force, can_sign_reschedule=can_sign_reschedule)


@router.post("/{release_id}/approve")
async def approve(request: Request, release_id: int, who: Reviewer) -> Response:
    comment = str((await request.form()).get("comment", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            state = review.approve(uow, release_id, who.name, comment)
        return f"已签署稿件 {release_id}；稿件状态：{'已签发' if state != 'in_review' else '审核中'}"

    return act(request, who, run, "/review", f"/review/{release_id}")


@router.post("/{release_id}/reject")
async def reject(request: Request, release_id: int, who: Reviewer) -> Response:
    comment = str((await request.form()).get("comment", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            review.reject(uow, release_id, who.name, comment)
        return f"已退回稿件 {release_id}"

    return act(request, who, run, "/review", f"/review/{release_id}")


@router.post("/{release_id}/force")
async def force(request: Request, release_id: int, who: Forcer) -> Response:
    """Go live without the channels that could not be staged (golive.force_go_live)."""
    reason = str((await request.form()).get("reason", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            left = golive.force_go_live(uow, release_id, who.name, reason)
        return f"稿件 {release_id} 已强制上线；未上线的渠道：{'、'.join(left) or '无'}"

    return act(request, who, run, f"/review/{release_id}")


@router.post("/{release_id}/reschedule")
async def reschedule(request: Request, release_id: int, who: Rescheduler) -> Response:
    """Sign (or refuse, with a reason) a go-live time asked for after approval."""
    form = await request.form()
    approve, comment = form.get("approve") == "1", str(form.get("comment", "")).strip()

    def run() -> str:
        with UnitOfWork(ctx_of(request)) as uow:
            golive.sign_reschedule(uow, release_id, who.name, approve, comment)
        return f"稿件 {release_id} 的改期申请已{'签署生效' if approve else '驳回，仍按原定时间'}"

    return act(request, who, run, f"/review/{release_id}")
