"""The audit trail as a transparency log: sequencing, signed checkpoints, publication, proofs.

Appenders only insert their event (no lock, no position). The sequencer — one at a time,
holding the tree-state row — gives pending events the next positions in id order, stores
the leaf hash and every subtree they complete, and signs a checkpoint (C2SP
tlog-checkpoint). Each checkpoint is then published outside the database: appended to
the witness directory with the leaf hashes, and to the website under /transparency.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, insert, tuple_, update
from sqlmodel import Session, select

from orchestrator.domain import merkle
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import Refused
from orchestrator.domain.hashing import canonical_json
from orchestrator.domain.note import Checkpoint, NoteError, Signer, Verifier, open_checkpoint
from orchestrator.domain.release import MAX_ID
from orchestrator.settings import Settings
from orchestrator.store.db import file_lock
from orchestrator.store.models import AuditCheckpoint, AuditEvent, AuditTreeNode, AuditTreeState
from orchestrator.store.secrets import key_file
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
NODES = AuditTreeNode.__table__
LEAF = 32  # bytes per leaf hash in the witness directory's `leaves` file
SEQUENCE_BATCH = 5000
TREE_STATE_ROW = "audit_tree_state row 1"


class LogForked(Exception):
    """What the log holds now is not an extension of what it published before."""


# ------------------------------------------------------------------ the log's key


@cache
def log_signer(settings: Settings) -> Signer:
    """The log's signing key: from the environment, or a file made once under var_dir."""
    if settings.audit_signing_key is not None:
        return Signer.parse(settings.audit_signing_key.get_secret_value())
    path = Path(settings.var_dir) / "audit-log.key"
    return Signer.parse(
        key_file(path, lambda: new_signing_key(log_name(settings)).encode()).decode()
    )


def log_name(settings: Settings) -> str:
    """The log's name (its checkpoints' origin line)."""
    return settings.audit_log_name or _default_name(settings.site_base_url)


def new_signing_key(name: str) -> str:
    """A fresh signing key in the signed-note PRIVATE+KEY form."""
    return Signer.generate(name).private_text()


def _default_name(site_base_url: str) -> str:
    url = urlsplit(site_base_url)
    return f"{url.netloc}{url.path.rstrip('/')}/transparency"


def log_verifier(settings: Settings) -> Verifier:
    return log_signer(settings).verifier


def leaf_data(event: Any) -> bytes:
    """The bytes a leaf commits to: the event as exported (id, time, who, what, before,
    after, detail, and for events older than the log their chain hashes)."""
    from orchestrator.usecases.audit import as_dict

    return canonical_json(as_dict(event))


# ------------------------------------------------------------------ sequencing


def lock_tree(session: Session) -> AuditTreeState:
    state = session.exec(
        select(AuditTreeState).where(AuditTreeState.id == 1).with_for_update()
    ).first()
    if state is None:  # migration 0014 made it; only a hand in the database removes it
        raise LogForked(f"the log's tree state ({TREE_STATE_ROW}) is missing")
    return state


def node_reader(session: Session, wanted: list[merkle.Node]) -> Callable[[int, int], bytes]:
    """Read the stored subtrees a proof needs, in one query per 500."""
    found: dict[merkle.Node, bytes] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for level, idx, h in session.execute(
            select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(
                tuple_(NODES.c.level, NODES.c.idx).in_(chunk)
            )
        ):
            found[level, idx] = bytes(h)

    def node(level: int, idx: int) -> bytes:
        try:
            return found[level, idx]
        except KeyError:
            raise LogForked(f"the stored tree lacks node ({level}, {idx})") from None

    return node


def sequence(ctx: Context, batch: int = SEQUENCE_BATCH) -> int:
    """Give up to `batch` pending events their positions and fold them into the tree."""
    with UnitOfWork(ctx) as uow:
        s = uow.session
        state = lock_tree(s)
        table = AuditEvent.__table__
        rows = s.execute(
            select(table).where(table.c.seq.is_(None)).order_by(table.c.id).limit(batch)
        ).all()  # rows, not objects: faster
        if not rows:
            return 0
        edge = merkle.span_nodes(0, state.size)
        node = node_reader(s, edge)
        builder = merkle.Builder(state.size, [node(*n) for n in edge])
        positions, nodes = [], []
        for event in rows:
            positions.append({"event_id": event.id, "position": builder.size})
            nodes += [
                {"level": lv, "idx": ix, "hash": h}
                for lv, ix, h in builder.append(merkle.leaf_hash(leaf_data(event)))
            ]
        s.execute(
            update(table)
            .where(table.c.id == bindparam("event_id"))
            .values(seq=bindparam("position")),
            positions,
        )
        s.execute(insert(NODES), nodes)
        state.size, state.root_hash, state.updated_at = builder.size, builder.root().hex(), utcnow()
        s.add(state)
        uow.commit()
        return len(rows)


def checkpoint(ctx: Context, every_seconds: float = 0.0) -> dict[str, Any] | None:
    """Sequence everything pending, sign a checkpoint of the tree if it grew (and the last
    one is at least `every_seconds` old), and publish the latest. None if nothing new."""
    # what was pending when we came, in full batches; appends arriving meanwhile wait for
    # the next round, or under a steady stream no checkpoint would ever be signed
    while sequence(ctx, SEQUENCE_BATCH) == SEQUENCE_BATCH:
        pass
    signed = None
    with UnitOfWork(ctx) as uow:
        s = uow.session
        state = lock_tree(s)
        last = latest(s)
        # a last checkpoint dated ahead (a clock, or a hand in the database) holds none back
        waited = None if last is None else (utcnow() - last.at).total_seconds()
        fresh = waited is None or not 0 <= waited < every_seconds
        if state.size and (last is None or last.tree_size < state.size) and fresh:
            heads = [] if last is None else [(last.tree_size, bytes.fromhex(last.root_hash))]
            # and what went out: the database's rows may be gone, the published ones stay
            heads += [(cp.size, cp.root) for cp in _published_heads(ctx.settings)]
            for head in heads:
                _check_extends(s, *head, state)
            body = Checkpoint(
                log_signer(ctx.settings).name, state.size, bytes.fromhex(state.root_hash)
            ).body()
            signed = AuditCheckpoint(
                tree_size=state.size,
                root_hash=state.root_hash,
                note=log_signer(ctx.settings).sign(body),
            )
            s.add(signed)
            uow.commit()
            last = signed
        note = None if last is None else last.note
        size = 0 if last is None else last.tree_size
    if note is not None and (signed is not None or _unpublished(ctx.settings, size)):
        publish(ctx, note)
    from orchestrator.usecases.page_records import record_pages

    record_pages(ctx)
    return None if signed is None else {"tree_size": signed.tree_size, "note": signed.note}


def _check_extends(session: Session, size: int, root_hash: bytes, state: AuditTreeState) -> None:
    """Refuse to sign a tree an earlier checkpoint is not a prefix of."""
    if size > state.size:
        raise LogForked(f"the tree of {state.size} is smaller than checkpoint {size}")
    spans = merkle.consistency_spans(size, state.size)
    node = node_reader(session, merkle.needed(spans) + merkle.span_nodes(0, state.size))
    root = merkle.tree_root(state.size, node)
    proof = merkle.resolve(spans, node)
    if root.hex() != state.root_hash or not merkle.verify_consistency(
        size, state.size, root_hash, root, proof
    ):
        raise LogForked(f"the tree of {state.size} does not extend checkpoint {size}")


def _published_heads(settings: Settings) -> list[Checkpoint]:
    """The latest checkpoints published outside the database that the log's key signed."""
    places = [settings.resolved_site_root / "transparency"]
    if settings.audit_witness_dir is not None:
        places.append(Path(settings.audit_witness_dir))
    heads = []
    for place in places:
        try:
            note = (place / "checkpoint").read_text(encoding="utf-8")
            heads.append(open_checkpoint(note, log_verifier(settings)))
        except (OSError, UnicodeDecodeError, NoteError):
            continue  # none yet, or not the log's: `audit verify` reports the latter
    return heads


def latest(session: Session) -> AuditCheckpoint | None:
    return session.exec(
        select(AuditCheckpoint)
        .order_by(AuditCheckpoint.tree_size.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    ).first()


# ------------------------------------------------------------------ publication


def write_once(path: Path, text: str) -> bool:
    """Create path with text; True if made, False if it already says the same. A different
    text at the same path is a second checkpoint of one size: a fork, never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            there = Checkpoint.parse(_body(path.read_text(encoding="utf-8")))
        except (NoteError, UnicodeDecodeError):
            raise LogForked(f"{path} holds something that is not a checkpoint") from None
        if there != Checkpoint.parse(_body(text)):
            raise LogForked(f"{path} already holds another checkpoint of this size") from None
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return True


def _body(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


def replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def published_size(path: Path) -> int:
    try:
        return Checkpoint.parse(_body(path.read_text())).size
    except (OSError, NoteError):
        return -1


def _unpublished(settings: Settings, size: int) -> bool:
    """A checkpoint of this size is not yet the latest everywhere it is published."""
    places = [settings.resolved_site_root / "transparency"]
    if settings.audit_witness_dir is not None:
        places.append(Path(settings.audit_witness_dir))
    return any(published_size(place / "checkpoint") < size for place in places)


def publish(ctx: Context, note: str) -> None:
    """Append a checkpoint to the witness directory (with the leaf hashes it covers) and to
    the website; idempotent, and never replaces a larger published tree with a smaller."""
    settings = ctx.settings
    cp = open_checkpoint(note, log_verifier(settings))
    site = settings.resolved_site_root / "transparency"
    # the file lock first, the database after: never the other way round (SQLite's one
    # writer lock and this one would wait on each other)
    with publishing_lock(settings), UnitOfWork(ctx) as uow:
        _publish(settings, uow.session, note, cp, site)


@contextmanager
def publishing_lock(settings: Settings) -> Iterator[None]:
    """One publisher at a time on this machine (the scheduler and a CLI checkpoint)."""
    with file_lock(Path(settings.var_dir) / "audit-publish.lock"):
        yield


def _publish(settings: Settings, session: Session, note: str, cp: Checkpoint, site: Path) -> None:
    if write_once(site / "checkpoints" / str(cp.size), note):
        with open(site / "history", "a") as handle:
            handle.write(f"{cp.size} {base64.b64encode(cp.root).decode()} {iso(utcnow())}\n")
    if published_size(site / "checkpoint") < cp.size:
        replace_file(site / "checkpoint", note)
    if settings.audit_witness_dir is None:
        return
    out = Path(settings.audit_witness_dir)
    _append_leaves(out / "leaves", session, cp.size, published_size(out / "checkpoint"))
    write_once(out / "checkpoints" / str(cp.size), note)
    if published_size(out / "checkpoint") < cp.size:
        replace_file(out / "checkpoint", note)


def _append_leaves(path: Path, session: Session, size: int, published: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        have = handle.tell() // LEAF
        if have > size:
            raise LogForked(f"{path} holds {have} leaves, the checkpoint only {size}")
        if have < published:  # the leaves go out before their checkpoint: someone cut them
            raise LogForked(
                f"{path} holds {have} leaves, the checkpoint published beside it {published}: "
                "never refilled from the database"
            )
        if have == size:
            return
        handle.truncate(have * LEAF)  # a torn last write
        while have < size:
            rows = session.execute(
                select(NODES.c.idx, NODES.c.hash)
                .where(NODES.c.level == 0, NODES.c.idx >= have, NODES.c.idx < size)
                .order_by(NODES.c.idx)
                .limit(20_000)
            ).all()
            if not rows or rows[0][0] != have:
                raise LogForked(f"the stored tree lacks leaf {have}")
            for idx, h in rows:
                if idx != have:
                    raise LogForked(f"the stored tree lacks leaf {have}")
                handle.write(bytes(h))
                have += 1
        handle.flush()
        os.fsync(handle.fileno())


# ------------------------------------------------------------------ proofs


def prove(session: Session, event_id: int) -> dict[str, Any]:
    """An inclusion proof of one event in the latest checkpoint, with the event itself."""
    from orchestrator.usecases.audit import as_dict

    event = session.get(AuditEvent, event_id) if 1 <= event_id <= MAX_ID else None
    if event is None:
        raise Refused(f"event_id: no audit event {event_id}")
    cp = latest(session)
    if event.seq is None or cp is None or event.seq >= cp.tree_size:
        raise Refused(
            f"event_id: event {event_id} is not yet covered by a checkpoint; "
            "run `tongfa audit checkpoint`"
        )
    spans = merkle.inclusion_spans(event.seq, cp.tree_size)
    path = merkle.resolve(spans, node_reader(session, merkle.needed(spans)))
    return {
        "leaf_index": event.seq,
        "tree_size": cp.tree_size,
        "leaf_hash": merkle.leaf_hash(leaf_data(event)).hex(),
        "path": [h.hex() for h in path],
        "root_hash": cp.root_hash,
        "checkpoint": cp.note,
        "event": as_dict(event),
    }


def consistency(session: Session, old_size: int, new_size: int) -> dict[str, Any]:
    """A consistency proof between two signed checkpoints of the log."""
    notes = {}
    for field, size in (("old_size", old_size), ("new_size", new_size)):
        row = None
        if 0 <= size <= MAX_ID:  # beyond, the database cannot even be asked
            row = session.exec(
                select(AuditCheckpoint).where(AuditCheckpoint.tree_size == size).limit(1)
            ).first()
        if row is None:
            raise Refused(f"{field}: no checkpoint of tree size {size}")
        notes[field] = row
    if old_size > new_size:
        raise Refused("old_size: must not be larger than new_size")
    spans = merkle.consistency_spans(old_size, new_size)
    proof = merkle.resolve(spans, node_reader(session, merkle.needed(spans)))
    return {
        "old_size": old_size,
        "new_size": new_size,
        "old_root": notes["old_size"].root_hash,
        "new_root": notes["new_size"].root_hash,
        "proof": [h.hex() for h in proof],
        "old_checkpoint": notes["old_size"].note,
        "new_checkpoint": notes["new_size"].note,
    }
