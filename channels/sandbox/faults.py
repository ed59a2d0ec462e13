"""Fault injection shared by the API sandboxes, and the bits of plumbing both need.

Tests make a sandbox misbehave the way the real platform does (slow answers, busy
errors, rate limits, expired tokens, an answer lost after the post was stored,
a platform audit rejection) through one `Faults` object: from Python
(`app.state.sandbox.faults.set(...)`) or over HTTP (`POST /_sandbox/faults` with
the same fields as JSON). Setting replaces the whole set (fields not given go back
to their defaults), so a test states exactly which faults are on; `update()` (or
`?merge=1`) changes only the given fields. Randomness comes from a seeded RNG, so
a run with a `busy_share` is reproducible.

A `schedule` plans faults by request count instead of by time, so a run on a loaded
machine meets the same faults as one on an idle machine: each rule names a path (its
ending), a fault and which requests to that path get it (`at` numbers, `every` k from
`offset`, or a `share` decided by hashing seed, path and number, not by arrival order):

    {"path": "statuses/share.json", "fault": "drop", "at": [2, 9]}
    {"path": "freepublish/submit", "fault": "busy", "every": 5, "offset": 3}
    {"path": "/api/releases", "fault": "status", "status": 503, "share": 0.1}

Faults: busy, drop, slow (`ms`), expire (tokens expire from this request on), quota
(WeChat 45009), status (the CMS answers `status`), and whatever a sandbox asks for by
name. Every fault that really happened, planned or not, goes into the fault log
(`GET /_sandbox/faults/log`), which is how a test proves its faults happened.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import random
import threading
import time
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

DROP_MODES = ("504", "close")
RULE_KEYS = {"path", "fault", "at", "every", "offset", "share", "ms", "status", "mode"}
# the request being answered: (path, its number among requests to that path); set on arrival
ARRIVAL: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "sandbox_arrival", default=None)


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
    schedule: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # by count

    def check(self) -> None:
        for rule in self.schedule:
            if not isinstance(rule, dict) or not {"path", "fault"} <= set(rule) \
                    or set(rule) - RULE_KEYS:
                raise ValueError(f"a schedule rule has path, fault and some of {sorted(RULE_KEYS)}")
            if not any(k in rule for k in ("at", "every", "share")):
                raise ValueError("a schedule rule says which requests: at, every or share")
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
        self.arrivals: Counter[str] = Counter()  # requests per path, for the schedule
        self.log: list[dict[str, Any]] = []  # every fault that really happened
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
            self.arrivals.clear()
            self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dataclasses.asdict(self._settings)

    @property
    def now(self) -> FaultSettings:
        """A copy of the current settings, to read several fields consistently."""
        with self._lock:
            return dataclasses.replace(self._settings)

    # ------------------------------------------------------------------ the schedule

    def arrive(self, path: str) -> int:
        """Count a request to `path` and make it the one the schedule is asked about."""
        with self._lock:
            self.arrivals[path] += 1
            n = self.arrivals[path]
        ARRIVAL.set((path, n))
        if self.planned("expire") is not None:
            self.update(expire_tokens=True)
        return n

    def planned(self, fault: str) -> dict[str, Any] | None:
        """The schedule's rule that gives this request `fault` (logged), else None."""
        arrival = ARRIVAL.get()
        if arrival is None:
            return None
        path, n = arrival
        with self._lock:
            rules, seed = list(self._settings.schedule), self._seed
        for index, rule in enumerate(rules):
            if rule["fault"] == fault and path.endswith(rule["path"]) \
                    and _hits(rule, n, f"{seed}/{index}/{path}"):
                self.note(fault, "schedule", **{k: v for k, v in rule.items()
                                               if k in ("ms", "status", "mode")})
                return rule
        return None

    def note(self, fault: str, source: str, **details: Any) -> None:
        """Put a fault that happened into the fault log."""
        path, n = ARRIVAL.get() or ("", 0)
        with self._lock:
            self.log.append({"at": time.time(), "path": path, "n": n, "fault": fault,
                             "source": source, **details})

    def logged(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self.log]

    def happened(self) -> Counter[str]:
        """How many times each fault really happened."""
        return Counter(entry["fault"] for entry in self.logged())

    # ------------------------------------------------------------------ deciding

    async def delay(self) -> None:
        latency = self.now.latency_ms
        slow = self.planned("slow")
        if slow is not None:
            latency += float(slow.get("ms", 3000))
        elif latency:
            self.note("slow", "latency_ms", ms=latency)
        if latency:
            await asyncio.sleep(latency / 1000)

    def take_busy(self) -> bool:
        """Whether this call finds the platform busy (consumes `busy_next` first)."""
        if self.planned("busy") is not None:
            return True
        with self._lock:
            if self._settings.busy_next > 0:
                self._settings.busy_next -= 1
                source = "busy_next"
            else:
                share = self._settings.busy_share
                source = "busy_share" if share and self._rng.random() < share else ""
        if source:
            self.note("busy", source)
        return bool(source)

    def take_drop(self) -> str | None:
        """The drop mode if this post's answer is to be lost (consumes `drop_responses`)."""
        rule = self.planned("drop")
        if rule is not None:
            return str(rule.get("mode") or self.now.drop_mode)
        with self._lock:
            if self._settings.drop_responses <= 0:
                return None
            self._settings.drop_responses -= 1
            mode = self._settings.drop_mode
        self.note("drop", "drop_responses", mode=mode)
        return mode


def _hits(rule: dict[str, Any], n: int, salt: str) -> bool:
    """Whether request number `n` is one the rule picks: by count, or by a hash of its number."""
    if n in rule.get("at", ()):
        return True
    every = int(rule.get("every") or 0)
    if every > 0 and n >= int(rule.get("offset", every)) \
            and (n - int(rule.get("offset", every))) % every == 0:
        return True
    share = float(rule.get("share") or 0.0)
    if share > 0:
        draw = int.from_bytes(hashlib.sha256(f"{salt}/{n}".encode()).digest()[:8], "big")
        return draw / 2**64 < share
    return False


# ---------------------------------------------------------------------- plumbing

GATEWAY_TIMEOUT = ("<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
                   "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n")
RAW_SEND = "sandbox.raw_send"


class SandboxApp(FastAPI):
    """A FastAPI app that keeps the server's own `send`, so a fault can drop a connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault(RAW_SEND, send)
            faults = getattr(self.state, "faults", None)
            if faults is not None and not scope["path"].startswith("/_sandbox/"):
                faults.arrive(scope["path"])  # counted for the schedule before anything else
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
    """`GET/POST /_sandbox/faults` on a sandbox app, and the fault log."""
    app.state.faults = faults  # SandboxApp counts requests for the schedule

    @app.get("/_sandbox/faults")
    def get_faults() -> dict[str, Any]:
        return faults.snapshot()

    @app.get("/_sandbox/faults/log")
    def get_fault_log() -> list[dict[str, Any]]:
        return faults.logged()

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
