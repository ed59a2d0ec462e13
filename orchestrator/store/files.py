"""Content-addressed file store: a file's name is the SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path

from channels.contract import Attachment


def ref(data: bytes, filename: str) -> dict[str, str]:
    """What a release keeps of a file: its digest, its name, its media type."""
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {"sha256": hashlib.sha256(data).hexdigest(), "filename": filename,
            "media_type": media_type}


def put(root: Path, data: bytes, filename: str) -> dict[str, str]:
    kept = ref(data, filename)
    digest = kept["sha256"]
    target = root / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)  # whole or not at all
    return kept


def attachment(root: Path, ref: dict[str, str]) -> Attachment:
    digest = ref["sha256"]
    return Attachment(digest, ref["filename"], ref["media_type"], root / digest[:2] / digest)
