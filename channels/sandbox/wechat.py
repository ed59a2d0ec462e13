"""A local sandbox of the WeChat official-account API (`/cgi-bin/*`), as the real one behaves.

Tokens (7200 s, one valid per account; the previous one stays valid for a grace
period), permanent material and the image host, drafts with the platform's limits
and content rules, asynchronous `freepublish` with its statuses, deletion, and the
PUBLISHJOBFINISH event posted, signed, to a callback. Errors are
`{"errcode": N, "errmsg": ...}` with HTTP 200. Inspection under `/_sandbox/`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import re
import secrets
import threading
import time
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

IMG_SRC = re.compile(r"<img[^>]+src=\"([^\"]+)\"")
HREF = re.compile(r"<a[^>]+href=\"([^\"]+)\"")
LIMITS = {"title": (32, 45003, "title size out of limit"),
          "author": (16, 45110, "author size out of limit"),
          "digest": (128, 45004, "description size out of limit")}


def err(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


class WeChatState:
    def __init__(self, accounts: dict[str, str], token_grace: float, callback_url: str,
                 callback_token: str) -> None:
        self.secrets = dict(accounts)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (appid, expires_at)
        self.current: dict[str, str] = {}
        self.issued = 0
        self.token_grace = token_grace
        self.materials: set[str] = set()
        self.drafts: dict[str, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.articles: list[dict[str, Any]] = []
        self.ids = itertools.count(2_247_000_001)
        self.faults: dict[str, Any] = {}
        self.rng = random.Random(0)
        self.lock = threading.Lock()
        self.callback_url, self.callback_token = callback_url, callback_token

    def issue(self, appid: str, expires_in: float = 7200) -> tuple[str, float]:
        old = self.current.get(appid)
        if old in self.tokens:  # the old token stays valid for a grace period
            self.tokens[old] = (appid, min(self.tokens[old][1], time.time() + self.token_grace))
        token = "sbx" + secrets.token_hex(20)
        self.tokens[token] = (appid, time.time() + expires_in)
        self.current[appid] = token
        self.issued += 1
        return token, expires_in


def create_app(accounts: dict[str, str], token_grace: float = 300.0, callback_url: str = "",
               callback_token: str = "") -> FastAPI:
    """accounts: appid -> appsecret."""
    state = WeChatState(accounts, token_grace, callback_url, callback_token)
    app = FastAPI(title="WeChat official account API sandbox")
    app.state.wechat = state

    def check_token(request: Request) -> str | JSONResponse:
        token = request.query_params.get("access_token", "")
        if state.faults.get("expire_tokens"):
            state.faults["expire_tokens"] = False
            for t, (appid, _) in list(state.tokens.items()):
                state.tokens[t] = (appid, 0)
        found = state.tokens.get(token)
        if found is None:
            return err(40001, "invalid credential, access_token is invalid or not latest")
        if found[1] < time.time():
            return err(42001, "access_token expired")
        return found[0]

    async def faults() -> JSONResponse | None:
        f = state.faults
        if f.get("latency_ms"):
            await asyncio.sleep(f["latency_ms"] / 1000)
        if f.get("busy_next", 0) > 0:
            f["busy_next"] -= 1
            return err(-1, "system error")
        if f.get("busy_share") and state.rng.random() < f["busy_share"]:
            return err(-1, "system error")
        if f.get("quota_exhausted"):
            return err(45009, "reach max api daily quota limit")
        return None

    @app.get("/cgi-bin/token")
    def token(appid: str = "", secret: str = "", grant_type: str = "") -> Any:
        if appid not in state.secrets:
            return err(40013, "invalid appid")
        if state.secrets[appid] != secret:
            return err(40001, "AppSecret error or access_token is invalid")
        with state.lock:
            value, expires = state.issue(appid, state.faults.get("token_ttl", 7200))
        return {"access_token": value, "expires_in": int(expires)}

    @app.post("/cgi-bin/stable_token")
    async def stable_token(request: Request) -> Any:
        body = await request.json()
        appid, secret = body.get("appid", ""), body.get("secret", "")
        if appid not in state.secrets:
            return err(40013, "invalid appid")
        if state.secrets[appid] != secret:
            return err(40125, "invalid appsecret")
        with state.lock:
            current = state.current.get(appid)
            appid_, expires_at = state.tokens.get(current or "", ("", 0.0))
            if body.get("force_refresh") or not current or expires_at - time.time() < 300:
                value, expires = state.issue(appid, state.faults.get("token_ttl", 7200))
                return {"access_token": value, "expires_in": int(expires)}
            return {"access_token": current, "expires_in": int(expires_at - time.time())}

    @app.post("/cgi-bin/material/add_material")
    async def add_material(request: Request) -> Any:
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        form = await request.form()
        data = await form["media"].read()
        media_id = "M" + hashlib.sha256(data).hexdigest()[:30]
        state.materials.add(media_id)
        return {"media_id": media_id, "url": f"{request.base_url}mmbiz/{media_id}.jpg"}

    @app.post("/cgi-bin/media/uploadimg")
    async def uploadimg(request: Request) -> Any:
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        data = await (await request.form())["media"].read()
        return {"url": f"{request.base_url}mmbiz/{hashlib.sha256(data).hexdigest()[:24]}.jpg"}

    @app.post("/cgi-bin/draft/add")
    async def draft_add(request: Request) -> Any:
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        if (failure := await faults()) is not None:
            return failure
        article = (await request.json())["articles"][0]
        for field, (limit, code, message) in LIMITS.items():
            if len(article.get(field, "")) > limit:
                return err(code, message)
        content = article.get("content", "")
        if len(content) >= 20_000 or len(content.encode()) >= 1_000_000:
            return err(45002, "content size out of limit")
        if article.get("thumb_media_id") not in state.materials:
            return err(40007, "invalid media_id")
        host = str(request.base_url)
        if "<script" in content or any(not s.startswith(host) for s in IMG_SRC.findall(content)) \
                or any("mp.weixin.qq.com" not in h for h in HREF.findall(content)):
            return err(45166, "invalid content hint")
        media_id = "D" + secrets.token_hex(12)
        state.drafts[media_id] = {"appid": who, **article}
        return {"media_id": media_id}

    @app.post("/cgi-bin/freepublish/submit")
    async def submit(request: Request) -> Any:
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        if (failure := await faults()) is not None:
            return failure
        media_id = (await request.json()).get("media_id")
        draft = state.drafts.get(media_id)
        if draft is None:
            return err(53503, "draft is not ready or does not exist")
        publish_id = next(state.ids)
        now = time.time()
        with state.lock:
            state.jobs[publish_id] = {"appid": who, "draft": draft, "submitted_at": now,
                                      "done_at": now + state.faults.get("publish_seconds", 0),
                                      "status": 4 if state.faults.get("audit_reject") else 0}
        if state.faults.get("drop_responses", 0) > 0:
            state.faults["drop_responses"] -= 1
            return Response(status_code=504)
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id}

    def job_status(publish_id: int) -> dict[str, Any]:
        job = state.jobs[publish_id]
        if time.time() < job["done_at"]:
            return {"publish_id": publish_id, "publish_status": 1}
        if "article_id" not in job and job["status"] == 0:
            article_id = f"A{publish_id}"
            job["article_id"] = article_id
            state.articles.append({"article_id": article_id, "appid": job["appid"],
                                   "title": job["draft"]["title"],
                                   "content_source_url": job["draft"].get("content_source_url"),
                                   "url": f"{base_url}s/{article_id}",
                                   "published_at": job["submitted_at"], "finished_at": time.time(),
                                   "deleted": False})
            notify(publish_id, job)
        if job["status"] != 0:
            return {"publish_id": publish_id, "publish_status": job["status"], "fail_idx": [1]}
        return {"publish_id": publish_id, "publish_status": 0, "article_id": job["article_id"],
                "article_detail": {"count": 1, "item": [
                    {"idx": 1, "article_url": f"{base_url}s/{job['article_id']}"}]}}

    base_url = ""

    def notify(publish_id: int, job: dict[str, Any]) -> None:
        if not state.callback_url:
            return
        timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
        signature = hashlib.sha1("".join(sorted([state.callback_token, timestamp, nonce]))
                                 .encode()).hexdigest()
        xml = (f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><MsgType><![CDATA[event]]>"
               f"</MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo>"
               f"<publish_id>{publish_id}</publish_id><publish_status>{job['status']}"
               f"</publish_status><article_id><![CDATA[{job.get('article_id', '')}]]></article_id>"
               f"</PublishEventInfo></xml>")
        threading.Thread(target=lambda: requests.post(
            state.callback_url, data=xml.encode(), timeout=5,
            params={"signature": signature, "timestamp": timestamp, "nonce": nonce}),
            daemon=True).start()

    @app.post("/cgi-bin/freepublish/get")
    async def get(request: Request) -> Any:
        nonlocal base_url
        base_url = str(request.base_url)
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        publish_id = int((await request.json()).get("publish_id", 0))
        with state.lock:
            if publish_id not in state.jobs:
                return err(53505, "publish_id does not exist")
            return {"errcode": 0, "errmsg": "ok", **job_status(publish_id)}

    @app.post("/cgi-bin/freepublish/batchget")
    async def batchget(request: Request) -> Any:
        nonlocal base_url
        base_url = str(request.base_url)
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        with state.lock:
            for publish_id in list(state.jobs):
                job_status(publish_id)
            mine = [a for a in state.articles if a["appid"] == who and not a["deleted"]]
        return {"total_count": len(mine), "item_count": len(mine), "item": [
            {"article_id": a["article_id"], "update_time": int(a["finished_at"]), "content": {
                "news_item": [{"title": a["title"], "url": a["url"],
                               "content_source_url": a["content_source_url"]}]}}
            for a in reversed(mine)]}

    @app.post("/cgi-bin/freepublish/delete")
    async def delete(request: Request) -> Any:
        who = check_token(request)
        if isinstance(who, JSONResponse):
            return who
        article_id = (await request.json()).get("article_id")
        for article in state.articles:
            if article["article_id"] == article_id and not article["deleted"]:
                article["deleted"] = True
                return {"errcode": 0, "errmsg": "ok"}
        return err(53600, "article_id is invalid")

    @app.get("/_sandbox/articles")
    def inspect_articles() -> list[dict[str, Any]]:
        with state.lock:
            return [dict(a) for a in state.articles]

    @app.get("/_sandbox/tokens")
    def inspect_tokens() -> dict[str, int]:
        return {"issued": state.issued}

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        state.faults = await request.json()
        return state.faults

    return app
