"""From a release to what each channel will show, and the hash that binds it.

One way from a release to a ReleaseView (release_view), for a stored release and for one
not saved yet (a release file, the console's compose form: draft) alike, so a preview
shows what reviewers will sign — a correction as a correction.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import object_session
from sqlmodel import Session

from channels.contract import Attachment, ChannelAdapter, ReleaseView
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.hashing import content_hash
from orchestrator.domain.release import ReleaseInput, sanitised_body
from orchestrator.settings import Settings
from orchestrator.store import files
from orchestrator.store.models import Release
from orchestrator.usecases import versions
from orchestrator.usecases.channels import adapter_for, get_channel

PREVIEW_ID = 0  # a release not saved yet has no id: its preview shows this one


def release_url(settings: Settings, release_id: int) -> str:
    """The stable address of a release on the government website."""
    return f"{settings.site_base_url.rstrip('/')}/articles/{release_id}.html"


def located(paths: list[str], base: Path, field: str) -> list[Path]:
    """The files a release input names, relative to `base` (the release file's folder)."""
    found, problems = [], []
    for i, name in enumerate(paths):
        path = base / name  # an absolute name stays itself
        if not path.is_file():
            problems.append((f"{field}[{i}]", f"file not found: {name}"))
        found.append(path)
    if problems:
        raise InvalidInput(problems)
    return found


def set_content(release: Release, data: ReleaseInput, images: list[dict[str, str]],
                attachments: list[dict[str, str]]) -> None:
    """Put what `data` says into `release`: everything an adapter renders from it."""
    meta = data.metadata.model_dump(mode="json")
    meta["date_published"] = meta["date_published"] or utcnow().date().isoformat()
    release.title, release.summary = data.title, data.summary
    release.body_source, release.body_format = data.body, data.body_format
    release.body_html = sanitised_body(data.body, data.body_format)
    release.meta, release.site_column = meta, data.column
    release.channels, release.overrides = list(data.channels), data.overrides
    release.images, release.attachments = images, attachments
    release.priority, release.parent_id = data.priority.value, data.parent
    release.corrects_id = data.corrects
    release.go_live_at = data.go_live_at


def draft(data: ReleaseInput, base: Path) -> tuple[Release, dict[str, Path]]:
    """The release `data` would become once saved (releases.create), without saving it or
    its files: the release, and where each of its files (by digest) is read from meanwhile."""
    release = Release(title="", body_source="", body_html="", author="")
    files_at: dict[str, Path] = {}

    def refs(paths: list[str], field: str) -> list[dict[str, str]]:
        found = []
        for path in located(paths, base, field):
            found.append(files.ref(path.read_bytes(), path.name))
            files_at[found[-1]["sha256"]] = path.resolve()
        return found

    set_content(release, data, refs(data.images, "images"), refs(data.attachments, "attachments"))
    return release, files_at


def release_view(settings: Settings, release: Release, channel: str, *,
                 session: Session | None = None,
                 files_at: Mapping[str, Path] | None = None) -> ReleaseView:
    """What `channel`'s adapter sees of `release`, stored or a draft: `session` finds the item
    a draft corrects, `files_at` where a draft's files are (else the file store)."""
    store = settings.resolved_files_dir
    session = session if session is not None else object_session(release)
    if session is None:
        root, version = release.corrects_id, 1
    elif release.id is None and release.corrects_id is None:
        root, version = None, 1  # a new item
    else:
        root, version = versions.item_version(session, release)
    corrects = root if release.corrects_id is not None else None  # the first page, at any depth
    release_id = PREVIEW_ID if release.id is None else release.id

    def attached(ref: dict[str, str]) -> Attachment:
        at = (files_at or {}).get(ref["sha256"])
        if at is None:
            return files.attachment(store, ref)
        return Attachment(ref["sha256"], ref["filename"], ref["media_type"], at)

    return ReleaseView(
        id=release_id,
        title=release.title,
        body_html=release.body_html,
        summary=release.summary,
        metadata={**{k: str(v) for k, v in release.meta.items() if v is not None},
                  "column": release.site_column},
        priority=release.priority,
        url=release_url(settings, release_id),
        overrides=dict(release.overrides.get(channel, {})),
        images=tuple(attached(ref) for ref in release.images),
        attachments=tuple(attached(ref) for ref in release.attachments),
        parent_id=release.parent_id,
        go_live_at=release.go_live_at,
        corrects_id=corrects,
        corrects_url=release_url(settings, corrects) if corrects else None,
        version=version,
    )


def hashed_fields(release: Release) -> dict[str, Any]:
    """The release-level part of what reviewers sign (besides every channel's payload)."""
    fields = {
        "id": release.id,
        "title": release.title,
        "summary": release.summary,
        "metadata": release.meta,
        "column": release.site_column,
        "priority": release.priority,
        "parent_id": release.parent_id,
        "corrects_id": release.corrects_id,
        "go_live_at": iso(release.go_live_at),  # the moment is signed too
        "images": [ref["sha256"] for ref in release.images],
        "attachments": [ref["sha256"] for ref in release.attachments],
    }
    if release.golive_group:  # with whom it goes live is signed; without a group, as before
        fields["golive_group"] = release.golive_group
    return fields


def adapters(settings: Settings, session: Session, release: Release) -> dict[str, ChannelAdapter]:
    return {name: adapter_for(settings, get_channel(session, name)) for name in release.channels}


def render_all(
    settings: Settings, session: Session, release: Release
) -> tuple[dict[str, dict[str, Any]], str]:
    """Every target channel's payload, and the content hash over them all."""
    payloads = {
        name: adapter.render(release_view(settings, release, name))
        for name, adapter in adapters(settings, session, release).items()
    }
    return payloads, content_hash(hashed_fields(release), payloads)
