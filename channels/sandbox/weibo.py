"""A local sandbox of the Weibo API (`/2/statuses/*`) that behaves like the real one.

Same paths, form fields, JSON and error codes: errors are
`{"error", "error_code", "request"}` with HTTP 400 (parameters), 403 (token, limits)
or 5xx (system). The rules are the platform's, counted independently of our adapter
so a wrong count in the adapter shows up here:

- length as channels.weibo_text counts it (the one rule the adapter uses too):
  a link is 20 units whatever its length, ASCII 1, anything else 2;
  ceil(units / 2) ≤ 140 → 20012;
- the status needs a link of the account's safe domain (or a subdomain) → 10017;
- a word of the platform's blocked list (`blocked_words`) → 20021;
- every link is stored and answered as a short link `http://t.cn/XXXXXXX` (the same
  for the same URL); `GET /2/short_url/expand.json` gives the long URL back;
- the same text as a live (not deleted) post of the account → 20019; the same words
  with other links (links and spaces aside) as a live post of the last
  `similar_window_s` (600 s) → 20017;
- posting quotas, counted over stored posts (deleted ones count): per account
  `posts_per_hour` (30) → 10023 and `posts_per_day` (100) → 10024; for the whole app,
  all accounts together, `app_posts_per_hour` (300) → 20016. The `rate_limit` /
  `rate_window_s` faults tighten the account's hourly quota;
- `statuses/show` of a deleted or unknown post → 20101;
- unknown token → 21332; while the `expire_tokens` fault is on → 21327 (Weibo tokens
  are OAuth grants a person renews; clearing the fault stands for that);
- a picture must be JPG/GIF/PNG (20005) under 5 MB (20006).

The busy faults answer only the platform's busy codes (10001, 10009); every other
code comes from the rule above that produces it.

Every post is kept, deleted ones flagged, with the server's receive and store
instants (`/_sandbox/posts`), so tests can prove "exactly once" and measure spread.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
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
from channels.weibo_text import LIMIT, LINK, is_short_link, weibo_length

__all__ = ["create_app", "short_link", "weibo_length"]

CST = dt.timezone(dt.timedelta(hours=8))
PIC_MAX_BYTES = 5 * 1024 * 1024
SHARE, TIMELINE, DESTROY, EXPAND = ("/2/statuses/share.json", "/2/statuses/user_timeline.json",
                                    "/2/statuses/destroy.json", "/2/short_url/expand.json")
SHOW = "/2/statuses/show.json"
BUSY = {10001: ("system error!", 500), 10009: ("Too many pending tasks, system is busy!", 503)}
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HOUR, DAY = 3600.0, 86400.0

Accounts = dict[str, str] | Iterable[tuple[str, str]]


def short_link(url: str) -> str:
    """The t.cn link the platform puts in place of `url`: the same URL, the same link."""
    number = int.from_bytes(hashlib.sha256(url.encode()).digest()[:8], "big")
    code = ""
    for _ in range(7):
        number, digit = divmod(number, 62)
        code += BASE62[digit]
    return f"http://t.cn/{code}"


def words(text: str) -> str:
    """What two statuses must share to be "similar" (20017): the text, links and spaces aside."""
    return re.sub(r"\s+", "", LINK.sub("", text))


class WeiboError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


class WeiboSandbox:
    """All state of one sandbox, in memory, behind one lock."""

    def __init__(self, accounts: Accounts, safe_domain: str, posts_per_hour: int,
                 rate_window_s: float, faults: Faults, *, posts_per_day: int = 100,
                 app_posts_per_hour: int = 300, similar_window_s: float = 600.0,
                 blocked_words: Iterable[str] = ()) -> None:
        pairs = accounts.items() if isinstance(accounts, dict) else accounts
        self.tokens = {str(token): str(uid) for uid, token in pairs}
        self.safe_domain = safe_domain.lower()
        self.posts_per_window = posts_per_hour
        self.rate_window_s = rate_window_s
        self.posts_per_day = posts_per_day
        self.app_posts_per_hour = app_posts_per_hour
        self.similar_window_s = similar_window_s
        self.blocked_words = tuple(blocked_words)
        self.faults = faults
        self.lock = threading.Lock()
        self.ids = itertools.count(5_100_000_000_000_000, 7)  # never reused, even after reset
        self.posts: list[dict[str, Any]] = []
        # indexes, so that a post costs the same whether 10 or 10,000 are kept (a burst of
        # hundreds of accounts must measure the calls, not the sandbox's bookkeeping)
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_uid: dict[str, list[dict[str, Any]]] = {}
        self.stored_times: list[float] = []  # every post's stored_at, in order
        self.short_links: dict[str, str] = {}  # t.cn link → the long URL
        self.requests: Counter[str] = Counter()

    def set_token(self, uid: str, token: str) -> None:
        """(Re-)authorise an account: its old tokens stop working."""
        with self.lock:
            self.tokens = {t: u for t, u in self.tokens.items() if u != uid}
            self.tokens[token] = uid

    def reset(self) -> None:
        with self.lock:
            self.posts.clear()
            self.by_id.clear()
            self.by_uid.clear()
            self.stored_times.clear()
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
        if any(word in text for word in self.blocked_words):
            raise WeiboError(20021, "Content is illegal!")
        hosts = {(urlparse(link).hostname or "").lower() for link in LINK.findall(text)}
        domain = self.safe_domain
        if not any(h == domain or h.endswith("." + domain) for h in hosts):
            raise WeiboError(10017, "parameter (status)'s value invalid,expect (a link of the "
                             f"app's safe domain {domain}), but get (no such link), see doc "
                             "for more info.")

    def shorten(self, text: str) -> str:
        """The text as the platform keeps it: every link a t.cn short link."""
        def one(match: re.Match[str]) -> str:
            url = match.group(0)
            if is_short_link(url):
                return url
            short = short_link(url)
            self.short_links[short] = url
            return short

        with self.lock:
            return LINK.sub(one, text)

    def expand(self, short: str) -> str | None:
        with self.lock:
            return self.short_links.get(short)

    def quota_error(self, uid: str, now: float) -> WeiboError | None:
        """The posting quota this post would exceed, if any (caller holds the lock)."""
        settings = self.faults.now
        limit = self.posts_per_window if settings.rate_limit is None else settings.rate_limit
        window = self.rate_window_s if settings.rate_window_s is None else settings.rate_window_s

        def stored(within: float, account: str | None) -> int:
            if account is None:  # stored_times is in order: count the ones inside the window
                return len(self.stored_times) - bisect.bisect_right(self.stored_times,
                                                                    now - within)
            return sum(1 for p in self.by_uid.get(account, ()) if now - p["stored_at"] < within)

        if stored(window, uid) >= limit:
            return WeiboError(10023, "User requests out of rate limit!", 403)
        if stored(DAY, uid) >= self.posts_per_day:
            return WeiboError(10024, f"User requests for ({SHARE[3:-5]}) out of rate limit!", 403)
        if stored(HOUR, None) >= self.app_posts_per_hour:
            return WeiboError(20016, "Update weibo too fast!")
        return None

    def store(self, uid: str, text: str, pic: bytes | None, rip: str | None,
              received_at: float) -> dict[str, Any]:
        """Apply the account rules and keep the post; one lock, so no two slip through."""
        short = self.shorten(text)
        with self.lock:
            # never before the last stored post: the windows count over stored_times in order
            now = max(time.time(), self.stored_times[-1] if self.stored_times else 0.0)
            refused = self.quota_error(uid, now)
            if refused is not None:
                raise refused
            live = [p for p in self.by_uid.get(uid, ()) if not p["deleted"]]
            if any(p["text"] == short for p in live):
                raise WeiboError(20019, "repeat content!")
            if any(words(p["text"]) == words(short) for p in live
                   if now - p["stored_at"] < self.similar_window_s):
                raise WeiboError(20017, "Repeated weibo text!")
            post_id = next(self.ids)
            post = {"id": post_id, "idstr": str(post_id), "uid": uid, "text": short,
                    "sent_text": text, "received_at": received_at, "stored_at": now,
                    "deleted": False, "deleted_at": None, "has_picture": pic is not None,
                    "pic_sha256": hashlib.sha256(pic).hexdigest() if pic else None,
                    "rip": rip, "answer_dropped": False}
            self.posts.append(post)
            self.by_id[post["idstr"]] = post
            self.by_uid.setdefault(uid, []).append(post)
            self.stored_times.append(now)
            return dict(post)

    def mark_dropped(self, post_id: int) -> None:
        with self.lock:
            if str(post_id) in self.by_id:
                self.by_id[str(post_id)]["answer_dropped"] = True

    def timeline(self, uid: str, count: int, page: int, since_id: int,
                 max_id: int) -> dict[str, Any]:
        with self.lock:
            live = [dict(p) for p in reversed(self.by_uid.get(uid, [])) if not p["deleted"]]
        chosen = [p for p in live if p["id"] > since_id and (not max_id or p["id"] <= max_id)]
        start = (page - 1) * count
        shown = chosen[start:start + count]
        return {"statuses": [status(p) for p in shown], "total_number": len(live),
                "previous_cursor": 0, "hasvisible": False,
                "next_cursor": shown[-1]["id"] - 1 if len(chosen) > start + count else 0}

    def show(self, post_id: str) -> dict[str, Any]:
        with self.lock:
            post = self.by_id.get(post_id.strip())
            if post is None or post["deleted"]:
                raise WeiboError(20101, "target weibo does not exist!")
            return dict(post)

    def destroy(self, uid: str, post_id: str) -> dict[str, Any]:
        with self.lock:
            post = self.by_id.get(post_id.strip())
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
               seed: int = 0, *, posts_per_day: int = 100, app_posts_per_hour: int = 300,
               similar_window_s: float = 600.0, blocked_words: Iterable[str] = ()) -> FastAPI:
    """accounts: uid → access token (or (uid, token) pairs). The state is `app.state.sandbox`."""
    sandbox = WeiboSandbox(accounts, safe_domain, posts_per_hour, rate_window_s,
                           faults or Faults(seed=seed), posts_per_day=posts_per_day,
                           app_posts_per_hour=app_posts_per_hour,
                           similar_window_s=similar_window_s, blocked_words=blocked_words)
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
        if sandbox.faults.take_busy():  # only a busy code: the others come from their rules
            code = sandbox.faults.now.busy_code if sandbox.faults.now.busy_code in BUSY else 10001
            raise WeiboError(code, *BUSY[code])
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

    @app.get(SHOW)
    async def show(request: Request) -> Any:
        try:
            await enter(SHOW, request.query_params.get("access_token"))
            return status(sandbox.show(request.query_params.get("id") or ""))
        except WeiboError as exc:
            return _error(SHOW, exc)

    @app.post(DESTROY)
    async def destroy(request: Request) -> Any:
        try:
            form = await request.form()
            uid = await enter(DESTROY, _text(form.get("access_token")))
            return status(sandbox.destroy(uid, _text(form.get("id"))))
        except WeiboError as exc:
            return _error(DESTROY, exc)

    @app.get(EXPAND)
    async def expand(request: Request) -> Any:
        query = request.query_params
        try:
            await enter(EXPAND, query.get("access_token"))
            shorts = query.getlist("url_short")
            if not shorts:
                raise WeiboError(10016, "miss required parameter (url_short), see doc for more "
                                 "info.")
            if len(shorts) > 20:
                raise WeiboError(10017, "parameter (url_short)'s value invalid,expect (at most "
                                 "20 urls), but get (more), see doc for more info.")
        except WeiboError as exc:
            return _error(EXPAND, exc)
        urls = []
        for short in shorts:
            long = sandbox.expand(short)
            urls.append({"url_short": short, "url_long": long or "", "type": 0,
                         "result": long is not None})
        return {"urls": urls}

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
