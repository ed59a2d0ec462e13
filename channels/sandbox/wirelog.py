"""The wire log: every request that reached a sandbox, as the platform saw it.

What "exactly once" is checked against. Each sandbox (Weibo, WeChat, the desk's SFTP
and SMTP, the CMS receiver) records every call that reached it, including the ones it
refused (a repeat, a fault, a rule), with:

    n            its place in this log
    sandbox      which sandbox ("weibo", "wechat", "sftp", "smtp", "cms")
    received_at  when it reached the platform; answered_at when the platform decided
    account      whose call it was (uid, appid, login, recipient, endpoint)
    operation    the platform's name for it (share, freepublish/submit, rename, DATA, POST)
    create       whether it creates or publishes something readers see
    target       what the call is about, as the request carries it (the release link in
                 a status, an article's source URL, a file name, a Message-ID, a webhook-id)
    digest       SHA-256 of the content sent
    answer       what the platform answered (an error code, "ok", "dropped:504", ...)
    accepted     whether this call made the item live (a refusal and a fault are not)

It is kept in memory, readable over HTTP (`GET /_sandbox/wire`, loopback only like the
sandbox) and, given a directory, appended to `<directory>/<sandbox>.wire.jsonl` as it
happens, so a rig can collect it even from a sandbox in another process.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def digest(content: bytes | str | None) -> str:
    if content is None:
        return ""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


class WireLog:
    def __init__(self, sandbox: str, directory: Path | None = None) -> None:
        self.sandbox, self.directory = sandbox, directory
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, *, account: str, operation: str, target: str, answer: str,
               accepted: bool, create: bool, content: bytes | str | None = None,
               received_at: float | None = None) -> dict[str, Any]:
        now = time.time()
        entry = {"sandbox": self.sandbox, "received_at": received_at or now,
                 "answered_at": now, "account": account, "operation": operation,
                 "create": create, "target": target, "digest": digest(content),
                 "answer": answer, "accepted": accepted}
        with self._lock:
            entry = {"n": len(self._entries) + 1, **entry}
            self._entries.append(entry)
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                with (self.directory / f"{self.sandbox}.wire.jsonl").open("a") as out:
                    out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return dict(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def read(directory: Path) -> list[dict[str, Any]]:
    """Every entry of every wire log kept in `directory`."""
    found = []
    for path in sorted(directory.glob("*.wire.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def install(app: FastAPI, log: WireLog) -> None:
    """`GET /_sandbox/wire` on a sandbox app."""
    app.state.wire = log

    @app.get("/_sandbox/wire")
    def wire() -> list[dict[str, Any]]:
        return log.entries()
