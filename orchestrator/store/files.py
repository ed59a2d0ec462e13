"""Content-addressed file store: a file's name is the SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path

from channels.contract import Attachment


def put(root: Path, data: bytes, filename: str) -> dict[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    target = root / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)  # whole or not at all
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {"sha256": digest, "filename": filename, "media_type": media_type}


def attachment(root: Path, ref: dict[str, str]) -> Attachment:
    digest = ref["sha256"]
    return Attachment(digest, ref["filename"], ref["media_type"], root / digest[:2] / digest)
