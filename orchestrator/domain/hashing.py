"""The canonical form that sign-offs and the dispatcher agree on."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Key order, spacing and escaping fixed, so equal content gives equal bytes."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(release_fields: dict[str, Any], payloads: dict[str, Any]) -> str:
    """SHA-256 over the release's metadata and every channel's rendered payload."""
    return sha256_hex(canonical_json({"release": release_fields, "channels": payloads}))
