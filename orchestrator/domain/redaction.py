"""Keep secrets out of logs, audit rows, attempt messages and API output."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEYS = re.compile(r"(secret|token|password|passwd|credential|api_?key|signature)", re.I)
# access_token=..., "appsecret": "...", Bearer ...
SECRET_IN_TEXT = re.compile(
    r"((?:access_token|appsecret|secret|token|password|api_key)[\"']?\s*[=:]\s*[\"']?)([^\s&\"',}]+)"
    r"|(Bearer\s+)(\S+)",
    re.I,
)
MASK = "***"
# the password of a URL's userinfo: http://user:pw@host, redis://:pw@host
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)([^\s/@]+)(@)", re.I)


def redact_text(text: str) -> str:
    text = SECRET_IN_TEXT.sub(lambda m: (m.group(1) or m.group(3)) + MASK, text)
    return without_url_passwords(text)


def without_url_passwords(value: Any) -> Any:
    """A copy with the password of every URL inside masked (nothing else changed)."""
    if isinstance(value, dict):
        return {k: without_url_passwords(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_url_passwords(v) for v in value]
    if isinstance(value, str):
        return URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), value)
    return value


def redact(value: Any) -> Any:
    """A copy with every secret-named key masked and secrets in strings cut out."""
    if isinstance(value, dict):
        return {
            k: (MASK if SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
