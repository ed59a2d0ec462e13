"""`tongfa preview`: what one adapter kind would send for a release file, without sending it."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import Any

from channels.contract import Attachment, ReleaseView
from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import ReleaseInput, parse_release, sanitised_body
from orchestrator.usecases.channels import adapter_for, list_channels
from orchestrator.usecases.rendering import release_url
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

PREVIEW_ID = 0  # a release file has no id yet


def _attachments(paths: list[str], base: Path, field: str) -> tuple[Attachment, ...]:
    found = []
    for i, name in enumerate(paths):
        path = base / name
        if not path.is_file():
            raise InvalidInput([(f"{field}[{i}]", f"file not found: {name}")])
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        found.append(Attachment(hashlib.sha256(path.read_bytes()).hexdigest(), path.name,
                                media, path.resolve()))
    return tuple(found)


def view_of(ctx: Context, data: ReleaseInput, base: Path, channel: str) -> ReleaseView:
    meta = {k: str(v) for k, v in data.metadata.model_dump(mode="json").items() if v is not None}
    return ReleaseView(
        id=PREVIEW_ID, title=data.title, body_html=sanitised_body(data.body, data.body_format),
        summary=data.summary, metadata={**meta, "column": data.column},
        priority=data.priority.value, url=release_url(ctx.settings, PREVIEW_ID),
        overrides=dict(data.overrides.get(channel, {})),
        images=_attachments(data.images, base, "images"),
        attachments=_attachments(data.attachments, base, "attachments"),
        parent_id=data.parent, go_live_at=data.go_live_at,
    )


def preview_file(ctx: Context, file: Path, raw: Any, kind: str, fmt: str | None) -> str:
    data = parse_release(raw)
    try:
        adapter_class(kind)  # an unknown kind is refused before anything else
    except UnknownKind as exc:
        raise InvalidInput([("kind", str(exc))]) from None
    with UnitOfWork(ctx) as uow:
        configured = [c for c in list_channels(uow.session) if c.kind == kind]
        instance = next((c for c in configured if c.name in data.channels), None)
        instance = instance or (configured[0] if configured else None)
        if instance is None:
            raise InvalidInput([("kind", f"no channel of kind {kind!r} is configured")])
        adapter = adapter_for(ctx.settings, instance)
    if fmt is not None and fmt not in adapter.formats:
        raise InvalidInput([("format", f"{kind} can show {', '.join(adapter.formats)}")])
    payload = adapter.render(view_of(ctx, data, file.parent, instance.name))
    return adapter.document(payload, fmt or adapter.formats[0])
