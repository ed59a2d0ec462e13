"""Request-level limits, for the API and the console mounted in it: the body limit
(settings.max_request_bytes), and no NUL character in a path or query parameter.

An ASGI middleware, not a check in the handlers: it counts bytes as they arrive, so a body
without Content-Length (chunked) is cut off at the limit instead of being read whole first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised to the app from receive(); whatever the app makes of it, the answer is 413."""


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)  # said up front: nothing is read
            return
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if over:  # the app answered a cut-off body (e.g. 400): replace it with the 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not over:
                raise
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"请求内容过大：上限 {self.limit} 字节"
                                     f" (request body over {self.limit} bytes)"},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class NoNul:
    """A NUL character (%00) in the path or the query string is a 422 naming the parameter,
    answered before any handler runs: no text column takes it (PostgreSQL refuses it), and
    no name, state or channel has one. Bodies are checked by their models' validators."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = self._in_path(scope) + [
            name for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                              keep_blank_values=True)
            if "\x00" in name or "\x00" in value]
        if not fields:
            await self.app(scope, receive, send)
            return
        problems = [{"field": name.replace("\x00", "\\0"),
                     "message": "含有空字符（U+0000），不能使用"} for name in dict.fromkeys(fields)]
        body = json.dumps({"detail": "; ".join(f"{p['field']}: {p['message']}" for p in problems),
                           "problems": problems}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _in_path(self, scope: Scope) -> list[str]:
        if "\x00" not in scope.get("path", ""):  # decoded already
            return []
        for route in self.routes():
            match, child = route.matches(scope)
            if match != Match.NONE:
                named = [k for k, v in child.get("path_params", {}).items() if "\x00" in str(v)]
                if named:
                    return named
        return ["path"]
