"""A local sandbox of the Weibo API (`/2/statuses/*`) that behaves like the real one.

Same paths, form fields, JSON and error codes: errors are
`{"error", "error_code", "request"}` with HTTP 400 (parameters), 403 (token, limits)
or 5xx (system). The rules are the platform's, counted independently of our adapter
so a wrong count in the adapter shows up here:

- length: a non-ASCII character is 2 units, ASCII 1, every http(s) link 20 units
  (a t.cn short link) whatever its length; length = ceil(units / 2) ≤ 140 → 20012;
- the status needs a link of the account's safe domain (or a subdomain) → 10017;
- the same text as a live (not deleted) post of the account → 20019;
- posts stored per account within the window (deleted ones count) ≥ limit → 10023;
- unknown token → 21332; while the `expire_tokens` fault is on → 21327 (Weibo tokens
  are OAuth grants a person renews; clearing the fault stands for that);
- a picture must be JPG/GIF/PNG (20005) under 5 MB (20006).

Every post is kept, deleted ones flagged, with the server's receive and store
instants (`/_sandbox/posts`), so tests can prove "exactly once" and measure spread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from channels.sandbox import wirelog
from channels.sandbox.faults import DroppedAnswer, Faults, SandboxApp, image_kind, install_admin

CST = dt.timezone(dt.timedelta(hours=8))
LIMIT = 140
LINK_UNITS = 20
PIC_MAX_BYTES = 5 * 1024 * 1024
# a link runs over URL characters (RFC 3986) only: a space or a 汉字 ends it
LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
SHARE, TIMELINE, DESTROY = ("/2/statuses/share.json", "/2/statuses/user_timeline.json",
                            "/2/statuses/destroy.json")

Accounts = dict[str, str] | Iterable[tuple[str, str]]


def weibo_length(text: str) -> int:
    """The length Weibo shows for a status, in 汉字."""
    units = LINK_UNITS * len(LINK.findall(text))
    units += sum(1 if ord(ch) < 128 else 2 for ch in LINK.sub("", text))
    return math.ceil(units / 2)


class WeiboError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


class WeiboSandbox:
    """All state of one sandbox, in memory, behind one lock."""

    def __init__(self, accounts: Accounts, safe_domain: str, posts_per_hour: int,
                 rate_window_s: float, faults: Faults) -> None:
        pairs = accounts.items() if isinstance(accounts, dict) else accounts
        self.tokens = {str(token): str(uid) for uid, token in pairs}
        self.safe_domain = safe_domain.lower()
        self.posts_per_window = posts_per_hour
        self.rate_window_s = rate_window_s
        self.faults = faults
        self.lock = threading.Lock()
        self.ids = itertools.count(5_100_000_000_000_000, 7)  # never reused, even after reset
        self.posts: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()

    def set_token(self, uid: str, token: str) -> None:
        """(Re-)authorise an account: its old tokens stop working."""
        with self.lock:
            self.tokens = {t: u for t, u in self.tokens.items() if u != uid}
            self.tokens[token] = uid

    def reset(self) -> None:
        with self.lock:
            self.posts.clear()
            self.requests.clear()
        self.faults.reset()

    def all_posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(post) for post in self.posts]

    # ------------------------------------------------------------------ checks

    def account(self, token: str | None) -> str:
        uid = self.tokens.get(token or "")
        if not token:
            raise WeiboError(21301, "auth faild!", 403)
        if uid is None:
            raise WeiboError(21332, "invalid_access_token", 403)
        if self.faults.now.expire_tokens:
            raise WeiboError(21327, "expired_token", 403)
        return uid

    def check_text(self, text: str) -> None:
        if not text.strip():
            raise WeiboError(10016, "miss required parameter (status), see doc for more info.")
        if weibo_length(text) > LIMIT:
            raise WeiboError(20012, "Text too long, please input text less than 140 characters!")
        hosts = {(urlparse(link).hostname or "").lower() for link in LINK.findall(text)}
        domain = self.safe_domain
        if not any(h == domain or h.endswith("." + domain) for h in hosts):
            raise WeiboError(10017, "parameter (status)'s value invalid,expect (a link of the "
                             f"app's safe domain {domain}), but get (no such link), see doc "
                             "for more info.")

    def store(self, uid: str, text: str, pic: bytes | None, rip: str | None,
              received_at: float) -> dict[str, Any]:
        """Apply the account rules and keep the post; one lock, so no two slip through."""
        settings = self.faults.now
        limit = self.posts_per_window if settings.rate_limit is None else settings.rate_limit
        window = self.rate_window_s if settings.rate_window_s is None else settings.rate_window_s
        with self.lock:
            now = time.time()
            mine = [p for p in self.posts if p["uid"] == uid]
            if sum(1 for p in mine if now - p["stored_at"] < window) >= limit:
                raise WeiboError(10023, "User requests out of rate limit!", 403)
            if any(p["text"] == text and not p["deleted"] for p in mine):
                raise WeiboError(20019, "repeat content!")
            post_id = next(self.ids)
            post = {"id": post_id, "idstr": str(post_id), "uid": uid, "text": text,
                    "received_at": received_at, "stored_at": now, "deleted": False,
                    "deleted_at": None, "has_picture": pic is not None,
                    "pic_sha256": hashlib.sha256(pic).hexdigest() if pic else None,
                    "rip": rip, "answer_dropped": False}
            self.posts.append(post)
            return dict(post)

    def mark_dropped(self, post_id: int) -> None:
        with self.lock:
            for post in self.posts:
                if post["id"] == post_id:
                    post["answer_dropped"] = True

    def timeline(self, uid: str, count: int, page: int, since_id: int,
                 max_id: int) -> dict[str, Any]:
        with self.lock:
            live = [dict(p) for p in reversed(self.posts) if p["uid"] == uid and not p["deleted"]]
        chosen = [p for p in live if p["id"] > since_id and (not max_id or p["id"] <= max_id)]
        start = (page - 1) * count
        shown = chosen[start:start + count]
        return {"statuses": [status(p) for p in shown], "total_number": len(live),
                "previous_cursor": 0, "hasvisible": False,
                "next_cursor": shown[-1]["id"] - 1 if len(chosen) > start + count else 0}

    def destroy(self, uid: str, post_id: str) -> dict[str, Any]:
        with self.lock:
            post = next((p for p in self.posts if str(p["id"]) == post_id.strip()), None)
            if post is None or post["deleted"]:
                raise WeiboError(20101, "target weibo does not exist!")
            if post["uid"] != uid:
                raise WeiboError(20102, "not your own weibo!", 403)
            post["deleted"], post["deleted_at"] = True, time.time()
            return dict(post)


def status(post: dict[str, Any]) -> dict[str, Any]:
    """A status object shaped like the real API's."""
    created = dt.datetime.fromtimestamp(post["received_at"], CST)
    uid = post["uid"]
    user = {"id": int(uid) if uid.isdigit() else uid, "idstr": uid,
            "screen_name": f"sandbox_{uid}", "name": f"sandbox_{uid}", "verified": True,
            "verified_type": 1}
    return {"created_at": created.strftime("%a %b %d %H:%M:%S %z %Y"), "id": post["id"],
            "idstr": str(post["id"]), "mid": str(post["id"]), "text": post["text"],
            "textLength": weibo_length(post["text"]) * 2,
            "source": '<a href="https://open.weibo.com" rel="nofollow">tongfa sandbox</a>',
            "favorited": False, "truncated": False, "in_reply_to_status_id": "",
            "in_reply_to_user_id": "", "in_reply_to_screen_name": "", "pic_urls": [],
            "geo": None, "user": user, "reposts_count": 0, "comments_count": 0,
            "attitudes_count": 0, "visible": {"type": 0, "list_id": 0}}


def _error(path: str, exc: WeiboError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "error_code": exc.code, "request": path},
                        status_code=exc.http_status)


def _int(value: Any, default: int, name: str) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise WeiboError(10017, f"parameter ({name})'s value invalid,expect (int), but get "
                         f"({value}), see doc for more info.") from None


def create_app(accounts: Accounts, safe_domain: str = "127.0.0.1", posts_per_hour: int = 30,
               rate_window_s: float = 3600.0, faults: Faults | None = None,
               seed: int = 0) -> FastAPI:
    """accounts: uid → access token (or (uid, token) pairs). The state is `app.state.sandbox`."""
    sandbox = WeiboSandbox(accounts, safe_domain, posts_per_hour, rate_window_s,
                           faults or Faults(seed=seed))
    app = SandboxApp(title="Weibo API sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    wire = wirelog.WireLog("weibo")
    wirelog.install(app, wire)

    def on_wire(form: Any, uid: str, answer: str, accepted: bool, received_at: float) -> None:
        text = _text(form.get("status")) if form is not None else ""
        uid = uid or sandbox.tokens.get(_text(form.get("access_token")) if form else "", "")
        links = LINK.findall(text)
        wire.record(account=uid, operation="statuses/share", create=True,
                    target=links[0] if links else "", content=text, answer=answer,
                    accepted=accepted, received_at=received_at)

    async def enter(path: str, token: str | None) -> str:
        """What every API call goes through first: delay, busy, token."""
        with sandbox.lock:
            sandbox.requests[path] += 1
        await sandbox.faults.delay()
        if sandbox.faults.take_busy():
            code = sandbox.faults.now.busy_code or 10001
            message = "system error!" if code == 10001 else "Too many pending tasks, system is busy!"
            raise WeiboError(code, message, 500 if code == 10001 else 503)
        return sandbox.account(token)

    @app.post(SHARE)
    async def share(request: Request) -> Any:
        received_at, form, uid = time.time(), None, ""
        try:
            form = await request.form()
            uid = await enter(SHARE, _text(form.get("access_token")))
            text = _text(form.get("status"))
            sandbox.check_text(text)
            pic = await _picture(form.get("pic"))
            post = sandbox.store(uid, text, pic, _text(form.get("rip")) or None, received_at)
        except WeiboError as exc:
            on_wire(form, uid, str(exc.code), False, received_at)
            return _error(SHARE, exc)
        mode = sandbox.faults.take_drop()
        on_wire(form, uid, f"dropped:{mode}" if mode else "ok", True, received_at)
        if mode:  # stored, but the client never hears so
            sandbox.mark_dropped(post["id"])
            return DroppedAnswer(mode)
        return status(post)

    @app.get(TIMELINE)
    async def user_timeline(request: Request) -> Any:
        query = request.query_params
        try:
            uid = await enter(TIMELINE, query.get("access_token"))
            count = min(max(_int(query.get("count"), 20, "count"), 1), 100)
            return sandbox.timeline(uid, count, max(_int(query.get("page"), 1, "page"), 1),
                                    _int(query.get("since_id"), 0, "since_id"),
                                    _int(query.get("max_id"), 0, "max_id"))
        except WeiboError as exc:
            return _error(TIMELINE, exc)

    @app.post(DESTROY)
    async def destroy(request: Request) -> Any:
        try:
            form = await request.form()
            uid = await enter(DESTROY, _text(form.get("access_token")))
            return status(sandbox.destroy(uid, _text(form.get("id"))))
        except WeiboError as exc:
            return _error(DESTROY, exc)

    @app.get("/_sandbox/posts")
    def inspect_posts() -> list[dict[str, Any]]:
        return sandbox.all_posts()

    @app.get("/_sandbox/requests")
    def inspect_requests() -> dict[str, int]:
        with sandbox.lock:
            return dict(sandbox.requests)

    @app.post("/_sandbox/accounts")
    async def set_account(request: Request) -> dict[str, str]:
        body = await request.json()
        sandbox.set_token(str(body["uid"]), str(body["access_token"]))
        return {"uid": str(body["uid"])}

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, str]:
        sandbox.reset()
        wire.clear()
        return {"status": "reset"}

    install_admin(app, sandbox.faults)
    return app


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def _picture(value: Any) -> bytes | None:
    if value is None or isinstance(value, str):
        return None
    data = await value.read()
    if image_kind(data) not in ("jpg", "gif", "png"):
        raise WeiboError(20005, "Unsupported image type, only suport JPG, GIF, PNG!")
    if len(data) > PIC_MAX_BYTES:
        raise WeiboError(20006, "Image size too large.")
    return data
