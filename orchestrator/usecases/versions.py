"""Which item a release belongs to, and which version of it each event is.

Every release that corrects another, at any depth, belongs to its first release's item
(one page, one guid). The item's events, in the order the audit trail recorded them,
are its versions: the first release is v1, each correction and each withdrawal the next
(v2, v3, …), so corrections of corrections and withdrawals never share a number, and a
file named by version always holds the same bytes. Each number is fixed when its event
happens: later events never change an earlier release's rendering (nor its sign-off).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from orchestrator.store.models import AuditEvent, Release

VERSION_EVENTS = ("release.created", "release.withdrawn")
VERSIONS_SEEN = "item_versions"  # session.info: release id -> item_version, this transaction


def item_root(session: Session, release: Release) -> int:
    """The first release of the chain of corrections `release` belongs to."""
    seen, current = {release.id}, release
    while current.corrects_id is not None and current.corrects_id not in seen:
        corrected = session.get(Release, current.corrects_id)
        if corrected is None:
            break
        seen.add(corrected.id)
        current = corrected
    assert current.id is not None
    return current.id


def _item(session: Session, root: int) -> list[int]:
    members, frontier = [root], [root]
    while frontier:
        frontier = list(session.exec(select(Release.id).where(Release.corrects_id.in_(frontier),
                                                              Release.id.not_in(members))))
        members += frontier
    return members


def _events(session: Session, root: int) -> list[tuple[str, int]]:
    rows = session.exec(select(AuditEvent.action, AuditEvent.release_id).where(
        AuditEvent.action.in_(VERSION_EVENTS), AuditEvent.release_id.in_(_item(session, root))
    ).order_by(AuditEvent.id)).all()
    return [(action, release_id) for action, release_id in rows]


def item_version(session: Session, release: Release) -> tuple[int, int]:
    """(the item's first release, this release's version of it).

    Kept for the rest of the transaction (a go-live renders every channel of a release
    again): the events it reads are written only as a transaction commits."""
    known = session.info.setdefault(VERSIONS_SEEN, {})
    if release.id not in known:
        known[release.id] = _item_version(session, release)
    return known[release.id]


@sa_event.listens_for(OrmSession, "after_commit")
@sa_event.listens_for(OrmSession, "after_rollback")
def _forget_versions(session: OrmSession) -> None:
    session.info.pop(VERSIONS_SEEN, None)


def _item_version(session: Session, release: Release) -> tuple[int, int]:
    root = item_root(session, release)
    events = _events(session, root)
    for n, (action, release_id) in enumerate(events, start=1):
        if action == "release.created" and release_id == release.id:
            return root, n
    return root, 1 if release.id == root else len(events) + 1


def withdrawal_version(session: Session, release: Release) -> int:
    """The version the latest withdrawal of `release` carries on its item."""
    events = _events(session, item_root(session, release))
    numbered = [n for n, (action, release_id) in enumerate(events, start=1)
                if action == "release.withdrawn" and release_id == release.id]
    return numbered[-1] if numbered else len(events) + 1


def version_problems(session: Session, release: Release | None, corrects: int | None,
                     overrides: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """A `version` override other than the number the orchestrator gives this release
    (`release` None: one not created yet, correcting `corrects`): every other number of
    the item is another event's, and a taken one fails on the channel at go-live."""
    if not any("version" in fields for fields in overrides.values()):
        return []
    if release is not None and release.id is not None:
        own = item_version(session, release)[1]
    elif corrects is not None and (corrected := session.get(Release, corrects)) is not None:
        own = len(_events(session, item_root(session, corrected))) + 1
    else:
        own = 1
    return [(f"overrides.{channel}.version",
             f"版本号由系统按事件顺序编排：此稿为第 {own} 版，其他版本号已属于或将属于别的稿件")
            for channel, fields in overrides.items()
            if "version" in fields and fields["version"] != own]
