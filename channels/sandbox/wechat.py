"""A local sandbox of the WeChat official-account API (`/cgi-bin/*`) that behaves like the real one.

Errors are `{"errcode": N, "errmsg": "... rid: ..."}` with HTTP 200. What it models:

- tokens: `GET /cgi-bin/token` issues a new token on each call; the previous one
  stays valid for `token_grace` (5 min), then answers 40001. Tokens expire after
  `token_ttl` → 42001; the `expire_tokens` fault expires every token issued so far.
  `POST /cgi-bin/stable_token` (a separate family, as on the platform) gives the same
  token while more than `stable_margin` is left, then a new one (the old one stays
  valid); `force_refresh` revokes the old one at once and is limited to
  `force_refresh_daily` a day, `force_refresh_spacing` s apart (→ 45009);
- images: permanent material → media_id (+ URL for images); in-body images
  (`media/uploadimg`, JPG/PNG < 1 MB) → a URL on this host, served at `/mmbiz/`;
- drafts: title ≤ 32 (45003), author ≤ 16 (45110), digest ≤ 128 (45004), content
  < 20 000 characters and < 1 MB (45002), thumb an image material of the account
  (40007), no script, images only from this host's uploads, links only to
  mp.weixin.qq.com articles (45166), at most 8 articles (45008);
- publishing is asynchronous: status 1 for `publish_seconds`, then 0 (the draft
  leaves the draft box; the article is served at `/s/<article_id>`), 4 with the
  `audit_reject` fault, or 2/3 with `publish_fail_status` (the draft stays and can
  be submitted again). Submitting a draft already submitted (and not failed) → 53503;
  an unknown draft → 40007; an unknown publish_id or article_id → 53600 (the docs
  name no code for these: the sandbox's choice). When a job ends, the PUBLISHJOBFINISH
  event is POSTed to the callback URL, signed like the platform (sha1 of the sorted
  token, timestamp, nonce), up to 3 tries.

Rules of the account: a caller not on `ip_whitelist` → 40164; an API in
`unauthorized_apis` → 48001.

Faults (see faults.py): busy → -1; `quota_exhausted` → 45009 on every call;
`rate_limit`/`rate_window_s` (tighter than `publish_daily_limit`, 100 a day) → 45009
on `freepublish/submit`; `drop_responses` →
`freepublish/submit` starts the job but its answer is lost (504 or a closed connection).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from channels.sandbox import wirelog
from channels.sandbox.faults import DroppedAnswer, Faults, SandboxApp, image_kind, install_admin

MSG = {-1: "system error", 40001: "invalid credential, access_token is invalid or not latest",
       40002: "invalid grant_type", 40004: "invalid media type", 40005: "invalid file type",
       40006: "invalid meida size", 40007: "invalid media_id", 40009: "invalid image size",
       40013: "invalid appid", 40097: "invalid args", 40125: "invalid appsecret",
       41001: "access_token missing", 41002: "appid missing", 41004: "appsecret missing",
       41005: "media data missing", 42001: "access_token expired", 44002: "empty post data",
       44003: "empty news data", 45002: "content size out of limit",
       45003: "title size out of limit", 45004: "description size out of limit",
       45008: "article size out of limit", 45009: "reach max api daily quota limit",
       45110: "author size out of limit", 45166: "invalid content hint",
       40164: "invalid ip, not in whitelist", 48001: "api unauthorized",
       47001: "data format error", 53503: "draft did not pass the publish check",
       53504: "the draft must be opened on the mp.weixin.qq.com platform to be used",
       53505: "the draft must be saved by hand before it can be published",
       53600: "invalid article_id"}
LIMITS = {"title": (32, 45003), "author": (16, 45110), "digest": (128, 45004)}
MEDIA_TYPES = {"image": 10 << 20, "thumb": 64 << 10, "voice": 2 << 20, "video": 10 << 20}
IMG = re.compile(r"<img\b[^>]*?\b(?:data-)?src\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE)
HREF = re.compile(r"<a\b[^>]*?\bhref\s*=\s*[\"']?([^\"'\s>]*)", re.IGNORECASE)
ACTIVE = re.compile(r"<\s*(script|iframe|form|object|embed)\b|javascript:", re.IGNORECASE)
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
Job = dict[str, Any]


class WeChatError(Exception):
    def __init__(self, code: int, hint: str = "") -> None:
        super().__init__(MSG.get(code, "error"))
        self.code, self.hint = code, hint


@dataclasses.dataclass
class WeChatConfig:
    """The platform's timings and limits; tests shorten them."""

    token_ttl: float = 7200.0
    token_grace: float = 300.0  # an old /token token stays valid this long
    stable_margin: float = 300.0  # stable_token renews this long before expiry
    force_refresh_daily: int = 20
    force_refresh_spacing: float = 30.0
    token_daily_limit: int = 2000
    callback_url: str | None = None  # where PUBLISHJOBFINISH events go
    callback_token: str | None = None  # the token they are signed with
    publish_daily_limit: int = 100  # freepublish/submit calls a day per account → 45009
    ip_whitelist: tuple[str, ...] | None = None  # callers allowed (None: any) → 40164
    unauthorized_apis: tuple[str, ...] = ()  # APIs the account may not call → 48001


class WeChatSandbox:
    """All state of one sandbox, in memory, behind one lock; one method per API."""

    def __init__(self, accounts: dict[str, str], faults: Faults, config: WeChatConfig) -> None:
        self.secrets, self.faults, self.config = accounts, faults, config
        self.lock = threading.RLock()
        self.serial = itertools.count(1)  # ids are never reused, even after a reset
        self.publish_ids = itertools.count(2_247_483_001)
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.generation += 1  # publishing timers of before the reset do nothing
            self.tokens: dict[str, dict[str, Any]] = {}
            self.issued: Counter[str] = Counter()
            self.force_times: dict[str, list[float]] = {}
            self.materials: dict[str, dict[str, Any]] = {}
            self.images: dict[str, tuple[bytes, str]] = {}  # /mmbiz/<name> → bytes, type
            self.drafts: dict[str, dict[str, Any]] = {}
            self.jobs: dict[int, Job] = {}
            self.callbacks: list[dict[str, Any]] = []
            self.requests: Counter[str] = Counter()
        self.faults.reset()

    def new_id(self, length: int) -> str:
        """An opaque id like the platform's."""
        seed, raw = f"{next(self.serial)}/{time.time_ns()}", b""
        while len(raw) < length:
            raw += hashlib.sha256(f"{seed}/{len(raw)}".encode()).digest()
        return "".join(B64[b % 64] for b in raw[:length])

    # ------------------------------------------------------------------ tokens

    def credentials(self, grant_type: Any, appid: Any, secret: Any) -> str:
        if grant_type != "client_credential":
            raise WeChatError(40002)
        if not appid:
            raise WeChatError(41002)
        if appid not in self.secrets:
            raise WeChatError(40013)
        if not secret:
            raise WeChatError(41004)
        if secret != self.secrets[appid]:
            raise WeChatError(40125)
        self.check_quota()
        return str(appid)

    def issue(self, appid: str, kind: str) -> dict[str, Any]:
        now = time.time()
        token = {"value": "sbx" + self.new_id(133), "appid": appid, "kind": kind,
                 "issued_at": now, "expires_at": now + self.config.token_ttl,
                 "valid_until": math.inf}
        with self.lock:
            if sum(1 for t in self.tokens.values() if t["appid"] == appid and t["kind"] == kind
                   and now - t["issued_at"] < 86400) >= self.config.token_daily_limit:
                raise WeChatError(45009)
            self.tokens[token["value"]] = token
            self.issued[f"{appid}/{kind}"] += 1
        return token

    def plain_token(self, appid: str) -> dict[str, Any]:
        """/cgi-bin/token: a new token; the previous ones live on for the grace period."""
        with self.lock:
            new = self.issue(appid, "token")
            for old in self.tokens.values():
                if old["appid"] == appid and old["kind"] == "token" and old is not new:
                    old["valid_until"] = min(old["valid_until"], new["issued_at"]
                                             + self.config.token_grace)
            return new

    def stable_token(self, appid: str, force: bool) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            live = [t for t in self.tokens.values() if t["appid"] == appid
                    and t["kind"] == "stable" and self.problem(t, now) is None]
            if force:
                times = [t for t in self.force_times.get(appid, []) if now - t < 86400]
                if len(times) >= self.config.force_refresh_daily:
                    raise WeChatError(45009, "force_refresh daily limit")
                if times and now - times[-1] < self.config.force_refresh_spacing:
                    raise WeChatError(45009, "force_refresh too frequent")
                self.force_times[appid] = [*times, now]
                for old in live:
                    old["valid_until"] = now
            else:
                newest = max(live, key=lambda t: t["issued_at"], default=None)
                if newest and newest["expires_at"] - now > self.config.stable_margin:
                    return newest
            return self.issue(appid, "stable")

    def problem(self, token: dict[str, Any], now: float) -> int | None:
        if now >= token["valid_until"]:
            return 40001
        if now >= token["expires_at"] or token["issued_at"] <= self.faults.expired_before:
            return 42001
        return None

    def account(self, value: str | None) -> str:
        if not value:
            raise WeChatError(41001)
        with self.lock:
            token = self.tokens.get(value)
            code = 40001 if token is None else self.problem(token, time.time())
        if code or token is None:
            raise WeChatError(code or 40001)
        self.check_quota()
        return str(token["appid"])

    def check_quota(self) -> None:
        if self.faults.now.quota_exhausted or self.faults.planned("quota"):
            raise WeChatError(45009)

    # ------------------------------------------------------------------ images

    def material_add_material(self, appid: str, body: dict[str, Any], ctx: dict) -> Any:
        media, data, kind = body["type"], body["media"], image_kind(body["media"])
        if media not in MEDIA_TYPES:
            raise WeChatError(40004)
        if media in ("image", "thumb") and (kind is None or (media == "thumb" and kind != "jpg")):
            raise WeChatError(40005)
        if len(data) > MEDIA_TYPES[media]:
            raise WeChatError(40009 if media in ("image", "thumb") else 40006)
        media_id = self.new_id(43)
        url = self.add_image(data, kind, ctx["base"]) if kind else None
        self.materials[media_id] = {"appid": appid, "type": media, "url": url,
                                    "sha256": hashlib.sha256(data).hexdigest()}
        return {"media_id": media_id, "url": url} if media == "image" else {"media_id": media_id}

    def media_uploadimg(self, appid: str, body: dict[str, Any], ctx: dict) -> Any:
        kind = image_kind(body["media"])
        if kind not in ("jpg", "png"):
            raise WeChatError(40005)
        if len(body["media"]) >= 1 << 20:
            raise WeChatError(40009)
        return {"url": self.add_image(body["media"], kind, ctx["base"])}

    def add_image(self, data: bytes, kind: str, base: str) -> str:
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.{kind}"
        with self.lock:
            self.images[name] = (data, "image/jpeg" if kind == "jpg" else f"image/{kind}")
        return f"{base}/mmbiz/{name}"

    def is_ours(self, url: str, base: str) -> bool:
        parts = urlsplit(url)
        path = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return path.startswith(f"{base}/mmbiz/") and path.rsplit("/", 1)[-1] in self.images

    # ------------------------------------------------------------------ drafts

    def check_article(self, appid: str, article: Any, base: str) -> dict[str, Any]:
        if not isinstance(article, dict):
            raise WeChatError(47001)
        fields = {k: article.get(k) for k in ("title", "author", "digest", "content",
                                              "content_source_url", "thumb_media_id")}
        if any(v is not None and not isinstance(v, str) for v in fields.values()):
            raise WeChatError(47001)
        a = {k: v or "" for k, v in fields.items()}
        if not a["title"] or not a["content"]:
            raise WeChatError(44003)
        for field, (limit, code) in LIMITS.items():
            if len(a[field]) > limit:
                raise WeChatError(code)
        if len(a["content"]) >= 20000 or len(a["content"].encode()) >= 1 << 20:
            raise WeChatError(45002)
        thumb = self.materials.get(a["thumb_media_id"]) or {}
        if thumb.get("appid") != appid or thumb.get("type") not in ("image", "thumb"):
            raise WeChatError(40007)
        if ACTIVE.search(a["content"]):
            raise WeChatError(45166, "script")
        if not all(self.is_ours(src, base) for src in IMG.findall(a["content"])):
            raise WeChatError(45166, "img")
        for href in map(urlsplit, HREF.findall(a["content"])):
            if href.hostname != "mp.weixin.qq.com" or not href.path.startswith("/s"):
                raise WeChatError(45166, "link")
        for flag in ("need_open_comment", "only_fans_can_comment"):
            a[flag] = article.get(flag, 0)
            if a[flag] not in (0, 1):
                raise WeChatError(47001)
        return a

    def draft(self, appid: str, media_id: Any) -> dict[str, Any]:
        found = self.drafts.get(str(media_id or ""))
        if found is None or found["appid"] != appid:
            raise WeChatError(40007)
        return found

    def draft_add(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        articles = body.get("articles")
        if not isinstance(articles, list) or not articles:
            raise WeChatError(44003)
        if len(articles) > 8:
            raise WeChatError(45008)
        checked = [self.check_article(appid, a, ctx["base"]) for a in articles]
        media_id = self.new_id(43)
        self.drafts[media_id] = {"id": media_id, "appid": appid, "articles": checked,
                                 "state": "draft", "created_at": ctx["received_at"]}
        return {"media_id": media_id}

    def draft_get(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        found = self.draft(appid, body.get("media_id"))
        return {"news_item": [dict(a) for a in found["articles"]],
                "create_time": int(found["created_at"]), "update_time": int(found["created_at"])}

    def draft_delete(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        found = self.draft(appid, body.get("media_id"))
        if found["state"] != "draft":
            raise WeChatError(53503)
        del self.drafts[found["id"]]
        return {"errcode": 0, "errmsg": "ok"}

    # ------------------------------------------------------------------ publishing

    def freepublish_submit(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        settings, received_at = self.faults.now, ctx["received_at"]
        found = self.draft(appid, body.get("media_id"))
        if found["state"] != "draft":
            raise WeChatError(53503)
        limit = self.config.publish_daily_limit
        window = 86400.0
        if settings.rate_limit is not None:
            limit, window = settings.rate_limit, settings.rate_window_s or 86400.0
        if sum(1 for j in self.jobs.values() if j["appid"] == appid and
               received_at - j["published_at"] < window) >= limit:
            raise WeChatError(45009)
        found["state"] = "publishing"
        outcome = 4 if settings.audit_reject else (settings.publish_fail_status or 0)
        job = {"publish_id": next(self.publish_ids), "appid": appid, "draft_id": found["id"],
               "articles": [dict(a) for a in found["articles"]], "status": 1, "outcome": outcome,
               "published_at": received_at, "finish_at": time.time() + settings.publish_seconds,
               "finished_at": None, "article_id": None, "deleted": set(), "base": ctx["base"],
               "answer_dropped": False}
        self.jobs[job["publish_id"]] = job
        timer = threading.Timer(settings.publish_seconds, self.finish,
                                (job["publish_id"], self.generation))
        timer.daemon = True
        timer.start()
        drop = self.faults.take_drop()
        if drop:  # the job is under way, but the client never hears so
            job["answer_dropped"] = True
            return DroppedAnswer(drop)
        return {"errcode": 0, "errmsg": "ok", "publish_id": job["publish_id"],
                "msg_data_id": job["publish_id"] + 1_000_000_000}

    def settle(self, job: Job) -> Job:
        """Ends a publishing job once its time has come (under the lock)."""
        if job["status"] == 1 and time.time() >= job["finish_at"]:
            job["status"], job["finished_at"] = job["outcome"], job["finish_at"]
            if job["status"] == 0:
                job["article_id"] = self.new_id(43)
                self.drafts.pop(job["draft_id"], None)  # a published draft leaves the box
            elif job["draft_id"] in self.drafts:
                self.drafts[job["draft_id"]]["state"] = "draft"
        return job

    def finish(self, publish_id: int, generation: int) -> None:
        with self.lock:
            job = self.jobs.get(publish_id)
            if job is None or generation != self.generation:
                return
            status = self.status(self.settle(job))
            url, token = self.config.callback_url, self.config.callback_token
        if url:
            self.send_event(job, status, url, token or "")

    def article_job(self, appid: str | None, article_id: Any) -> Job:
        for job in self.jobs.values():
            if self.settle(job)["article_id"] == article_id and appid in (None, job["appid"]):
                return job
        raise WeChatError(53600)

    def status(self, job: Job) -> dict[str, Any]:
        n = len(job["articles"])
        shown = 5 if job["status"] == 0 and len(job["deleted"]) == n else job["status"]
        answer: dict[str, Any] = {"publish_id": job["publish_id"], "publish_status": shown,
                                  "fail_idx": list(range(1, n + 1)) if shown in (2, 4) else []}
        if job["article_id"]:
            answer["article_id"] = job["article_id"]
            answer["article_detail"] = {"count": n, "item": [
                {"idx": i, "article_url": article_url(job, i)} for i in range(1, n + 1)]}
        return answer

    def freepublish_get(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        job = self.jobs.get(int(body["publish_id"])) if str(
            body.get("publish_id", "")).isdigit() else None
        if job is None or job["appid"] != appid:
            raise WeChatError(53600, "publish_id")
        return self.status(self.settle(job))

    def freepublish_delete(self, appid: str, body: dict[str, Any], ctx: dict[str, Any]) -> Any:
        job = self.article_job(appid, body.get("article_id"))
        index, n = body.get("index") or 0, len(job["articles"])
        if not isinstance(index, int) or not 0 <= index <= n:
            raise WeChatError(40097)
        job["deleted"] |= set(range(1, n + 1)) if index == 0 else {index}
        return {"errcode": 0, "errmsg": "ok"}

    def freepublish_getarticle(self, appid: str, body: dict[str, Any], ctx: dict) -> Any:
        job = self.article_job(appid, body.get("article_id"))
        return {"news_item": [news_item(job, i) for i in range(1, len(job["articles"]) + 1)]}

    def freepublish_batchget(self, appid: str, body: dict[str, Any], ctx: dict) -> Any:
        offset, count = body.get("offset", 0), body.get("count", 20)
        if not isinstance(offset, int) or not isinstance(count, int) or not 1 <= count <= 20:
            raise WeChatError(40097)
        done = [j for j in reversed(self.jobs.values())
                if self.settle(j)["appid"] == appid and j["article_id"]]
        items = [{"article_id": j["article_id"], "update_time": int(j["finished_at"]),
                  "content": {"news_item": [news_item(j, i, not body.get("no_content"))
                                            for i in range(1, len(j["articles"]) + 1)],
                              "create_time": int(j["published_at"]),
                              "update_time": int(j["finished_at"])}}
                 for j in done[offset:offset + count]]
        return {"total_count": len(done), "item_count": len(items), "item": items}

    def send_event(self, job: Job, status: dict[str, Any], url: str, token: str) -> None:
        """POST the PUBLISHJOBFINISH event as the platform does (3 tries, 5 s each)."""
        timestamp, nonce = str(int(time.time())), str(next(self.serial) * 7919 % 10**9)
        signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
        record: dict[str, Any] = {"publish_id": job["publish_id"], "url": url, "attempts": 0,
                                  "status_code": None, "sent_at": time.time()}
        for _ in range(3):
            record["attempts"] += 1
            try:
                answer = requests.post(url, params={"signature": signature, "timestamp":
                                                    timestamp, "nonce": nonce},
                                       data=event_xml(job, status, int(timestamp)).encode(),
                                       headers={"Content-Type": "text/xml"}, timeout=5)
                record["status_code"] = answer.status_code
                break
            except requests.RequestException as exc:
                record["error"] = type(exc).__name__
        with self.lock:
            self.callbacks.append(record)


    def inspect(self, what: str) -> Any:
        """What `GET /_sandbox/<what>` shows."""
        if what == "articles":
            return [{**{k: v for k, v in self.settle(j).items()
                        if k not in ("deleted", "base", "outcome")},
                     "deleted": len(j["deleted"]) == len(j["articles"]),
                     "deleted_idx": sorted(j["deleted"]),
                     "urls": [article_url(j, i) for i in range(1, len(j["articles"]) + 1)]
                     if j["article_id"] else []} for j in self.jobs.values()]
        if what == "tokens":
            return {"issued": sum(self.issued.values()), "by_app": dict(self.issued)}
        return {"requests": dict(self.requests),
                "callbacks": [dict(c) for c in self.callbacks]}.get(what)


APIS: dict[str, Callable[..., Any]] = {
    name: getattr(WeChatSandbox, name.replace("/", "_"))
    for name in ("material/add_material", "media/uploadimg", "draft/add", "draft/get",
                 "draft/delete", "freepublish/submit", "freepublish/get", "freepublish/delete",
                 "freepublish/getarticle", "freepublish/batchget")}
MEDIA_APIS = ("material/add_material", "media/uploadimg")


def article_url(job: Job, idx: int) -> str:
    return f"{job['base']}/s/{job['article_id']}" + (f"?idx={idx}" if idx > 1 else "")


def news_item(job: Job, idx: int, with_content: bool = True) -> dict[str, Any]:
    item = {**job["articles"][idx - 1], "url": article_url(job, idx),
            "is_deleted": idx in job["deleted"]}
    return item if with_content else {k: v for k, v in item.items() if k != "content"}


def event_xml(job: Job, status: dict[str, Any], created: int) -> str:
    detail = ""
    if status.get("article_id"):
        items = "".join(f"<item><idx>{i['idx']}</idx><article_url><![CDATA[{i['article_url']}]]>"
                        "</article_url></item>" for i in status["article_detail"]["item"])
        detail = (f"<article_id><![CDATA[{status['article_id']}]]></article_id><article_detail>"
                  f"<count>{status['article_detail']['count']}</count>{items}</article_detail>")
    fails = "".join(f"<fail_idx>{i}</fail_idx>" for i in status["fail_idx"])
    origin = "gh_" + hashlib.md5(job["appid"].encode()).hexdigest()[:12]
    return (f"<xml><ToUserName><![CDATA[{origin}]]></ToUserName><FromUserName><![CDATA["
            f"o{hashlib.md5(origin.encode()).hexdigest()[:27]}]]></FromUserName><CreateTime>"
            f"{created}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA["
            f"PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>{job['publish_id']}"
            f"</publish_id><publish_status>{status['publish_status']}</publish_status>{detail}"
            f"{fails}</PublishEventInfo></xml>")


def article_page(article: dict[str, Any] | None) -> str:
    if article is None:
        return "<p>该内容已被发布者删除</p>"
    title = html.escape(article["title"])
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
            f'<body><h1 id="activity-name">{title}</h1><span id="js_author_name">'
            f'{html.escape(article["author"])}</span><div id="js_content">{article["content"]}'
            "</div></body></html>")


def _error(exc: WeChatError) -> JSONResponse:
    hint = f" hint: [{exc.hint}]" if exc.hint else ""
    rid = hashlib.md5(str(time.time_ns()).encode()).hexdigest()[:24]
    return JSONResponse({"errcode": exc.code, "errmsg": f"{MSG.get(exc.code)}{hint} rid: {rid}"})


async def _json(request: Request) -> dict[str, Any]:
    """Real bodies are UTF-8 JSON with Chinese unescaped; escaped is accepted too."""
    raw = await request.body()
    if not raw.strip():
        raise WeChatError(44002)
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    return body


async def _media(request: Request) -> bytes:
    upload = (await request.form()).get("media")
    data = b"" if upload is None or isinstance(upload, str) else await upload.read()
    if not data:
        raise WeChatError(41005)
    return data


def create_app(accounts: dict[str, str] | Iterable[tuple[str, str]], *,
               faults: Faults | None = None, seed: int = 0, **config: Any) -> FastAPI:
    """accounts: appid → appsecret; config: `WeChatConfig` fields. State: `app.state.sandbox`."""
    pairs = dict(accounts.items() if isinstance(accounts, dict) else accounts)
    sandbox = WeChatSandbox(pairs, faults or Faults(seed=seed), WeChatConfig(**config))
    app = SandboxApp(title="WeChat official-account API sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    install_admin(app, sandbox.faults)
    wire = wirelog.WireLog("wechat")
    wirelog.install(app, wire)

    async def on_wire(request: Request, answer: Any, received_at: float) -> None:
        """A publish call (freepublish/submit) into the wire log, its target the article's
        source URL, found by the draft it names even after the draft left the box."""
        raw = await request.body()
        try:
            media_id = str(json.loads(raw.decode("utf-8")).get("media_id") or "")
        except (ValueError, AttributeError):
            media_id = ""
        with sandbox.lock:
            token = sandbox.tokens.get(request.query_params.get("access_token") or "") or {}
            found = sandbox.drafts.get(media_id) or next(
                (j for j in sandbox.jobs.values() if j["draft_id"] == media_id), None)
        articles = (found or {}).get("articles") or [{}]
        if isinstance(answer, WeChatError):
            said, accepted = str(answer.code), False
        else:
            said, accepted = f"dropped:{answer.mode}" if isinstance(answer, DroppedAnswer) \
                else "ok", True
        wire.record(account=str(token.get("appid", "")), operation="freepublish/submit",
                    create=True, target=articles[0].get("content_source_url", ""),
                    content=raw, answer=said, accepted=accepted, received_at=received_at)

    @app.api_route("/cgi-bin/{name:path}", methods=["GET", "POST"])
    async def cgi(name: str, request: Request) -> Any:
        root = request.scope.get("root_path", "")  # under a mount, its prefix
        ctx = {"received_at": time.time(),
               "base": str(request.url.replace(path=root, query="", fragment="")).rstrip("/")}
        with sandbox.lock:
            sandbox.requests[f"/cgi-bin/{name}"] += 1
        try:
            await sandbox.faults.delay()
            if sandbox.faults.take_busy():
                raise WeChatError(sandbox.faults.now.busy_code or -1)
            answer = await call(name, request, ctx)
        except WeChatError as exc:
            answer = exc
        if name == "freepublish/submit":
            await on_wire(request, answer, ctx["received_at"])
        return _error(answer) if isinstance(answer, WeChatError) else answer

    async def call(name: str, request: Request, ctx: dict[str, Any]) -> Any:
        query = request.query_params
        allowed = sandbox.config.ip_whitelist
        if allowed is not None and (request.client.host if request.client else "") not in allowed:
            ip = request.client.host if request.client else "?"
            raise WeChatError(40164, f"ip {ip} not in the account's whitelist")
        if name in sandbox.config.unauthorized_apis:
            raise WeChatError(48001)
        if name == "token" and request.method == "GET":
            appid = sandbox.credentials(query.get("grant_type"), query.get("appid"),
                                        query.get("secret"))
            return {"access_token": sandbox.plain_token(appid)["value"],
                    "expires_in": math.ceil(sandbox.config.token_ttl)}
        if name == "stable_token" and request.method == "POST":
            body = await _json(request)
            appid = sandbox.credentials(body.get("grant_type"), body.get("appid"),
                                        body.get("secret"))
            token = sandbox.stable_token(appid, body.get("force_refresh") in (True, "true", 1))
            return {"access_token": token["value"],
                    "expires_in": max(0, math.ceil(token["expires_at"] - time.time()))}
        if request.method != "POST" or name not in APIS:
            return JSONResponse({"errcode": 404, "errmsg": "Not Found"}, status_code=404)
        appid = sandbox.account(query.get("access_token"))
        body = ({"media": await _media(request), "type": query.get("type", "")}
                if name in MEDIA_APIS else await _json(request))
        with sandbox.lock:
            return APIS[name](sandbox, appid, body, ctx)

    @app.get("/mmbiz/{name}")
    def image(name: str) -> Response:
        with sandbox.lock:
            found = sandbox.images.get(name)
        return Response(found[0], media_type=found[1]) if found else Response(status_code=404)

    @app.get("/s/{article_id}")
    def article(article_id: str, idx: int = 1) -> HTMLResponse:
        with sandbox.lock:
            try:
                job = sandbox.article_job(None, article_id)
            except WeChatError:
                return HTMLResponse("<p>参数错误</p>", status_code=404)
            live = idx not in job["deleted"] and 1 <= idx <= len(job["articles"])
            return HTMLResponse(article_page(job["articles"][idx - 1] if live else None))

    @app.get("/_sandbox/{what}")
    def inspect(what: str) -> Any:
        """articles (with published_at, finished_at), tokens, requests, callbacks."""
        with sandbox.lock:
            found = sandbox.inspect(what)
        return JSONResponse({"error": "not found"}, 404) if found is None else found

    @app.post("/_sandbox/callback")
    async def set_callback(request: Request) -> dict[str, Any]:
        body = await request.json()
        with sandbox.lock:
            sandbox.config.callback_url = body.get("url")
            sandbox.config.callback_token = body.get("token")
        return {"url": sandbox.config.callback_url}

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, str]:
        sandbox.reset()
        wire.clear()
        return {"status": "reset"}

    return app
