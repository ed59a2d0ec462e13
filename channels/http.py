"""HTTP for adapters: one session per adapter, and network failures typed the one right way.

A failure before the request left is retryable; a timeout after it left is
`OutcomeUnknown` — the channel may have acted — and goes to reconciliation.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from requests.utils import select_proxy
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random

from channels import outbound
from channels.contract import (
    JSON,
    ChannelAdapter,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    config_value,
)

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15.0
_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s]+")


def scrub(text: str) -> str:
    """Error texts name URLs; the token in a query string must not reach a log."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


def _not_sent(exc: BaseException) -> bool:
    return isinstance(exc, RetryableError) and exc.code == "unreachable"


# In-call retries only where the request provably never left (the connection was refused or
# timed out while connecting): a few quick tries inside one attempt. Everything else is the
# orchestrator's one retry policy, so the two layers never multiply each other's attempts.
_connect_again = retry(retry=retry_if_exception(_not_sent), stop=stop_after_attempt(3),
                       wait=wait_random(0.05, 0.3), reraise=True)


@_connect_again
def call(
    session: requests.Session, method: str, url: str, *, read_timeout: float = READ_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    try:
        return session.request(method, url, timeout=(CONNECT_TIMEOUT, read_timeout), **kwargs)
    except outbound.OutboundRefused as exc:  # nothing was sent
        raise PermanentError(f"目标地址不允许连接：{exc.reason}", code="outbound_refused") from None
    except (requests.ConnectTimeout, requests.ConnectionError) as exc:
        if isinstance(exc, requests.ConnectionError) and _after_sending(exc):
            raise OutcomeUnknown(f"connection dropped after sending: {scrub(str(exc))}",
                                 code="connection_dropped") from None
        raise RetryableError(f"cannot reach {scrub(url)}: {type(exc).__name__}",
                             code="unreachable") from None
    except requests.ReadTimeout:
        raise OutcomeUnknown(f"no answer within {read_timeout}s from {scrub(url)}",
                             code="timeout") from None


def preconnect(session: requests.Session, url: str) -> None:
    """Open a connection to `url`'s host in the session's pool, where the session's next
    call there picks it up (nothing is sent). Best effort: when it cannot, the call
    connects as it always did. Through a proxy the proxy connects: nothing to open."""
    try:
        request = session.prepare_request(requests.Request("GET", url))
        env = session.merge_environment_settings(request.url, {}, None, None, None)
        if select_proxy(request.url, env["proxies"]):
            return
        adapter = session.get_adapter(request.url)
        if not isinstance(adapter, requests.adapters.HTTPAdapter):
            return
        # the pool the call itself will take, keyed by the same TLS settings
        pool = adapter.get_connection_with_tls_context(request, env["verify"],
                                                       env["proxies"], env["cert"])
        conn = pool._get_conn()  # one that went stale is closed here
        try:
            if conn.sock is None:
                conn.timeout = CONNECT_TIMEOUT
                conn.connect()
        finally:
            pool._put_conn(conn)
    except Exception as exc:  # refused, unreachable, not allowed: the call will say so
        log.debug("no connection opened ahead to %s: %s", scrub(url), type(exc).__name__)


def _after_sending(exc: requests.ConnectionError) -> bool:
    """The server closed the connection without answering (e.g. RemoteDisconnected)."""
    text = str(exc)
    return "RemoteDisconnected" in text or "Connection aborted" in text


class HttpChannel(ChannelAdapter):
    """An adapter that talks HTTP: one connection-pooling session per adapter instance,
    connecting only to addresses outbound.check() accepts."""

    def __init__(self, config: JSON, credentials: JSON | None = None) -> None:
        super().__init__(config, credentials)
        self.http = outbound.session(self.outbound)

    def allow_outbound(self, allowed: outbound.Allowed) -> None:
        super().allow_outbound(allowed)
        self.http = outbound.session(self.outbound)

    def connect(self) -> None:
        """A connection open to each HTTP endpoint of the config (the API base)."""
        config = self.config.model_dump()
        for key in self.endpoints:
            value = config_value(config, key)
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                preconnect(self.http, value)
