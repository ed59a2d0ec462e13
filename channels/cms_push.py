"""Sites with their own CMS: the release pushed as signed JSON to an endpoint the site runs.

POST <endpoint> carries the release as canonical JSON, signed the Standard Webhooks way
(webhook-id, webhook-timestamp, webhook-signature; the shared secret is `whsec_...`), so
the CMS verifies it with an off-the-shelf library in any language and refuses it after
five minutes. webhook-id is the delivery key, the same for every retry, so a retry after
a lost answer makes no second page (it also travels as Idempotency-Key). The CMS answers
{"id": ..., "url": ...}.

GET / DELETE <endpoint>/<delivery key> look a push up and withdraw it; a GET that also
answers the `document` the page now shows lets the integrity watch compare it. They have no
body, so they sign "<METHOD> <path as sent>" in its place (webhook-id "<key>.get" /
"<key>.delete"): a captured signature cannot be replayed against another item.
docs/adapters.md shows the receiving side.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, Field, field_validator

from channels import http
from channels.contract import (
    JSON,
    Attachment,
    Capabilities,
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
from channels.outbound import webhook_headers, webhook_secret
from orchestrator.domain.release import METADATA_KEYS, disclosure_problem

GONE = {200, 202, 204, 404, 410}  # a withdrawal that finds nothing has nothing left to do


class CmsPushConfig(RemoteConfig):
    endpoint: str = Field(description="e.g. https://www.example.gov.cn/api/tongfa/releases")
    files_base_url: str = Field("", description="where the CMS can fetch images/attachments: "
                                                "<files_base_url>/<sha256>/<filename>")
    timeout_seconds: float = Field(15.0, description="read timeout of one call")
    rate_limit_retry_seconds: float = 60.0


class CmsPushCredentials(BaseModel):
    secret: str = Field("", description="the Standard Webhooks secret the CMS shares: whsec_...")

    @field_validator("secret")
    @classmethod
    def _standard(cls, value: str) -> str:
        return webhook_secret(value) if value else value


class CmsPushAdapter(http.HttpChannel):
    kind = "cms_push"
    capabilities = Capabilities(can_update=True, can_withdraw=True, can_lookup=True)
    config_model = CmsPushConfig
    credentials_model = CmsPushCredentials
    endpoints = ("endpoint",)  # signed requests go there
    transport = ("sandbox",)
    formats = ("json",)
    # the CMS's templates decide how the other fields are shown: read both ways
    field_kinds = {"body_html": "html"}
    limits = (Limit("document.title", 200, "标题"),)
    clock: Callable[[], dt.datetime] = staticmethod(lambda: dt.datetime.now(dt.UTC))

    # ------------------------------------------------------------ render/validate

    def render(self, release: ReleaseView) -> JSON:
        """The document the CMS gets; nothing in it depends on the clock."""
        raw = release.overrides.get("version", release.version or (2 if release.corrects_id else 1))
        files = [self._file(f, role) for role, group in
                 (("image", release.images), ("attachment", release.attachments)) for f in group]
        payload: JSON = {"document": {
            "id": release.corrects_id or release.id,  # a correction replaces the same page
            "release_id": release.id,
            "version": raw if isinstance(raw, int) and raw > 0 else 0,
            "title": str(release.overrides.get("title") or release.title),
            "summary": release.summary, "body_html": release.body_html,
            "metadata": {k: str(release.metadata.get(k) or "") for k in METADATA_KEYS},
            "column": str(release.overrides.get("column") or release.metadata.get("column") or ""),
            "url": release.corrects_url or release.url, "link": release.link,
            "priority": release.priority,
            "parent_id": release.parent_id, "corrects_id": release.corrects_id,
            "go_live_at": release.go_live_at.isoformat() if release.go_live_at else None,
            "files": files,
        }}
        stored = [f.ref() for f in (*release.images, *release.attachments)]
        if stored:  # beside the document, never in it: where the files sit on this machine
            payload["files"] = stored
        return payload

    def _file(self, attachment: Attachment, role: str) -> JSON:
        base = self.config.files_base_url.rstrip("/")
        href = f"{base}/{attachment.sha256}/{quote(attachment.filename)}" if base else None
        return {"role": role, "sha256": attachment.sha256, "filename": attachment.filename,
                "media_type": attachment.media_type, "href": href}

    def problems(self, payload: JSON) -> list[Problem]:
        doc, found = payload["document"], self.limit_problems(payload)
        if not doc["title"].strip():
            found.append(Problem("title", "标题不能为空"))
        if not doc["body_html"].strip():
            found.append(Problem("body", "正文不能为空"))
        if not doc["version"]:
            found.append(Problem("overrides.version", "版本号应为正整数"))
        meta = doc["metadata"]
        found += [Problem(f"metadata.{k}", "推送到网站必填")
                  for k in ("issuing_body", "date_published") if not meta[k].strip()]
        if refusal := disclosure_problem(meta["disclosure"]):
            found.append(Problem("metadata.disclosure", refusal))
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        return json.dumps(payload["document"], ensure_ascii=False, indent=2, sort_keys=True)

    # ---------------------------------------------------------------- calls

    def stage(self, payload: JSON, key: str) -> JSON:
        approved_files(payload.get("files", []))  # a file changed on disk shows before go-live
        return {}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        # the CMS fetches the files by URL and SHA-256: refuse to announce ones that changed
        approved_files(payload.get("files", []))
        response = self._call("POST", self.config.endpoint, body(payload), key=key)
        return self._receipt(self._answer(response), payload, key)

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        response = self._call("GET", self._item_url(key), key=key)
        if response.status_code == 404:
            return None
        return self._receipt(self._answer(response), payload, key)

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        """The document as the CMS holds it now (GET answers it as `document`); "" once
        the page is gone; None from a CMS that does not answer the document."""
        key = receipt.details.get("key")
        if not key:
            return None
        response = self._call("GET", self._item_url(key), key=key)
        if response.status_code in (404, 410):
            return ""
        document = self._answer(response).get("document")
        if not isinstance(document, dict):
            return None
        return _canonical(document)

    def shown(self, payload: JSON) -> str:
        return _canonical(payload["document"])

    def withdraw(self, receipt: Receipt) -> None:
        key = receipt.details.get("key")
        if not key:
            raise PermanentError("回执中没有推送编号，无法撤回", code="no_key")
        response = self._call("DELETE", self._item_url(key), key=key)
        if response.status_code not in GONE:
            self._answer(response)

    def test_connection(self) -> str:
        probe = "tongfa-connection-test"
        response = self._call("GET", self._item_url(probe), key=probe)
        if response.status_code not in (200, 404):
            self._answer(response)
        return f"{self.config.endpoint} 可连接，签名已被接受"

    # ---------------------------------------------------------------- plumbing

    def _item_url(self, key: str) -> str:
        return f"{self.config.endpoint.rstrip('/')}/{quote(key, safe='')}"

    def _call(self, method: str, url: str, data: bytes = b"", *, key: str) -> requests.Response:
        assert self.credentials is not None
        if not self.credentials.secret:
            raise CredentialsExpired("未配置签名密钥", code="no_secret")
        signed = data or f"{method} {urlsplit(url).path}".encode()
        message_id = key if method == "POST" else f"{key}.{method.lower()}"
        headers = {**webhook_headers(self.credentials.secret, message_id, self.clock(), signed),
                   "Accept": "application/json"}
        if data:
            headers["Content-Type"] = "application/json; charset=utf-8"
            headers["Idempotency-Key"] = key
        return http.call(self.http, method, url, data=data or None, headers=headers,
                         read_timeout=self.config.timeout_seconds)

    def _answer(self, response: requests.Response) -> JSON:
        """The CMS's JSON answer, or the typed error its status means."""
        # messages say the status only: what the remote side wrote is not repeated anywhere
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            raise RateLimited(f"网站 CMS 限流（HTTP {status}）", code=status, retry_after=wait
                              if wait is not None else self.config.rate_limit_retry_seconds)
        if status >= 500:  # the webhook-id makes a retry safe even if it did act
            raise RetryableError(f"网站 CMS 暂时出错（HTTP {status}）", code=status,
                                 retry_after=_retry_after(response))
        if status in (401, 403):
            raise CredentialsExpired(f"网站 CMS 拒绝了签名（HTTP {status}），请核对密钥",
                                     code=status)
        if status >= 400:
            raise PermanentError(f"网站 CMS 拒收（HTTP {status}）", code=status)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("id") in (None, ""):
            raise OutcomeUnknown(f"网站 CMS 已应答 HTTP {status}，但答复中没有 id",
                                 code="no_id")
        return answer

    def _receipt(self, answer: JSON, payload: JSON, key: str) -> Receipt:
        when = answer.get("published_at")
        try:
            at = dt.datetime.fromisoformat(when).astimezone(dt.UTC) if when else None
        except (TypeError, ValueError):
            at = None
        return Receipt(str(answer["id"]), str(answer.get("url") or payload["document"]["url"]),
                       at or dt.datetime.now(dt.UTC),
                       {"key": key, "version": payload["document"]["version"]})


def body(payload: JSON) -> bytes:
    """The exact bytes sent and signed: canonical JSON, UTF-8, Chinese unescaped."""
    return _canonical(payload["document"]).encode("utf-8")


def _canonical(document: JSON) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds or as an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
