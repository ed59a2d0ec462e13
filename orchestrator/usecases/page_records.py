"""Verifiable pages: a website article's footer names the hash of its <article> and links
its publishing record — the go-live event and the logged page hash, each with an
inclusion proof against a signed checkpoint — published under /site/transparency/releases/."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain import merkle
from orchestrator.domain.audit_actions import Action
from orchestrator.store.models import AuditEvent, Delivery
from orchestrator.usecases import transparency
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

PAGE_RECORDED = Action.PAGE_RECORDED


def record_pages(ctx: Context) -> None:
    """For each website page gone live: once its go-live event is in a checkpoint, log the
    page's content hash beside it; once that is in a checkpoint too, publish the page's
    record (both events, their inclusion proofs, the checkpoint) at the address its
    footer links to: /site/transparency/releases/<release id>.json."""
    with UnitOfWork(ctx) as uow:
        s = uow.session
        transparency.lock_tree(s)  # one recorder at a time: each go-live's page is logged once
        cp = transparency.latest(s)
        if cp is None:
            return
        last = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == PAGE_RECORDED)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).first()
        # progress by log position, not id: a go-live whose transaction took its id
        # first may commit, and so come in the log, after a later one was recorded
        done = s.get(AuditEvent, int((last.after or {}).get("go_live_event", 0))) if last else None
        after = -1 if done is None or done.seq is None else done.seq
        for event in s.exec(
            select(AuditEvent)
            .where(
                AuditEvent.action == "release.go_live",
                AuditEvent.seq > after,
                AuditEvent.seq < cp.tree_size,
            )
            .order_by(AuditEvent.seq)
            .limit(500)
        ):
            page = s.exec(
                select(Delivery.payload)
                .where(Delivery.release_id == event.release_id, Delivery.kind == "website")
                .order_by(Delivery.revision.desc())
            ).first()
            if not page or not page.get("page_hash"):
                continue
            from orchestrator.usecases.audit import record

            record(
                s,
                actor="transparency",
                action=PAGE_RECORDED,
                subject_type="release",
                subject_id=event.release_id,
                release_id=event.release_id,
                after={
                    "page_hash": page["page_hash"],
                    "url": page.get("url"),
                    "go_live_event": event.id,
                },
            )
        uow.commit()
    _publish_records(ctx)


def _publish_records(ctx: Context) -> None:
    folder = ctx.settings.resolved_site_root / "transparency" / "releases"
    progress = folder / ".published"
    with transparency.publishing_lock(ctx.settings), UnitOfWork(ctx) as uow:
        done = int(progress.read_text()) if progress.is_file() else 0
        s = uow.session
        cp = transparency.latest(s)
        if cp is None:
            return
        for event in s.exec(
            select(AuditEvent)
            .where(
                AuditEvent.action == PAGE_RECORDED,
                AuditEvent.id > done,
                AuditEvent.seq.is_not(None),
                AuditEvent.seq < cp.tree_size,
            )
            .order_by(AuditEvent.id)
            .limit(500)
        ):
            go_live = s.get(AuditEvent, int((event.after or {}).get("go_live_event", 0)))
            if go_live is None or go_live.seq is None:
                continue
            record = {
                "release_id": event.release_id,
                "page_hash": event.after["page_hash"],
                "url": event.after.get("url"),
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash,
                "checkpoint": cp.note,
                "go_live": _included(s, go_live, cp.tree_size),
                "record": _included(s, event, cp.tree_size),
            }
            folder.mkdir(parents=True, exist_ok=True)
            transparency.replace_file(
                folder / f"{event.release_id}.json",
                json.dumps(record, ensure_ascii=False, indent=1),
            )
            done = event.id
        folder.mkdir(parents=True, exist_ok=True)
        transparency.replace_file(progress, str(done))


def _included(session: Session, event: AuditEvent, size: int) -> dict[str, Any]:
    from orchestrator.usecases.audit import as_dict

    assert event.seq is not None
    spans = merkle.inclusion_spans(event.seq, size)
    path = merkle.resolve(spans, transparency.node_reader(session, merkle.needed(spans)))
    return {"event": as_dict(event), "leaf_index": event.seq, "path": [h.hex() for h in path]}
