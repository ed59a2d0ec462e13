"""The WeChat official account (政务微信): draft staged ahead, `freepublish` at go-live.

Staging uploads the cover as permanent material and in-body images to the image host,
then creates the draft; going live is one `freepublish/submit`. Publishing is
asynchronous on the platform's side: the delivery is `published` only when
`freepublish/get` (or the PUBLISHJOBFINISH event) says so, with the article's URL.
Errors arrive as `{"errcode": N, "errmsg": ...}` with HTTP 200.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
import time
from typing import Any

import lxml.html
import requests
from pydantic import BaseModel, Field, field_validator

from channels import http
from channels.contract import (
    JSON,
    Capabilities,
    ChannelError,
    CredentialsExpired,
    Limit,
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
from channels.templating import read_bytes, render
from channels.wechat_token import TokenCache, store_for

IMG_SRC = re.compile(r"(<img\b[^>]*?\bsrc\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
NO_ARTICLE = 53600  # the article_id is unknown (deleted for good)
IMAGE_REF = "tongfa-image:"  # in the signed payload; the upload URL replaces it at staging
TOKEN_REJECTED = {40001, 42001, 40014}
WRONG_ACCOUNT = {40125, 40013, 40164}  # bad secret, bad appid, IP not whitelisted
BUSY = {-1}
FREQUENCY = {45009, 45011, 45047}
PUBLISH_STATUS = {2: "original-content check failed", 3: "publishing failed",
                  4: "rejected by the platform's audit", 5: "deleted", 6: "banned"}
SUBMIT_SETTLES = 600.0
LOOKUP_DEPTH = 500  # articles lookup() pages back through at most
CALLBACK_WINDOW = 300.0  # seconds: an event callback older (or newer) than this is refused  # seconds after a submit before "not listed" may mean "not published"


class WeChatConfig(RemoteConfig):
    api_base: str = Field(description="https://api.weixin.qq.com or the sandbox URL")
    appid: str
    author: str = ""
    token_store: str = Field("", description="directory or redis:// URL shared by workers")
    timeout_seconds: float = 15.0
    rate_limit_retry_seconds: float = Field(3600.0, description="wait after a quota error (45009)")
    callback_token: None = Field(None, description="a secret: give it with the credentials")

    @field_validator("callback_token", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("回调 Token 是密钥，请填在凭据（credentials）中")
        return None


class WeChatCredentials(BaseModel):
    appsecret: str = ""
    callback_token: str = Field("", description="Token the platform signs event callbacks with")


def wechat_html(body_html: str) -> str:
    """The HTML WeChat accepts: no scripts, links only to official-account articles."""
    if not body_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(body_html, create_parent="section")
    for bad in root.xpath("//script|//style|//iframe"):
        bad.drop_tree()
    for link in root.xpath("//a"):
        if "mp.weixin.qq.com" not in (link.get("href") or ""):
            link.drop_tag()  # keep the words, lose the external link (45166 otherwise)
    return "".join(lxml.html.tostring(child, encoding="unicode") for child in root)


class WeChatAdapter(http.HttpChannel):
    kind = "wechat"
    capabilities = Capabilities(can_update=False, can_withdraw=True, can_lookup=True,
                                async_publish=True)
    config_model = WeChatConfig
    credentials_model = WeChatCredentials
    endpoints = ("api_base", "token_store")  # the appsecret goes to one, access tokens to the other
    transport = ("sandbox", "appid")
    private_files = ("token_store",)  # a directory, unless a redis:// URL
    formats = ("html", "json")
    field_kinds = {"content": "html", "*": "text"}  # title, author, digest shown as typed
    limits = (Limit("title", 32, "图文标题"), Limit("author", 16, "作者"),
              Limit("digest", 128, "摘要"))
    # freepublish/submit answers 45009 past 100 calls a day: a bucket of 5 refilled over
    # 8640 s lets at most 5 + 50 through in any day
    default_rate = {"capacity": 5, "per_seconds": 8640}

    def __init__(self, config: JSON, credentials: JSON | None = None) -> None:
        super().__init__(config, credentials)
        self.tokens = TokenCache(store_for(self.config.token_store), self.config.appid,
                                 self._fetch_token)

    # ------------------------------------------------------------ render/validate

    def web_hosts(self) -> tuple[str, ...]:
        return ("mp.weixin.qq.com",)  # article pages; the URL does not name the article_id

    def render(self, release: ReleaseView) -> JSON:
        o = release.overrides
        cover = release.images[0].ref() if release.images else None
        images = [a.ref() for a in release.images[1:]]
        content = render("wechat", "article.html", body_html=wechat_html(release.body_html),
                         image_urls=[IMAGE_REF + i["sha256"] for i in images],
                         issuing_body=release.metadata.get("issuing_body", ""),
                         date_published=release.metadata.get("date_published", ""))
        return {"title": o.get("title") or release.title,
                "author": o.get("author") or self.config.author,
                "digest": o.get("digest") or release.summary, "content": content,
                "content_source_url": release.link, "cover": cover, "images": images,
                "marker": release.marker}

    def problems(self, payload: JSON) -> list[Problem]:
        found = self.limit_problems(payload)
        if len(payload["content"]) >= 20_000 or len(payload["content"].encode()) >= 1_000_000:
            found.append(Problem("content", "must be under 20,000 characters and 1 MB"))
        if not payload["title"].strip():
            found.append(Problem("title", "empty"))
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        if fmt == "html":
            return payload["content"]
        return json.dumps({k: payload[k] for k in ("title", "author", "digest",
                           "content_source_url")}, ensure_ascii=False, indent=2)

    # ---------------------------------------------------------------- calls

    def _fetch_token(self) -> tuple[str, float]:
        assert self.credentials is not None
        body = self._answer(http.call(self.http, "POST", self._url("stable_token"), json={
            "grant_type": "client_credential", "appid": self.config.appid,
            "secret": self.credentials.appsecret, "force_refresh": False}))
        return body["access_token"], float(body.get("expires_in", 7200))

    def _url(self, path: str) -> str:
        return f"{self.config.api_base.rstrip('/')}/cgi-bin/{path}"

    def _api(self, method: str, path: str, **kwargs: Any) -> JSON:
        """One API call; a rejected token is refreshed once and the call made again."""
        token, params = self.tokens.get(), kwargs.pop("params", {})
        for retry in (True, False):
            response = http.call(self.http, method, self._url(path),
                                 params={"access_token": token, **params},
                                 read_timeout=self.config.timeout_seconds, **kwargs)
            try:
                return self._answer(response)
            except CredentialsExpired:
                if not retry:
                    raise
                token = self.tokens.refresh(stale=token)  # does not count as an attempt
        raise AssertionError("unreachable")

    def _answer(self, response: requests.Response) -> JSON:
        if response.status_code >= 500:  # a gateway's page, not WeChat's: it may have acted
            raise OutcomeUnknown(f"HTTP {response.status_code} from a gateway",
                                 code=f"http_{response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise PermanentError(f"HTTP {response.status_code}: not JSON",
                                 code=f"http_{response.status_code}") from None
        try:
            code = int(body.get("errcode", 0) or 0)
        except (TypeError, ValueError, AttributeError):
            raise PermanentError(f"HTTP {response.status_code}: errcode is not a number",
                                 code=f"http_{response.status_code}") from None
        if code == 0:
            return body
        message = f"微信错误码 {code}"  # errmsg is the remote side's wording: not repeated
        if code in TOKEN_REJECTED:
            raise CredentialsExpired(message, code=code)
        if code in WRONG_ACCOUNT:
            raise CredentialsExpired(f"{message}: check the account's appid/secret", code=code)
        if code in BUSY:
            raise RetryableError(message, code=code)
        if code in FREQUENCY:
            raise RateLimited(message, code=code, retry_after=self.config.rate_limit_retry_seconds)
        if code == 48001:
            raise PermanentError("this official account is not authorised for the API "
                                 "(48001): an admin must enable it on the platform", code=code)
        raise PermanentError(message, code=code)

    def _upload(self, path: str, ref: JSON, data: bytes, **params: str) -> JSON:
        return self._api("POST", path, params=params,
                         files={"media": (ref["filename"], data, ref["media_type"])})

    def stage(self, payload: JSON, key: str) -> JSON:
        """Uploads are where the images leave: every one is read and checked against its
        signed SHA-256 first, so a changed file stops the staging before any upload."""
        images = approved_files(payload["images"])
        if payload["cover"]:
            cover, cover_data = payload["cover"], approved_files([payload["cover"]])[0]
        else:  # the account's default cover, part of the deployment, not of the release
            cover = {"filename": "cover.png", "media_type": "image/png"}
            cover_data = read_bytes("wechat", "cover.png")
        thumb = self._upload("material/add_material", cover, cover_data, type="image")["media_id"]
        content = payload["content"]
        for image, data in zip(payload["images"], images, strict=True):
            content = content.replace(IMAGE_REF + image["sha256"],
                                      self._upload("media/uploadimg", image, data)["url"])
        article = {"title": payload["title"], "author": payload["author"],
                   "digest": payload["digest"], "content": content,
                   "content_source_url": payload["content_source_url"],
                   "thumb_media_id": thumb, "need_open_comment": 0, "only_fans_can_comment": 0}
        draft = self._api("POST", "draft/add", data=_json_body({"articles": [article]}),
                          headers={"Content-Type": "application/json"})
        return {"draft_media_id": draft["media_id"], "thumb_media_id": thumb}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        # noted before the call: if its answer is lost, lookup() knows a submit may be under way;
        # and again with the answer, so a worker that dies before recording it leaves lookup()
        # the publish_id to ask about (or the word that no job was started)
        note, at = f"submit:{key}", time.time()
        self.tokens.store.remember(note, json.dumps({"at": at}))
        try:
            body = self._api("POST", "freepublish/submit",
                             data=_json_body({"media_id": staged["draft_media_id"]}),
                             headers={"Content-Type": "application/json"})
        except OutcomeUnknown:
            raise
        except ChannelError:  # the platform said no (or was never reached): no job started
            self.tokens.store.remember(note, json.dumps({"at": at, "refused": True}))
            raise
        publish_id = str(body["publish_id"])  # a number in real answers, a string in the docs
        self.tokens.store.remember(note, json.dumps({"at": at, "publish_id": publish_id}))
        return Receipt(publish_id, None, dt.datetime.now(dt.UTC),
                       {"confirmed": False, "publish_id": publish_id})

    def confirm(self, receipt: Receipt) -> Receipt | None:
        body = self._api("POST", "freepublish/get",
                         data=_json_body({"publish_id": receipt.details["publish_id"]}),
                         headers={"Content-Type": "application/json"})
        status = int(body.get("publish_status", 1))
        if status == 1:
            return None  # still publishing
        if status != 0:
            raise PermanentError(PUBLISH_STATUS.get(status, f"status {status}"),
                                 code=f"publish_status_{status}")
        return _confirmed(body, receipt.details["publish_id"])

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        submitted = _submit_note(self.tokens.store.recall(f"submit:{key}"))
        if submitted.get("publish_id"):  # the platform answered the last submit: ask about it
            found = self.confirm(Receipt(submitted["publish_id"], None, dt.datetime.now(dt.UTC),
                                         {"publish_id": submitted["publish_id"]}))
            if found is None:
                raise OutcomeUnknown("submitted, still publishing: look again", code="publishing")
            return found
        # batchget lists 20 at a time, newest first: page back until before our submit
        since, offset = float(submitted.get("at", math.inf)) - 60, 0
        while offset < LOOKUP_DEPTH:
            body = self._api("POST", "freepublish/batchget",
                             data=_json_body({"offset": offset, "count": 20, "no_content": 1}),
                             headers={"Content-Type": "application/json"})
            items = body.get("item", [])
            for item in items:
                for news in item.get("content", {}).get("news_item", []):
                    if news.get("content_source_url") == payload["content_source_url"]:
                        return Receipt(str(item["article_id"]), news.get("url"),
                                       dt.datetime.now(dt.UTC), {"confirmed": True})
            offset += len(items)
            if not items or offset >= int(body.get("total_count") or 0) or min(
                    float(i.get("update_time") or 0) for i in items) < since:
                break
        if submitted.get("refused"):
            return None  # the last submit was refused: no job, and no article listed
        if "at" in submitted and time.time() - float(submitted["at"]) < SUBMIT_SETTLES:
            # a submit went out and its article is not listed yet: it may be publishing
            raise OutcomeUnknown("submitted, not yet published: look again", code="publishing")
        if staged and not self._draft_waiting(staged["draft_media_id"]):
            raise OutcomeUnknown("the draft left the draft box: look again", code="publishing")
        return None  # never submitted, or its publishing ended without an article

    def _draft_waiting(self, media_id: str) -> bool:
        try:
            self._api("POST", "draft/get", data=_json_body({"media_id": media_id}),
                      headers={"Content-Type": "application/json"})
        except PermanentError:
            return False
        return True

    def withdraw(self, receipt: Receipt) -> None:
        self._api("POST", "freepublish/delete",
                  data=_json_body({"article_id": receipt.remote_id, "index": 1}),
                  headers={"Content-Type": "application/json"})

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        """The published article as the platform holds it ("" once deleted)."""
        try:
            body = self._api("POST", "freepublish/getarticle",
                             data=_json_body({"article_id": receipt.remote_id}),
                             headers={"Content-Type": "application/json"})
        except PermanentError as exc:
            if exc.code == str(NO_ARTICLE):
                return ""
            raise
        items = body.get("news_item") or []
        if not items or items[0].get("is_deleted"):
            return ""
        return _comparable(items[0])

    def shown(self, payload: JSON) -> str:
        return _comparable(payload)

    def test_connection(self) -> str:
        self.tokens.get()
        return "access_token obtained"


def _submit_note(raw: str | None) -> JSON:
    """What publish() noted about the last submit ({} when nothing; an old note is a time)."""
    if not raw:
        return {}
    try:
        note = json.loads(raw)
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {"at": float(note)}


def _comparable(article: JSON) -> str:
    """An article's fields readers see, as one text to compare. In-body images are
    uploaded at staging (the platform's URL replaces our reference), so where an image
    points is left out; that it is there, and all the text and markup, count."""
    content = IMG_SRC.sub(r"\1\"\"", str(article.get("content", "")))
    return "\n".join([str(article.get("title", "")), str(article.get("author", "")),
                      str(article.get("digest", "")),
                      str(article.get("content_source_url", "")), content])


def _json_body(value: JSON) -> bytes:
    """UTF-8 JSON with Chinese as is: WeChat counts and shows what it receives."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _confirmed(body: JSON, publish_id: str) -> Receipt:
    items = (body.get("article_detail") or {}).get("item") or [{}]
    return Receipt(str(body.get("article_id", publish_id)), items[0].get("article_url"),
                   dt.datetime.now(dt.UTC), {"confirmed": True, "publish_id": publish_id})


def check_signature(token: str, signature: str, timestamp: str, nonce: str, *, now: float,
                    window: float = CALLBACK_WINDOW) -> bool:
    """The platform signs event callbacks: sha1 of the sorted token, timestamp and nonce.

    The signature covers the timestamp, so a callback sent more than `window` seconds away
    from `now` (epoch seconds, the caller's clock) is refused: a captured one cannot be replayed.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > window:
        return False
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return bool(signature) and hmac.compare_digest(expected, signature)
