"""Weibo (政务微博): one post per release via `statuses/share`; several accounts = several instances.

Weibo has no drafts and no edit, so staging only validates; a correction is a new
post. A repeated-content answer (20019/20017) may mean an earlier attempt went
out: it is reported as outcome unknown, and lookup() reads the timeline for the
release's URL before anything is posted again.

Weibo keeps and shows every link as a short link (`http://t.cn/…`), so the timeline
never holds our URL: lookup() and read_back() expand the short links of what they
read (`short_url/expand.json`) before they look for the URL or compare the text.
Characters are counted by channels.weibo_text, the rule the sandbox applies too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import requests
from pydantic import BaseModel, Field

from channels import http
from channels.contract import (
    JSON,
    Capabilities,
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    Problem,
    RateLimited,
    Receipt,
    ReleaseView,
    RemoteConfig,
    RetryableError,
    approved_files,
)
from channels.templating import render
from channels.weibo_text import LIMIT, LINK, is_short_link, links, weibo_length

__all__ = ["LIMIT", "WeiboAdapter", "weibo_length"]
EXPAND_BATCH = 20  # short links per short_url/expand call, as the API allows
RATE_LIMITED = {10023, 10024, 20016}
MAYBE_POSTED = {20019, 20017}
LOOKUP_PAGES = 10  # lookup() looks back through the account's latest 1,000 posts
TOKEN_REJECTED = {21327, 21332, 21314, 21315, 21316, 21317}
BUSY = {10001, 10009}
GONE = 20101  # target weibo does not exist
WEB_HOSTS = ("weibo.com", "www.weibo.com", "m.weibo.cn")  # where readers see a post


class WeiboConfig(RemoteConfig):
    api_base: str = Field(description="e.g. https://api.weibo.com or the sandbox URL")
    web_base: str | None = Field(None, description="where posts are read; default api_base")
    safe_domain: str = Field(description="the app's registered safe domain (安全域名)")
    uid: str = Field("", description="the account's uid, for post URLs")
    rate_limit_retry_seconds: float = 60.0
    timeout_seconds: float = Field(15.0, description="read timeout of one API call")


class WeiboCredentials(BaseModel):
    access_token: str = ""


class WeiboAdapter(http.HttpChannel):
    kind = "weibo"
    capabilities = Capabilities(can_update=False, can_withdraw=True, can_lookup=True)
    config_model = WeiboConfig
    credentials_model = WeiboCredentials
    endpoints = ("api_base",)  # the token goes there
    transport = ("sandbox",)
    formats = ("text",)
    field_kinds = {"*": "text"}  # a post shows its text as typed: <!-- … --> is on screen
    # the platform refuses a 31st post within an hour (10023) and a 101st within a day
    # (10024): a bucket of 10 refilled over 9600 s lets at most 10 + 3.75 through in any
    # hour and 10 + 90 in any day, so a burst of 10 goes at once and no limit is reached
    default_rate = {"capacity": 10, "per_seconds": 9600}

    # ------------------------------------------------------------ render/validate

    def render(self, release: ReleaseView) -> JSON:
        template = "correction.txt" if release.corrects_id else "post.txt"
        text = release.overrides.get("text") or render(
            "weibo", template, title=release.title, summary=release.summary
        ).strip()
        if release.marker not in text:
            text = f"{text} {release.link}"  # the link of the safe domain Weibo requires
        payload: JSON = {"text": text, "marker": release.marker}
        if release.images:
            image = release.images[0]
            payload["picture"] = {"sha256": image.sha256, "filename": image.filename,
                                  "path": str(image.path)}
        return payload

    def problems(self, payload: JSON) -> list[Problem]:
        found = []
        length = weibo_length(payload["text"])
        if length > LIMIT:
            found.append(Problem("text", f"{length} characters as Weibo counts them; limit {LIMIT}"))
        hosts = {urlparse(u).hostname for u in links(payload["text"])}
        if self.config.safe_domain not in hosts:
            found.append(Problem("text", f"needs a link of the safe domain {self.config.safe_domain}"))
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        return f"{payload['text']}\n({weibo_length(payload['text'])}/{LIMIT} 字)"

    # ---------------------------------------------------------------- calls

    def _url(self, path: str) -> str:
        return f"{self.config.api_base.rstrip('/')}/2/{path}"

    def _token(self) -> str:
        assert self.credentials is not None
        return self.credentials.access_token

    def _answer(self, response: requests.Response) -> JSON:
        try:
            body = response.json()
        except ValueError:
            if response.status_code >= 500:
                raise OutcomeUnknown(f"HTTP {response.status_code} without an answer",
                                     code=f"http_{response.status_code}") from None
            raise PermanentError(f"HTTP {response.status_code}: not JSON",
                                 code=f"http_{response.status_code}") from None
        if isinstance(body, dict) and "error_code" in body:
            try:
                code = int(body["error_code"])
            except (TypeError, ValueError):
                raise PermanentError(f"HTTP {response.status_code}: error_code is not a number",
                                     code=f"http_{response.status_code}") from None
            # the platform's code says it all; its wording is not repeated into logs and screens
            self._raise(code, f"微博错误码 {code}", response)
        if response.status_code >= 500:  # a gateway's answer, not Weibo's: it may have posted
            raise OutcomeUnknown(f"HTTP {response.status_code} from a gateway",
                                 code=f"http_{response.status_code}")
        return body

    def _raise(self, code: int, message: str, response: requests.Response) -> None:
        if code in RATE_LIMITED:
            after = float(response.headers.get("Retry-After") or self.config.rate_limit_retry_seconds)
            raise RateLimited(message, code=code, retry_after=after)
        if code in MAYBE_POSTED:
            raise OutcomeUnknown(f"{message} (an earlier attempt may have posted it)", code=code)
        if code in TOKEN_REJECTED:
            raise CredentialsExpired(f"{message}: the account must be re-authorised", code=code)
        if code in BUSY:
            raise RetryableError(message, code=code)
        raise PermanentError(message, code=code)

    def _receipt(self, status: JSON, published_at: dt.datetime) -> Receipt:
        idstr = str(status.get("idstr") or status["id"])
        uid = str((status.get("user") or {}).get("idstr") or self.config.uid)
        web = (self.config.web_base or self.config.api_base).rstrip("/")
        return Receipt(idstr, f"{web}/{uid}/{idstr}", published_at,
                       {"created_at": status.get("created_at")})

    def web_hosts(self) -> tuple[str, ...]:
        own = urlparse(self.config.web_base or "").hostname
        return WEB_HOSTS + ((own,) if own and own not in WEB_HOSTS else ())

    def receipt_for_url(self, url: str, published_at: dt.datetime) -> Receipt | None:
        """A post's page is /<uid>/<id>: the account must be this channel's, the id numeric
        (the API's id, as our receipts give it)."""
        parts = [p for p in urlparse(url).path.split("/") if p]
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError("应为本账号某条微博的链接：https://weibo.com/<uid>/<数字 ID>")
        if self.config.uid and parts[0] != self.config.uid:
            raise ValueError(f"不是本账号（uid {self.config.uid}）的微博")
        return Receipt(parts[1], url, published_at, {"marked_by_hand": True})

    def stage(self, payload: JSON, key: str) -> JSON:
        """Nothing to upload ahead (no drafts); a picture changed on disk shows now."""
        approved_files([payload["picture"]] if payload.get("picture") else [])
        return {}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        data = {"access_token": self._token(), "status": payload["text"]}
        picture = payload.get("picture")
        if picture:  # the signed bytes, checked as they are read for the upload
            files = {"pic": (picture["filename"], *approved_files([picture]))}
            response = http.call(self.http, "POST", self._url("statuses/share.json"),
                                 data=data, files=files, read_timeout=self.config.timeout_seconds)
        else:
            response = http.call(self.http, "POST", self._url("statuses/share.json"), data=data,
                                 read_timeout=self.config.timeout_seconds)
        body = self._answer(response)
        return self._receipt(body, dt.datetime.now(dt.UTC))

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        for statuses in self._pages(LOOKUP_PAGES):
            live = [s for s in statuses if not s.get("deleted")]
            texts = self._expanded([str(s.get("text", "")) for s in live])
            for status, text in zip(live, texts, strict=True):
                if payload["marker"] in text:
                    return self._receipt(status, _parse_created(status.get("created_at")))
        return None

    def _pages(self, pages: int) -> Iterator[list[JSON]]:
        """The account's posts, newest first, 100 a page: a busy account's earlier post is
        not on the first page."""
        for page in range(1, pages + 1):
            statuses = self._timeline(count=100, page=page)
            yield statuses
            if len(statuses) < 100:
                return
    def _expanded(self, texts: list[str]) -> list[str]:
        """The texts with every t.cn link put back to the URL it stands for."""
        shorts = sorted({u for text in texts for u in links(text) if is_short_link(u)})
        long: dict[str, str] = {}
        for start in range(0, len(shorts), EXPAND_BATCH):
            params: dict[str, Any] = {"access_token": self._token(),
                                      "url_short": shorts[start:start + EXPAND_BATCH]}
            response = http.call(self.http, "GET", self._url("short_url/expand.json"),
                                 params=params)
            for url in self._answer(response).get("urls", []):
                if url.get("result") and url.get("url_long"):
                    long[str(url["url_short"])] = str(url["url_long"])
        return [LINK.sub(lambda m: long.get(m.group(0), m.group(0)), text) for text in texts]

    def _timeline(self, count: int, page: int = 1) -> list[JSON]:
        params: dict[str, Any] = {"access_token": self._token(), "count": count, "page": page}
        response = http.call(self.http, "GET", self._url("statuses/user_timeline.json"),
                             params=params)
        return list(self._answer(response).get("statuses", []))

    def withdraw(self, receipt: Receipt) -> None:
        response = http.call(self.http, "POST", self._url("statuses/destroy.json"),
                             data={"access_token": self._token(), "id": receipt.remote_id})
        self._answer(response)

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        response = http.call(self.http, "GET", self._url("statuses/show.json"),
                             params={"access_token": self._token(), "id": receipt.remote_id})
        try:
            status = self._answer(response)
        except PermanentError as exc:
            if exc.code == str(GONE):
                return ""  # deleted from the account
            raise
        return self._expanded([str(status.get("text", ""))])[0]

    def shown(self, payload: JSON) -> str:
        return payload["text"]

    def test_connection(self) -> str:
        posts = self._timeline(count=1)
        return f"token accepted; {len(posts)} recent post(s) readable"


def _parse_created(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(dt.UTC)
