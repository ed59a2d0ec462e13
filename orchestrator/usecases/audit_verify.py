"""`tongfa audit verify`: the log checked against its events and against what it published.

One pass over the events in log order recomputes every leaf and subtree and compares
them with the stored tree, with the leaf hashes appended to the witness directory, and
with the root of every checkpoint known — the database's own and those published
outside it (witness directory, built-in witness, website). Whatever differs is reported
at the first log position it touches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import and_, func
from sqlmodel import Session, select

from orchestrator.domain import merkle
from orchestrator.domain.note import NoteError, Verifier, open_checkpoint
from orchestrator.settings import Settings
from orchestrator.store.models import AuditCheckpoint, AuditEvent, AuditTreeState
from orchestrator.usecases.audit import event_hash
from orchestrator.usecases.transparency import (
    LEAF,
    NODES,
    TREE_STATE_ROW,
    leaf_data,
    log_verifier,
)

EVENTS = AuditEvent.__table__
STREAM = {"yield_per": 5000, "stream_results": True}
WITNESS_DIR = "the witness directory"


@dataclass(frozen=True)
class Problem:
    position: int | None  # the first log position it touches (None: not about one)
    reason: str
    event_id: int | None = None
    bookkeeping: bool = False  # a record about the log went missing, no event differs

    def key(self) -> tuple[bool, bool, int]:
        return (self.bookkeeping, self.position is None, self.position or 0)


@dataclass(frozen=True)
class Seen:
    size: int
    root: bytes
    where: str


def published(settings: Settings, verifier: Verifier) -> tuple[list[Seen], list[Problem]]:
    """Every checkpoint found outside the database, each with its log signature checked."""
    places: list[tuple[str, Path]] = []
    site = settings.resolved_site_root / "transparency"
    places += [("the website", site / "checkpoint")]
    places += [("the website's history", p) for p in _files(site / "checkpoints")]
    state = settings.audit_witness_state or settings.var_dir / "witness"
    places += [("the witness", Path(state) / "latest")]
    if settings.audit_witness_dir is not None:
        out = Path(settings.audit_witness_dir)
        places += [(WITNESS_DIR, out / "checkpoint")]
        places += [(WITNESS_DIR, p) for p in _files(out / "checkpoints")]
        places += [(WITNESS_DIR, p) for p in _files(out / "cosigned")]
    seen, problems = [], []
    for where, path in places:
        if not path.is_file():
            continue
        try:
            cp = open_checkpoint(path.read_text(encoding="utf-8"), verifier)
        except (NoteError, UnicodeDecodeError) as exc:
            problems.append(
                Problem(None, f"{where} ({path.name}): not a checkpoint the log signed: {exc}")
            )
            continue
        seen.append(Seen(cp.size, cp.root, where))
    return seen, problems


def _files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def verify(
    session: Session, settings: Settings | None = None, verifier: Verifier | None = None
) -> dict[str, Any]:
    """`verifier`: the log's key as its owner published it; by default the one this
    installation signs with (an auditor elsewhere has only the former)."""
    problems: list[Problem] = []
    if verifier is None and settings is not None:
        verifier = log_verifier(settings)
    held: list[Seen] = []
    for row in session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)):
        held.append(Seen(row.tree_size, bytes.fromhex(row.root_hash), "the database"))
        if verifier is None:
            continue
        try:
            cp = open_checkpoint(row.note, verifier)
        except NoteError as exc:
            problems.append(
                Problem(None, f"checkpoint {row.id} in the database is not genuine: {exc}")
            )
            continue
        if (cp.size, cp.root.hex()) != (row.tree_size, row.root_hash):
            problems.append(
                Problem(
                    None, f"checkpoint {row.id}: its columns differ from the note the log signed"
                )
            )
    outside: list[Seen] = []
    if settings is not None and verifier is not None:
        outside, bad = published(settings, verifier)
        problems += bad
    leaves = _leaves_file(settings)
    # the leaves go out before their checkpoint: fewer than it covers means cut ones
    count = 0 if leaves is None else os.fstat(leaves.fileno()).st_size // LEAF
    covered = max((s.size for s in outside if s.where == WITNESS_DIR), default=0)
    if count < covered:
        problems.append(
            Problem(
                count,
                f"the witness directory's leaf hashes were cut off: it holds {count}, "
                f"its checkpoints cover {covered}",
                bookkeeping=True,
            )
        )
    walked = _walk(session, {s.size for s in held + outside}, leaves, problems)
    n, roots, pinned = walked["size"], walked["roots"], walked["pinned"]
    if leaves is not None:
        extra = len(leaves.read()) // LEAF
        leaves.close()
        if extra:
            problems.append(
                Problem(
                    n,
                    f"the trail was cut off: the witness directory holds "
                    f"{n + extra} leaf hashes, the database {n} events",
                )
            )
    _check_heads(held + outside, n, roots, pinned, problems)
    held_sizes = sorted(s.size for s in held)
    for seen in outside:
        if seen.size not in held_sizes:
            below = max((s for s in held_sizes if s < seen.size), default=0)
            problems.append(
                Problem(
                    below,
                    f"the checkpoint of tree size {seen.size} in "
                    f"{seen.where} is missing from the database",
                    bookkeeping=True,
                )
            )
    # waiting: not yet in the tree, or in it but in no checkpoint the log signed yet
    pending = session.exec(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
    ).one() + max(0, n - max((s.size for s in held), default=0))
    newest = max((s.size for s in outside), default=0)
    result: dict[str, Any] = {"checked": n, "pending": pending, "published_size": newest}
    if not problems:
        return {
            **result,
            "ok": True,
            "first_bad_position": None,
            "first_bad_id": None,
            "reason": "the audit trail is intact",
            "problems": [],
        }
    problems.sort(key=Problem.key)
    first = problems[0]
    return {
        **result,
        "ok": False,
        "first_bad_position": first.position,
        "first_bad_id": first.event_id,
        "reason": first.reason,
        "problems": [p.reason for p in problems[:20]],
    }


def _check_heads(
    heads: list[Seen], n: int, roots: dict[int, bytes], pinned: int | None, problems: list[Problem]
) -> None:
    """Every checkpoint against the tree recomputed from the events, and against each other."""
    good = sorted({h.size for h in heads if h.size <= n and roots.get(h.size) == h.root})
    by_size: dict[int, set[bytes]] = {}
    for head in heads:
        by_size.setdefault(head.size, set()).add(head.root)
        if head.size > n:
            problems.append(
                Problem(
                    n,
                    f"the trail was cut off: a checkpoint in {head.where} "
                    f"covers {head.size} events, the database {n}",
                )
            )
        elif roots.get(head.size) != head.root:
            start = max((g for g in good if g < head.size), default=0)
            where = pinned if pinned is not None and pinned < head.size else start
            problems.append(
                Problem(
                    where,
                    f"the events before position {head.size} differ "
                    f"from the checkpoint in {head.where}",
                )
            )
    for size, seen_roots in by_size.items():
        if len(seen_roots) > 1:
            start = max((g for g in good if g < size), default=0)
            where = pinned if pinned is not None and pinned < size else start
            problems.append(
                Problem(
                    where,
                    f"two different checkpoints of tree size {size} "
                    "were signed (a forked view of the log)",
                )
            )


def _leaves_file(settings: Settings | None) -> BinaryIO | None:
    if settings is None or settings.audit_witness_dir is None:
        return None
    path = Path(settings.audit_witness_dir) / "leaves"
    return open(path, "rb") if path.is_file() else None  # noqa: SIM115 - closed by verify


def _stored_subtrees(session: Session) -> Iterator[tuple[int, int, bytes]]:
    """Stored subtrees above the leaves, in the order a Builder completes them."""
    order = ((NODES.c.idx + 1).op("<<")(NODES.c.level), NODES.c.level)
    stmt = (
        select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(NODES.c.level > 0).order_by(*order)
    )
    for level, idx, h in session.execute(stmt, execution_options=STREAM):
        yield level, idx, bytes(h)


def _walk(
    session: Session, sizes: set[int], leaves: BinaryIO | None, problems: list[Problem]
) -> dict[str, Any]:
    builder = merkle.Builder()
    roots: dict[int, bytes] = {}
    pinned: int | None = None
    stored = _stored_subtrees(session)
    subtree_ok, chain_prev = True, ""
    stmt = (
        select(EVENTS, NODES.c.hash.label("leaf"))
        .select_from(EVENTS.outerjoin(NODES, and_(NODES.c.level == 0, NODES.c.idx == EVENTS.c.seq)))
        .where(EVENTS.c.seq.is_not(None))
        .order_by(EVENTS.c.seq)
    )
    for row in session.execute(stmt, execution_options=STREAM):
        n = builder.size
        if row.seq != n:
            problems.append(Problem(n, "an event was removed here, or the order changed", row.id))
            break
        leaf = merkle.leaf_hash(leaf_data(row))
        if row.leaf is None or bytes(row.leaf) != leaf:
            problems.append(Problem(n, f"event {row.id} was altered", row.id))
            pinned = n if pinned is None else pinned
            subtree_ok = False  # the subtrees above it differ too: that says nothing more
        if leaves is not None:
            outside = leaves.read(LEAF)
            if outside and outside != leaf and pinned is None:
                pinned = n
                problems.append(
                    Problem(
                        n,
                        f"event {row.id} differs from the leaf hash "
                        "appended to the witness directory",
                        row.id,
                    )
                )
        if row.hash:  # recorded before the tree: its chain link too
            if row.prev_hash != chain_prev:
                problems.append(
                    Problem(
                        n,
                        "an event before this one was removed or the order changed (hash chain)",
                        row.id,
                    )
                )
            elif event_hash(row) != row.hash:
                problems.append(Problem(n, f"event {row.id} was altered (hash chain)", row.id))
            if problems and problems[-1].position == n and pinned is None:
                pinned = n
            chain_prev = row.hash
        for level, idx, h in builder.append(leaf)[1:]:
            if subtree_ok and next(stored, None) != (level, idx, h):
                subtree_ok = False
                problems.append(
                    Problem(
                        idx << level,
                        f"the stored tree (level {level}, node {idx}) does not match the events",
                    )
                )
        if builder.size in sizes:
            roots[builder.size] = builder.root()
    n = builder.size
    state = session.get(AuditTreeState, 1)
    if state is None:
        problems.append(
            Problem(None, f"the log's tree state ({TREE_STATE_ROW}) is missing", bookkeeping=True)
        )
    elif (state.size, state.root_hash) != (n, builder.root().hex()):
        why = "the trail was cut off: " if state.size > n else ""
        problems.append(
            Problem(
                n,
                f"{why}the tree holds {state.size} events, the database "
                f"{n} in order, or another root",
            )
        )
    return {"size": n, "roots": roots, "pinned": pinned}
