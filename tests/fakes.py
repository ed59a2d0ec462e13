"""A channel that lives in this process: for use-case tests that need no HTTP.

Faithful to the contract: it keeps what was posted, honours idempotency keys in
lookup(), and raises the contract's typed errors from a queue of planned faults.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from pydantic import BaseModel

from channels.contract import (
    JSON,
    ChannelAdapter,
    CredentialsExpired,
    OutcomeUnknowable,
    OutcomeUnknown,
    PermanentError,
    Problem,
    RateLimited,
    Receipt,
    ReleaseView,
    RetryableError,
)

POSTS: dict[str, list[JSON]] = defaultdict(list)  # account -> what went out
FAULTS: dict[tuple[str, str], list[str]] = defaultdict(list)  # (account, phase) -> faults
ALWAYS: dict[tuple[str, str], str] = {}  # (account, phase) -> the fault of every call
CALLS: dict[tuple[str, str], int] = defaultdict(int)  # (account, phase) -> calls that reached it


def reset() -> None:
    POSTS.clear()
    FAULTS.clear()
    ALWAYS.clear()
    CALLS.clear()


def plan(account: str, phase: str, *faults: str) -> None:
    """Make the next calls of `phase` on `account` fail: retryable, rate_limited,
    permanent, unknown_after_post (posted, but the answer is lost), unknown_not_posted
    (Weibo's 20017: an unknown answer, and nothing went out) or unknowable (lookup)."""
    FAULTS[(account, phase)].extend(faults)


def always(account: str, phase: str, fault: str) -> None:
    """Make every call of `phase` on `account` fail so, until reset()."""
    ALWAYS[(account, phase)] = fault


class MemoryConfig(BaseModel):
    account: str
    limit: int = 500


class MemoryCredentials(BaseModel):
    token: str = ""


class MemoryAdapter(ChannelAdapter):
    kind = "memory"
    config_model = MemoryConfig
    credentials_model = MemoryCredentials

    def render(self, release: ReleaseView) -> JSON:
        text = release.overrides.get("text") or f"{release.title} {release.url}"
        return {"text": text, "marker": release.marker, "body": release.body_html}

    def problems(self, payload: JSON) -> list[Problem]:
        if len(payload["text"]) > self.config.limit:
            return [Problem("text", f"{len(payload['text'])} > {self.config.limit}")]
        return []

    def web_hosts(self) -> tuple[str, ...]:
        return ("weibo.com",)  # stands for a Weibo-like account; its posts cannot be told by URL

    def _fault(self, phase: str) -> str | None:
        CALLS[(self.config.account, phase)] += 1
        queue = FAULTS[(self.config.account, phase)]
        fault = queue.pop(0) if queue else ALWAYS.get((self.config.account, phase))
        if fault == "retryable":
            raise RetryableError("busy", code="busy")
        if fault == "rate_limited":
            raise RateLimited("quota", code="quota", retry_after=0.0)
        if fault == "permanent":
            raise PermanentError("refused", code="refused")
        if fault == "credentials":
            raise CredentialsExpired("token expired", code="21327")
        if fault == "unknown_not_posted":
            raise OutcomeUnknown("相似内容，请稍后再试", code="20017")
        if fault == "unknowable":  # a lookup that can never tell (a mail whose sender died)
            raise OutcomeUnknowable("no witness left", code="unconfirmed")
        return fault

    def stage(self, payload: JSON, key: str) -> JSON:
        self._fault("stage")
        return {"draft": key}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        fault = self._fault("publish")
        post = {"id": str(len(POSTS[self.config.account]) + 1), "key": key, **payload,
                "at": dt.datetime.now(dt.UTC)}
        POSTS[self.config.account].append(post)
        if fault == "unknown_after_post":
            raise OutcomeUnknown("answer lost", code="timeout")
        return Receipt(post["id"], f"memory://{self.config.account}/{post['id']}", post["at"])

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        self._fault("lookup")
        for post in POSTS[self.config.account]:
            if post["key"] == key:
                return Receipt(post["id"], f"memory://{self.config.account}/{post['id']}", post["at"])
        return None

    def withdraw(self, receipt: Receipt) -> None:
        POSTS[self.config.account] = [p for p in POSTS[self.config.account]
                                      if p["id"] != receipt.remote_id]


def posts(account: str) -> list[dict[str, Any]]:
    return POSTS[account]
