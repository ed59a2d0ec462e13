"""A local sandbox of the Weibo API (`/2/statuses/*`) that behaves like the real one.

Same paths, form fields, JSON and error codes (HTTP 4xx/5xx with
`{"error", "error_code", "request"}`); the same 140-character rule, safe-domain
rule, repeated-content rule and hourly posting limit. It keeps every post with the
instant it was received, so tests can prove "exactly once" and measure spread.
Faults are set per test through `POST /_sandbox/faults`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import threading
import time
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from channels.weibo import LIMIT, URL, weibo_length

CST = dt.timezone(dt.timedelta(hours=8))


class WeiboState:
    def __init__(self, accounts: dict[str, str], safe_domain: str, posts_per_hour: int) -> None:
        self.tokens = {token: uid for uid, token in accounts.items()}
        self.safe_domain = safe_domain
        self.posts_per_hour = posts_per_hour
        self.posts: list[dict[str, Any]] = []
        self.ids = itertools.count(5_100_000_000_000_000)
        self.lock = threading.Lock()
        self.faults: dict[str, Any] = {}
        self.rng = random.Random(0)
        self.expired: set[str] = set()


def _error(path: str, code: int, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message, "error_code": code, "request": path}, status_code=status)


def create_app(accounts: dict[str, str], safe_domain: str = "127.0.0.1",
               posts_per_hour: int = 30) -> FastAPI:
    """accounts: uid -> access token."""
    state = WeiboState(accounts, safe_domain, posts_per_hour)
    app = FastAPI(title="Weibo API sandbox")
    app.state.weibo = state

    async def _common(request: Request, token: str | None) -> JSONResponse | str:
        faults = state.faults
        if faults.get("latency_ms"):
            await asyncio.sleep(faults["latency_ms"] / 1000)
        if faults.get("busy_next", 0) > 0:  # the next N calls find the system busy
            faults["busy_next"] -= 1
            return _error(request.url.path, 10001, "system error", 500)
        if faults.get("busy_share", 0) and state.rng.random() < faults["busy_share"]:
            return _error(request.url.path, 10001, "system error", 500)
        uid = state.tokens.get(token or "")
        if uid is None:
            return _error(request.url.path, 21332, "invalid_access_token", 403)
        if uid in state.expired or faults.get("expire_tokens"):
            return _error(request.url.path, 21327, "expired_token", 403)
        return uid

    @app.post("/2/statuses/share.json")
    async def share(request: Request) -> Any:
        form = await request.form()
        path = request.url.path
        who = await _common(request, form.get("access_token"))
        if isinstance(who, JSONResponse):
            return who
        text = str(form.get("status") or "")
        if not text:
            return _error(path, 10016, "miss required parameter (status)")
        if weibo_length(text) > LIMIT:
            return _error(path, 20012, "Text too long, please input text less than 140 characters!")
        if not any(urlparse(u).hostname == state.safe_domain for u in URL.findall(text)):
            return _error(path, 10017, "parameter (status)'s value invalid, expect "
                          "(a link of the safe domain)")
        now = time.time()
        with state.lock:
            mine = [p for p in state.posts if p["uid"] == who and not p["deleted"]]
            window = state.faults.get("rate_window_s", 3600)
            limit = state.faults.get("rate_limit", state.posts_per_hour)
            if len([p for p in mine if now - p["received_at"] < window]) >= limit:
                return _error(path, 10023, "User requests out of rate limit!", 403)
            if any(p["text"] == text for p in mine):
                return _error(path, 20019, "repeat content!")
            post = {"id": next(state.ids), "uid": who, "text": text, "received_at": now,
                    "deleted": False, "has_picture": "pic" in form}
            state.posts.append(post)
            drop = state.faults.get("drop_responses", 0)
            if drop:
                state.faults["drop_responses"] = drop - 1
        if drop:  # stored, but the client never hears so
            return JSONResponse({"error": "gateway timeout"}, status_code=504)
        return _status(post)

    @app.get("/2/statuses/user_timeline.json")
    async def timeline(request: Request, access_token: str = "", count: int = 20) -> Any:
        who = await _common(request, access_token)
        if isinstance(who, JSONResponse):
            return who
        with state.lock:
            mine = [p for p in state.posts if p["uid"] == who and not p["deleted"]]
        return {"statuses": [_status(p) for p in reversed(mine)][:count],
                "total_number": len(mine)}

    @app.post("/2/statuses/destroy.json")
    async def destroy(request: Request) -> Any:
        form = await request.form()
        who = await _common(request, form.get("access_token"))
        if isinstance(who, JSONResponse):
            return who
        with state.lock:
            post = next((p for p in state.posts if str(p["id"]) == str(form.get("id"))
                         and p["uid"] == who and not p["deleted"]), None)
            if post is None:
                return _error(request.url.path, 20101, "target weibo does not exist!")
            post["deleted"] = True
        return _status(post)

    @app.get("/_sandbox/posts")
    def inspect_posts() -> list[dict[str, Any]]:
        with state.lock:
            return [dict(p) for p in state.posts]

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        state.faults = await request.json()
        return state.faults

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, str]:
        with state.lock:
            state.posts.clear()
            state.faults = {}
        return {"status": "reset"}

    return app


def _status(post: dict[str, Any]) -> dict[str, Any]:
    created = dt.datetime.fromtimestamp(post["received_at"], CST)
    return {"id": post["id"], "idstr": str(post["id"]), "mid": str(post["id"]),
            "created_at": created.strftime("%a %b %d %H:%M:%S %z %Y"), "text": post["text"],
            "user": {"id": int(post["uid"]) if post["uid"].isdigit() else post["uid"],
                     "idstr": post["uid"]}}
