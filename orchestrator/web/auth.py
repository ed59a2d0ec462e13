"""Who is at the console: the signed session cookie, CSRF, the client's address, role checks.

The session lives in a cookie signed with itsdangerous, so any number of API processes
can serve the console. It carries the user's name, their session generation, the CSRF
token and one-shot messages. On every request the database is asked whether the person
still exists, is not disabled and has the same generation (sign-out, a password change
and disabling bump it: a copied cookie dies with them), and what roles they hold now.
The cookie is set by hand rather than by Starlette's SessionMiddleware because the
Secure flag must follow the request (TLS terminated by a proxy says so with
X-Forwarded-Proto).

The client's address (for the sign-in throttle, users.sign_in) is the socket peer;
X-Forwarded-For is believed only from a proxy named in settings.trusted_proxies,
through uvicorn's ProxyHeadersMiddleware (see console_app).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from orchestrator.domain.access import SIGNING_ROLES, Duty, Op, Principal, has_duty, may_ever
from orchestrator.domain.errors import Forbidden
from orchestrator.settings import Settings
from orchestrator.store.secrets import key_file
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.usecases.users import session_user

COOKIE = "tongfa_console"
SESSION_SECONDS = 8 * 3600  # one working day; then sign in again

# The console's rooms; who enters which is the access policy's (domain/access.py)
PRESS, REVIEW, CHANNELS, AUDIT = "press", "review", "channels", "audit"


def rooms(p: Principal) -> dict[str, bool]:
    return {PRESS: p.holds("author"), REVIEW: p.holds(*SIGNING_ROLES),
            CHANNELS: has_duty(p, Duty.CHANNELS), AUDIT: has_duty(p, Duty.AUDIT)}



def session_key(settings: Settings) -> bytes:
    """Derived from TONGFA_SECRET_KEY when set (every process agrees); else a key file."""
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value().encode()
        return hmac.new(secret, b"tongfa console session v1", sha256).digest()
    return key_file(Path(settings.var_dir) / "console.key",
                    lambda: secrets.token_hex(32).encode())


class ConsoleSession(dict[str, Any]):
    """A dict that knows whether it must be written back to the cookie."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            self.modified = True
        return super().pop(key, default)

    def reset(self) -> None:
        """A new session (after sign-in or sign-out): no fixation, a fresh CSRF token."""
        self.clear()
        self.modified = True


@dataclass
class Viewer:
    """The signed-in person, with the roles the database holds for them now."""

    name: str
    roles: list[str] = field(default_factory=list)

    @property
    def principal(self) -> Principal:
        return Principal.of(self.name, self.roles)

    @property
    def rooms(self) -> dict[str, bool]:
        return rooms(self.principal)


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, JSON answers 401."""


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" or request.url.scheme == "https"


def client_ip(request: Request) -> str:
    """The peer, or what a trusted proxy says the client is (ProxyHeadersMiddleware)."""
    return request.client.host if request.client else "unknown"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form gets one too)."""
    session: ConsoleSession = request.state.session
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's token (form field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get("x-csrf-token", "")
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get("csrf", ""))
    expected = request.state.session.get("csrf", "")
    if not sent or not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise HTTPException(403, "表单已失效或缺少校验码（CSRF），请刷新页面后重试。")


def flash(request: Request, message: str, level: str = "ok") -> None:
    """A message shown once on the next page (after a redirect)."""
    session: ConsoleSession = request.state.session
    session["flash"] = [*session.get("flash", []), [level, message]]


def viewer(request: Request) -> Viewer:
    """The signed-in person or SignInRequired (removed, disabled, signed out elsewhere or
    with a changed password since this session began: signed out here too)."""
    session: ConsoleSession = request.state.session
    name = session.get("user")
    if not name:
        raise SignInRequired()
    ctx: Context = request.app.state.ctx
    with UnitOfWork(ctx) as uow:
        user = session_user(uow.session, name, session.get("gen"))
        if user is None:
            session.reset()
            raise SignInRequired()
        return Viewer(user.name, list(user.roles))


def require(room: str | Op | None = None) -> Callable[[Request], Viewer]:
    """A dependency: the signed-in viewer, who must be let into `room`, or be someone who
    may do the operation to some release at all (access.may_ever); None = anyone."""

    def dependency(request: Request) -> Viewer:
        who = viewer(request)
        if room is None:
            return who
        allowed = may_ever(who.principal, room) if isinstance(room, Op) else who.rooms[room]
        if not allowed:
            raise Forbidden(f"{who.name} 没有访问此页面所需的角色")
        return who

    return dependency


def session_middleware(settings: Settings) -> Callable[..., Awaitable[Response]]:
    """Load the session before a request; write it back (signed, flagged) after."""
    signer = URLSafeTimedSerializer(session_key(settings), salt="tongfa-console")

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                         ) -> Response:
        data: dict[str, Any] = {}
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                loaded = signer.loads(raw, max_age=SESSION_SECONDS)
                data = loaded if isinstance(loaded, dict) else {}
            except BadSignature:
                data = {}
        session = ConsoleSession(data)
        request.state.session = session
        response = await call_next(request)
        if session.modified:
            path = request.scope.get("root_path", "") or "/"
            if session:
                response.set_cookie(COOKIE, signer.dumps(dict(session)), max_age=SESSION_SECONDS,
                                    path=path, httponly=True, samesite="lax",
                                    secure=is_https(request))
            else:
                response.delete_cookie(COOKIE, path=path, httponly=True, samesite="lax",
                                       secure=is_https(request))
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if "/static/" not in request.url.path:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return middleware


SECURITY_HEADERS = {
    # the console's own scripts only; website previews sit in sandboxed srcdoc frames
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline' http: https:; "
        "img-src 'self' data: http: https:; frame-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'self'; object-src 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
