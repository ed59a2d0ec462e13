"""From a stored release to what each channel will show, and the hash that binds it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session
from sqlmodel import Session

from channels.contract import ChannelAdapter, ReleaseView
from orchestrator.domain.clock import iso
from orchestrator.domain.hashing import content_hash
from orchestrator.settings import Settings
from orchestrator.store import files
from orchestrator.store.models import Release
from orchestrator.usecases import versions
from orchestrator.usecases.channels import adapter_for, get_channel


def release_url(settings: Settings, release_id: int) -> str:
    """The stable address of a release on the government website."""
    return f"{settings.site_base_url.rstrip('/')}/articles/{release_id}.html"


def release_view(settings: Settings, release: Release, channel: str) -> ReleaseView:
    store = settings.resolved_files_dir
    assert release.id is not None
    session = object_session(release)
    root, version = (release.corrects_id, 1) if session is None else \
        versions.item_version(session, release)
    corrects = root if release.corrects_id is not None else None  # the first page, at any depth
    return ReleaseView(
        id=release.id,
        title=release.title,
        body_html=release.body_html,
        summary=release.summary,
        metadata={**{k: str(v) for k, v in release.meta.items() if v is not None},
                  "column": release.site_column},
        priority=release.priority,
        url=release_url(settings, release.id),
        overrides=dict(release.overrides.get(channel, {})),
        images=tuple(files.attachment(store, ref) for ref in release.images),
        attachments=tuple(files.attachment(store, ref) for ref in release.attachments),
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
