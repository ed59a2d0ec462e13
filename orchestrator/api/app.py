"""The HTTP API (/api/v1): a thin entry point over the use cases."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import text

from orchestrator import observability
from orchestrator.api import operations
from orchestrator.api.auth import MAX_ID, Actor, RowId
from orchestrator.api.limits import BodyLimit, NoNul
from orchestrator.domain.access import Duty
from orchestrator.domain.clock import Instant, utcnow
from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound, Refused, invalid_input
from orchestrator.domain.release import ReleaseInput
from orchestrator.usecases import audit, channels, deliveries, releases, review
from orchestrator.usecases.access import require_duty
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.console import console_app


class Comment(BaseModel):
    comment: str = ""


class ChannelIn(BaseModel):
    kind: str
    config: dict[str, Any]
    credentials: dict[str, Any] | None = None  # write-only: never returned


def create_app(ctx: Context, mounts: dict[str, Any] | None = None) -> FastAPI:
    ctx = replace(ctx, origin={"via": "api"})  # audit events say where they came from
    app = FastAPI(title="tongfa", version="0.1.0", description="同发 — multi-channel publishing")
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, limit=ctx.settings.max_request_bytes)  # /console too
    # /console too; the operations routes by their own paths, to name a path parameter
    app.add_middleware(NoNul, routes=lambda: [*app.router.routes, *operations.router.routes])

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _refused(request, invalid_input(exc.errors()))  # no input echoed back

    @app.exception_handler(Refused)
    def _refused(_: Request, exc: Refused) -> JSONResponse:
        status = (404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Forbidden)
                  else 422 if isinstance(exc, InvalidInput) else 409)
        problems = getattr(exc, "problems", None)
        body: dict[str, Any] = {"detail": str(exc)}
        if problems:
            body["problems"] = [{"field": f, "message": m} for f, m in problems]
        return JSONResponse(body, status_code=status)

    def uow() -> UnitOfWork:
        return UnitOfWork(ctx)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    app.add_route("/metrics", observability.metrics_app(ctx), include_in_schema=False)

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        report = observability.readiness(ctx)
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.post("/api/v1/releases", status_code=201)
    def create_release(body: ReleaseInput, user: Actor) -> dict[str, Any]:
        _no_file_paths(body)
        with uow() as u:
            release_id = releases.create(u, body, user.name)
            return releases.show(u.session, release_id, user.name)

    @app.put("/api/v1/releases/{release_id}")
    def edit_release(release_id: RowId, body: ReleaseInput, user: Actor) -> dict[str, Any]:
        _no_file_paths(body)
        with uow() as u:
            releases.edit(u, release_id, body, user.name)
            return releases.show(u.session, release_id, user.name)

    @app.get("/api/v1/releases")
    def list_releases(user: Actor, state: str | None = None) -> list[dict[str, Any]]:
        """The releases this caller may see (docs/security.md), newest first."""
        with uow() as u:
            who, rows = releases.visible_releases(u.session, user.name, state)
            return [releases.as_dict(u.session, r, who) for r in rows]

    @app.get("/api/v1/releases/{release_id}")
    def show_release(release_id: RowId, user: Actor) -> dict[str, Any]:
        with uow() as u:
            return releases.show(u.session, release_id, user.name)

    @app.get("/api/v1/releases/{release_id}/preview")
    def preview(release_id: RowId, user: Actor) -> dict[str, Any]:
        with uow() as u:
            return releases.preview(u, release_id, user.name)

    @app.get("/api/v1/releases/{release_id}/checks")
    def checks(release_id: RowId, user: Actor) -> list[dict[str, Any]]:
        """Pre-publish findings (severity block or flag, and where each one is)."""
        with uow() as u:
            return releases.check(u, release_id, user.name)

    @app.post("/api/v1/releases/{release_id}/submit")
    def submit(release_id: RowId, user: Actor) -> dict[str, Any]:
        with uow() as u:
            releases.submit(u, release_id, user.name)
            return releases.show(u.session, release_id, user.name)

    @app.post("/api/v1/releases/{release_id}/approve")
    def approve(release_id: RowId, body: Comment, user: Actor) -> dict[str, Any]:
        with uow() as u:
            review.approve(u, release_id, user.name, body.comment)
            return releases.show(u.session, release_id, user.name)

    @app.post("/api/v1/releases/{release_id}/reject")
    def reject(release_id: RowId, body: Comment, user: Actor) -> dict[str, Any]:
        with uow() as u:
            review.reject(u, release_id, user.name, body.comment)
            return releases.show(u.session, release_id, user.name)

    @app.get("/api/v1/releases/{release_id}/deliveries")
    def list_deliveries(release_id: RowId, user: Actor) -> list[dict[str, Any]]:
        with uow() as u:
            return [deliveries.as_dict(u.session, d)
                    for d in deliveries.for_release(u.session, release_id, actor=user.name)]

    @app.get("/api/v1/audit")
    def audit_query(
        user: Actor, release: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        channel: str | None = None, actor: str | None = None, action: str | None = None,
        since: Instant | None = None, until: Instant | None = None,
        after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        require_duty(user, Duty.AUDIT)
        with uow() as u:
            rows = audit.query(u.session, release_id=release, channel=channel, actor=actor,
                               action=action, since=since, until=until, after_id=after_id,
                               limit=min(limit, 10000))
            return [audit.as_dict(e) for e in rows]

    @app.get("/api/v1/alerts")
    def alerts(user: Actor) -> list[dict[str, Any]]:
        """Open integrity alerts: published items that no longer show what was approved."""
        require_duty(user, Duty.ALERTS)
        from orchestrator.usecases import integrity

        return integrity.open_alerts(ctx)

    @app.get("/api/v1/channels")
    def list_channels(user: Actor) -> list[dict[str, Any]]:
        with uow() as u:
            return [channels.public_view(c) for c in channels.list_channels(u.session)]

    @app.put("/api/v1/channels/{name}")
    def save_channel(name: str, body: ChannelIn, user: Actor) -> dict[str, Any]:
        require_duty(user, Duty.CHANNELS)
        with uow() as u:
            row = channels.save_channel(u, name, body.kind, body.config, body.credentials, user.name)
            return channels.public_view(row)

    @app.post("/api/v1/channels/{name}/wechat-events", include_in_schema=True)
    async def wechat_event(name: str, request: Request, signature: str = "",
                           timestamp: str = "", nonce: str = "") -> Response:
        """WeChat's event callback (PUBLISHJOBFINISH), authenticated by its signature."""
        from lxml import etree

        from channels.wechat import check_signature
        from orchestrator.usecases.delivery import follow_up

        with uow() as u:
            token = channels.callback_token(ctx.settings, channels.get_channel(u.session, name))
        if not token or not check_signature(token, signature, timestamp, nonce,
                                            now=utcnow().timestamp()):
            raise HTTPException(403, "bad signature")
        try:
            event = etree.fromstring(await request.body(), etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError:
            raise HTTPException(400, "not XML") from None
        publish_id = event.findtext("PublishEventInfo/publish_id") or ""
        if event.findtext("Event") == "PUBLISHJOBFINISH" and publish_id:
            with uow() as u:
                follow_up.platform_says_done(u, name, publish_id.strip())
        return Response("success", media_type="text/plain")

    @app.post("/api/v1/channels/{name}/test")
    def test_channel(name: str, user: Actor) -> dict[str, Any]:
        require_duty(user, Duty.CHANNELS)
        with uow() as u:
            ok, message = channels.test_channel(u, name, user.name)
            return {"ok": ok, "message": message}

    app.include_router(operations.router)
    app.mount("/console", console_app(ctx))
    for path, target in (mounts or {}).items():
        app.mount(path, target)
    site = ctx.settings.resolved_site_root
    site.mkdir(parents=True, exist_ok=True)
    app.mount("/site", PublicFiles(directory=str(site), html=True, check_dir=False), name="site")
    return app


class PublicFiles(StaticFiles):
    """The web root as readers see it: staged pages, locks and the manifest stay hidden;
    what a withdrawal took down answers 410 Gone (a page with its withdrawal notice)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        from pathlib import Path

        from starlette.responses import FileResponse, PlainTextResponse

        from channels.website import withdrawn

        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(part.startswith(".") for part in parts) \
                or path.endswith("manifest.json"):
            raise HTTPException(404)
        root = Path(str(self.directory))
        if parts and withdrawn(root, "/".join(parts)):
            notice = root.joinpath(*parts)
            if notice.is_file():
                return FileResponse(notice, status_code=410)
            return PlainTextResponse("410 Gone：该文件已随信息撤回", status_code=410)
        return await super().get_response(path, scope)


def _no_file_paths(body: ReleaseInput) -> None:
    """The API never reads paths on the server; files come in through the CLI for now."""
    problems = [(f, "file paths are not accepted over the API") for f in ("images", "attachments")
                if getattr(body, f)]
    if problems:
        raise InvalidInput(problems)
