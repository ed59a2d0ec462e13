"""One WeChat access_token per account, shared by every worker process.

WeChat keeps one valid token per account: if every worker fetched its own, they would
invalidate each other. The token is cached in a file (one host) or Redis (many hosts)
and refreshed once, under a lock, by whichever worker finds it stale; the others wait
and read the new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

REFRESH_MARGIN = 300.0  # renew five minutes before expiry, as the platform does


class TokenStore(Protocol):
    def read(self, appid: str) -> tuple[str, float] | None: ...
    def write(self, appid: str, token: str, expires_at: float) -> None: ...
    def lock(self, appid: str) -> Iterator[None]: ...
    def remember(self, name: str, value: str) -> None: ...
    def remember_first(self, name: str, value: str) -> bool: ...
    def forget(self, name: str) -> None: ...
    def recall(self, name: str) -> str | None: ...


class FileTokenStore:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, appid: str) -> Path:
        return self.dir / f"wechat-{appid}.json"

    def read(self, appid: str) -> tuple[str, float] | None:
        try:
            data = json.loads(self._path(appid).read_text())
        except (OSError, ValueError):
            return None
        return data["token"], float(data["expires_at"])

    def write(self, appid: str, token: str, expires_at: float) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir)
        with os.fdopen(fd, "w") as handle:
            json.dump({"token": token, "expires_at": expires_at}, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._path(appid))

    def _note(self, name: str) -> Path:
        return self.dir / f"note-{hashlib.sha256(name.encode()).hexdigest()[:32]}"

    def _written(self, value: str) -> str:
        """A temporary file holding `value` whole, to be put in place in one step."""
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".note-")
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return tmp

    def remember(self, name: str, value: str) -> None:
        # whole or not at all: a reader never sees a half-written note
        os.replace(self._written(value), self._note(name))

    def remember_first(self, name: str, value: str) -> bool:
        """Note `value` only if nothing is noted under `name`; True when this call did.
        One step (a hard link fails if the name exists): of two workers, one wins."""
        tmp = self._written(value)
        try:
            os.link(tmp, self._note(name))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def forget(self, name: str) -> None:
        self._note(name).unlink(missing_ok=True)

    def recall(self, name: str) -> str | None:
        try:
            return self._note(name).read_text()
        except FileNotFoundError:
            return None

    @contextmanager
    def lock(self, appid: str) -> Iterator[None]:
        with open(self.dir / f"wechat-{appid}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class RedisTokenStore:
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def read(self, appid: str) -> tuple[str, float] | None:
        raw = self.redis.get(f"tongfa:wechat:token:{appid}")
        if raw is None:
            return None
        data = json.loads(raw)
        return data["token"], float(data["expires_at"])

    def write(self, appid: str, token: str, expires_at: float) -> None:
        ttl = max(1, int(expires_at - time.time()))
        self.redis.set(f"tongfa:wechat:token:{appid}",
                       json.dumps({"token": token, "expires_at": expires_at}), ex=ttl)

    def remember(self, name: str, value: str) -> None:
        self.redis.set(f"tongfa:wechat:note:{name}", value, ex=7 * 86400)

    def remember_first(self, name: str, value: str) -> bool:
        return bool(self.redis.set(f"tongfa:wechat:note:{name}", value, ex=7 * 86400, nx=True))

    def forget(self, name: str) -> None:
        self.redis.delete(f"tongfa:wechat:note:{name}")

    def recall(self, name: str) -> str | None:
        raw = self.redis.get(f"tongfa:wechat:note:{name}")
        return None if raw is None else raw.decode()

    @contextmanager
    def lock(self, appid: str) -> Iterator[None]:
        with self.redis.lock(f"tongfa:wechat:lock:{appid}", timeout=30, blocking_timeout=30):
            yield


def store_for(location: str) -> TokenStore:
    if location.startswith(("redis://", "rediss://")):
        return RedisTokenStore(location)
    return FileTokenStore(location or Path(tempfile.gettempdir()) / "tongfa-wechat-tokens")


class TokenCache:
    """The account's token: cached, shared, refreshed once when stale or rejected."""

    def __init__(self, store: TokenStore, appid: str, fetch: Callable[[], tuple[str, float]]):
        self.store, self.appid, self.fetch = store, appid, fetch

    def get(self) -> str:
        cached = self.store.read(self.appid)
        if cached and cached[1] - REFRESH_MARGIN > time.time():
            return cached[0]
        return self.refresh(stale=cached[0] if cached else None)

    def refresh(self, stale: str | None) -> str:
        """Fetch a new token unless another worker already replaced `stale`."""
        with self.store.lock(self.appid):
            cached = self.store.read(self.appid)
            if cached and cached[0] != stale and cached[1] - REFRESH_MARGIN > time.time():
                return cached[0]  # someone refreshed while we waited for the lock
            token, expires_in = self.fetch()
            self.store.write(self.appid, token, time.time() + expires_in)
            return token
