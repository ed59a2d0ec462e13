"""HTTP for adapters: one session per adapter, and network failures typed the one right way.

A failure before the request left is retryable; a timeout after it left is
`OutcomeUnknown` — the channel may have acted — and goes to reconciliation.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from channels.contract import OutcomeUnknown, RetryableError

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15.0
_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s]+")


def scrub(text: str) -> str:
    """Error texts name URLs; the token in a query string must not reach a log."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


def call(
    session: requests.Session, method: str, url: str, *, read_timeout: float = READ_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    try:
        return session.request(method, url, timeout=(CONNECT_TIMEOUT, read_timeout), **kwargs)
    except (requests.ConnectTimeout, requests.ConnectionError) as exc:
        if isinstance(exc, requests.ConnectionError) and _after_sending(exc):
            raise OutcomeUnknown(f"connection dropped after sending: {scrub(str(exc))}",
                                 code="connection_dropped") from None
        raise RetryableError(f"cannot reach {scrub(url)}: {type(exc).__name__}",
                             code="unreachable") from None
    except requests.ReadTimeout:
        raise OutcomeUnknown(f"no answer within {read_timeout}s from {scrub(url)}",
                             code="timeout") from None


def _after_sending(exc: requests.ConnectionError) -> bool:
    """The server closed the connection without answering (e.g. RemoteDisconnected)."""
    text = str(exc)
    return "RemoteDisconnected" in text or "Connection aborted" in text
