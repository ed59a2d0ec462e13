"""The web console (控制台): one sub-application mounted at /console on the API app.

A sub-application rather than a router so that its session handling, CSRF check
and error pages are its own and never touch the bearer-token API beside it.
Every route sits behind `check_csrf` (any POST without the session's token is a
403) and, except the sign-in form, behind a role check (auth.require).

orchestrator/bootstrap.py:make_app mounts it beside the API; the API never imports it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound, Refused, invalid_input
from orchestrator.usecases import users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web import admin, auditing, press, reviews
from orchestrator.web.auth import (
    SignInRequired,
    Viewer,
    check_csrf,
    client_ip,
    flash,
    require,
    session_middleware,
)
from orchestrator.web.pages import HERE, problem_text, redirect, render, root

Anyone = Annotated[Viewer, Depends(require())]


def console_app(ctx: Context) -> FastAPI:
    """The console for one context (database, settings, work queue)."""
    ctx = replace(ctx, origin={"via": "console"})  # audit events say where they came from
    app = FastAPI(title="tongfa console", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(check_csrf)])
    app.state.ctx = ctx
    app.middleware("http")(session_middleware(ctx.settings))
    if ctx.settings.trusted_proxies:  # the client is what a named proxy says; else the peer
        app.add_middleware(ProxyHeadersMiddleware,  # type: ignore[arg-type]
                           trusted_hosts=list(ctx.settings.trusted_proxies))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _errors(app)
    _sign_in(app)

    @app.get("/")
    def home(request: Request, who: Anyone) -> Response:
        return render(request, "home.html", who)

    for module in (press, reviews, admin, auditing):
        app.include_router(module.router)
    return app


def _wants_json(request: Request) -> bool:
    return (request.url.path.endswith(".json")
            or "application/json" in request.headers.get("accept", ""))


def _errors(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    def _sign_in_first(request: Request, _: SignInRequired) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"detail": "请先登录"}, status_code=401)
        return RedirectResponse(f"{root(request)}/login?next={quote(request.url.path)}", 303)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _refused(request, invalid_input(exc.errors()))  # no input echoed back

    @app.exception_handler(Refused)
    def _refused(request: Request, exc: Refused) -> Response:
        status = (404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Forbidden)
                  else 422 if isinstance(exc, InvalidInput) else 409)
        if _wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        title = {404: "找不到", 403: "无权访问", 422: "输入有误"}.get(status, "未能完成")
        return render(request, "error.html", _who_or_none(request), status=status, title=title,
                      message=problem_text(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        title = {403: "请求被拒绝", 404: "找不到页面", 405: "不支持的操作"}.get(exc.status_code, "出错了")
        return render(request, "error.html", _who_or_none(request), status=exc.status_code,
                      title=title, message=str(exc.detail), headers=exc.headers)


def _who_or_none(request: Request) -> Viewer | None:
    try:
        return require()(request)
    except (SignInRequired, Refused):
        return None


def _safe_next(request: Request, target: str) -> str:
    """Only back into the console: never an open redirect."""
    base = root(request)
    if target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return base + "/"


def _sign_in(app: FastAPI) -> None:
    @app.get("/login")
    def login_form(request: Request, next: str = "") -> Response:
        return render(request, "login.html", None, next=next, error="", name="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        target = _safe_next(request, str(form.get("next", "")))
        try:
            with UnitOfWork(request.app.state.ctx) as uow:
                signed = users.sign_in(uow, name, password, client_ip(request))
        except users.TooManyAttempts as exc:
            minutes = max(1, round(exc.retry_after / 60))
            return render(request, "login.html", None, status=429, next=target, name=name,
                          headers={"Retry-After": str(int(exc.retry_after))},
                          error=f"登录失败次数过多，请约 {minutes} 分钟后再试。")
        except Forbidden:
            return render(request, "login.html", None, status=401, next=target, name=name,
                          error="用户名或密码不正确。")
        session = request.state.session
        session.reset()  # a fresh session and CSRF token: no fixation across sign-in
        session["user"], session["gen"] = signed.name, signed.generation
        flash(request, f"{signed.name}，欢迎。")
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    def logout(request: Request) -> Response:
        session = request.state.session
        if session.get("user"):  # ends this person's every session, copied cookies too
            with UnitOfWork(request.app.state.ctx) as uow:
                users.sign_out(uow, session["user"], session.get("gen"))
        session.reset()
        flash(request, "已退出登录。")
        return redirect(request, "/login")

