"""Fault injection shared by the API sandboxes, and the bits of plumbing both need.

Tests make a sandbox misbehave the way the real platform does (slow answers, busy
errors, rate limits, expired tokens, an answer lost after the post was stored,
a platform audit rejection) through one `Faults` object: from Python
(`app.state.sandbox.faults.set(...)`) or over HTTP (`POST /_sandbox/faults` with
the same fields as JSON). Setting replaces the whole set (fields not given go back
to their defaults), so a test states exactly which faults are on; `update()` (or
`?merge=1`) changes only the given fields. Randomness comes from a seeded RNG, so
a run with a `busy_share` is reproducible.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

DROP_MODES = ("504", "close")


@dataclasses.dataclass
class FaultSettings:
    """What can go wrong; the defaults are a healthy platform."""

    latency_ms: float = 0.0  # added before every API answer
    busy_share: float = 0.0  # share (0..1) of API calls answered "system busy"
    busy_next: int = 0  # the next N API calls are answered "system busy"
    busy_code: int | None = None  # None: the platform's usual code (Weibo 10001, WeChat -1)
    rate_limit: int | None = None  # N posts per window; None: the app's configured limit
    rate_window_s: float | None = None  # the window in seconds; None: the app's window
    expire_tokens: bool = False  # Weibo: tokens answer "expired" while on; WeChat: at once
    drop_responses: int = 0  # the next N posts are stored, then the answer is lost
    drop_mode: str = "504"  # "504": gateway timeout page; "close": connection closed
    quota_exhausted: bool = False  # WeChat: every API call answers 45009
    audit_reject: bool = False  # WeChat: publishing ends in status 4 (platform audit)
    publish_fail_status: int | None = None  # WeChat: publishing ends in status 2 or 3
    publish_seconds: float = 0.0  # WeChat: how long publishing stays in status 1
    seed: int | None = None  # reseeds the RNG when given

    def check(self) -> None:
        if not 0.0 <= self.busy_share <= 1.0:
            raise ValueError("busy_share must be within 0..1")
        if self.drop_mode not in DROP_MODES:
            raise ValueError(f"drop_mode must be one of {DROP_MODES}")
        if self.publish_fail_status not in (None, 2, 3):
            raise ValueError("publish_fail_status must be 2, 3 or null")
        for name in ("latency_ms", "busy_next", "drop_responses", "publish_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.rate_limit is not None and self.rate_limit < 0:
            raise ValueError("rate_limit must not be negative")


FIELDS = {f.name for f in dataclasses.fields(FaultSettings)}


class Faults:
    """Thread-safe fault settings plus the seeded RNG that decides random ones."""

    def __init__(self, seed: int = 0, **settings: Any) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self._settings = FaultSettings()
        self.expired_before = 0.0  # tokens issued up to this instant are expired (WeChat)
        if settings:
            self.set(**settings)

    # ------------------------------------------------------------------ setting

    def set(self, **settings: Any) -> dict[str, Any]:
        """Replace every setting: those not given return to their defaults."""
        return self._apply(FaultSettings(), settings)

    def update(self, **settings: Any) -> dict[str, Any]:
        """Change only the given settings."""
        with self._lock:
            base = dataclasses.replace(self._settings)
        return self._apply(base, settings)

    def _apply(self, base: FaultSettings, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = set(settings) - FIELDS
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        new = dataclasses.replace(base, **settings)
        new.check()
        with self._lock:
            self._settings = new
            if new.seed is not None:
                self._seed = new.seed
                self._rng = random.Random(new.seed)
            if new.expire_tokens:
                self.expired_before = time.time()
        return self.snapshot()

    def expire_tokens_now(self) -> None:
        """Every token issued so far is expired (WeChat); Weibo tokens while the flag is on."""
        self.update(expire_tokens=True)

    def reset(self) -> None:
        with self._lock:
            self._settings = FaultSettings()
            self._rng = random.Random(self._seed)
            self.expired_before = 0.0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dataclasses.asdict(self._settings)

    @property
    def now(self) -> FaultSettings:
        """A copy of the current settings, to read several fields consistently."""
        with self._lock:
            return dataclasses.replace(self._settings)

    # ------------------------------------------------------------------ deciding

    async def delay(self) -> None:
        latency = self.now.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)

    def take_busy(self) -> bool:
        """Whether this call finds the platform busy (consumes `busy_next` first)."""
        with self._lock:
            if self._settings.busy_next > 0:
                self._settings.busy_next -= 1
                return True
            share = self._settings.busy_share
            return bool(share) and self._rng.random() < share

    def take_drop(self) -> str | None:
        """The drop mode if this post's answer is to be lost (consumes `drop_responses`)."""
        with self._lock:
            if self._settings.drop_responses > 0:
                self._settings.drop_responses -= 1
                return self._settings.drop_mode
            return None


# ---------------------------------------------------------------------- plumbing

GATEWAY_TIMEOUT = ("<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
                   "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n")
RAW_SEND = "sandbox.raw_send"


class SandboxApp(FastAPI):
    """A FastAPI app that keeps the server's own `send`, so a fault can drop a connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault(RAW_SEND, send)
        await super().__call__(scope, receive, send)


class DroppedAnswer(Response):
    """The post is stored, but the client hears nothing usable about it."""

    def __init__(self, mode: str) -> None:
        super().__init__(GATEWAY_TIMEOUT, status_code=504, media_type="text/html")
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mode != "close":
            await super().__call__(scope, receive, send)
            return
        cycle = getattr(scope.get(RAW_SEND), "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is not None:  # uvicorn: close before a byte of answer is sent
            transport.close()
            await asyncio.sleep(0.05)  # lets the server see the disconnect; it then stays quiet
            return
        # behind another app's middleware: start an answer and break it off mid-way
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"64")]})


def install_admin(app: FastAPI, faults: Faults) -> None:
    """`GET/POST /_sandbox/faults` on a sandbox app."""

    @app.get("/_sandbox/faults")
    def get_faults() -> dict[str, Any]:
        return faults.snapshot()

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request, merge: bool = False) -> Any:
        body = await request.body()
        settings = await request.json() if body.strip() else {}
        if not isinstance(settings, dict):
            return JSONResponse({"error": "a JSON object of fault fields"}, status_code=400)
        try:
            return faults.update(**settings) if merge else faults.set(**settings)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)


def image_kind(data: bytes) -> str | None:
    """The image format from its first bytes (as platforms check), not from the file name."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return None
