"""Channel credentials at rest: Fernet, with the key from the environment.

On the embedded default a key is made once under var/ (mode 0600), so a newcomer
needs to configure nothing; production sets TONGFA_SECRET_KEY.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from orchestrator.settings import Settings


class CredentialsUnreadable(Exception):
    pass


def key_file(path: Path, make: Callable[[], bytes] = Fernet.generate_key) -> bytes:
    """A key made once, readable only by its owner; the same for every process."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(make())
    return path.read_bytes().strip()


@cache  # read once per process: every delivery step decrypts a channel's credentials
def _key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return key_file(Path(settings.var_dir) / "secret.key")


def encrypt(settings: Settings, credentials: dict[str, Any]) -> str:
    if not credentials:
        return ""
    return Fernet(_key(settings)).encrypt(json.dumps(credentials).encode()).decode()


def decrypt(settings: Settings, token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(Fernet(_key(settings)).decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable("channel credentials cannot be decrypted with this key") from None
