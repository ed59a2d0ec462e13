"""`tongfa preview`: what one adapter kind would send for a release file, without sending it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import parse_release
from orchestrator.usecases.channels import adapter_for, list_channels
from orchestrator.usecases.releases import correction_problems
from orchestrator.usecases.rendering import draft, release_view
from orchestrator.usecases.unit_of_work import Context, UnitOfWork


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
        if problems := correction_problems(uow.session, data.corrects, None):
            raise InvalidInput(problems)
        release, files_at = draft(data, file.parent)
        view = release_view(ctx.settings, release, instance.name, session=uow.session,
                            files_at=files_at)
    return adapter.document(adapter.render(view), fmt or adapter.formats[0])
