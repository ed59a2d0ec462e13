"""The built-in witness (`tongfa audit witness`): its own Ed25519 key and state, and a
cosignature (C2SP tlog-cosignature) only for a checkpoint that provably extends the last
one it cosigned. Run it elsewhere than the log for it to mean anything (docs/audit.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.domain import merkle
from orchestrator.domain.errors import Refused
from orchestrator.domain.note import COSIGNATURE, NoteError, Signer, Verifier, open_checkpoint
from orchestrator.settings import Settings
from orchestrator.store.secrets import key_file
from orchestrator.usecases import transparency
from orchestrator.usecases.unit_of_work import Context, UnitOfWork


class WitnessRefused(Refused):
    pass


def witness_state_dir(settings: Settings) -> Path:
    return Path(settings.audit_witness_state or settings.var_dir / "witness")


def witness_signer(state: Path, log_name: str) -> Signer:
    make = lambda: Signer.generate(f"{log_name}/witness", COSIGNATURE).private_text().encode()  # noqa: E731
    return Signer.parse(key_file(state / "witness.key", make).decode())


def cosign(
    state: Path, note: str, log: Verifier, proof: Callable[[int, int], list[bytes]], now: int
) -> str:
    """Cosign a checkpoint (C2SP tlog-cosignature) only if it extends, by a consistency proof
    it checks itself, the last one this witness cosigned; refuse a smaller or other tree.
    The witness trusts the log key it first saw (kept in its state) and nothing else."""
    state.mkdir(parents=True, exist_ok=True)
    pinned = state / "log.vkey"
    if not pinned.exists():
        pinned.write_text(log.vkey() + "\n")
    log = Verifier.parse(pinned.read_text())
    try:
        new = open_checkpoint(note, log)
    except NoteError as exc:
        raise WitnessRefused(f"checkpoint: {exc}") from None
    last_path = state / "latest"
    if last_path.exists():
        try:
            old = open_checkpoint(last_path.read_text(), log, new.origin)
        except NoteError as exc:
            raise WitnessRefused(f"checkpoint: against the last one cosigned: {exc}") from None
        if new.size < old.size:
            raise WitnessRefused(
                f"checkpoint: tree size {new.size} is smaller than the "
                f"{old.size} this witness already cosigned"
            )
        if new.size == old.size and new.root != old.root:
            raise WitnessRefused(
                f"checkpoint: a second, different tree of size {new.size} (a fork)"
            )
        if new.size == old.size:
            return last_path.read_text()
        if not merkle.verify_consistency(
            old.size, new.size, old.root, new.root, proof(old.size, new.size)
        ):
            raise WitnessRefused(
                f"checkpoint: the tree of {new.size} is not consistent with "
                f"the tree of {old.size} this witness cosigned"
            )
    cosigned = witness_signer(state, new.origin).cosign(note, now)
    transparency.replace_file(last_path, cosigned)
    return cosigned


def witness(ctx: Context, now: int | None = None) -> dict[str, Any]:
    """Run the built-in witness once over the log's latest checkpoint; write its cosigned
    checkpoint to the witness directory and the website."""
    import time

    state = witness_state_dir(ctx.settings)
    with UnitOfWork(ctx) as uow:
        s = uow.session
        cp = transparency.latest(s)
        if cp is None:
            raise WitnessRefused("checkpoint: the log has signed none yet")

        def proof(old: int, new: int) -> list[bytes]:
            spans = merkle.consistency_spans(old, new)
            return merkle.resolve(spans, transparency.node_reader(s, merkle.needed(spans)))

        cosigned = cosign(
            state,
            cp.note,
            transparency.log_verifier(ctx.settings),
            proof,
            int(time.time()) if now is None else now,
        )
    size = open_checkpoint(cosigned, transparency.log_verifier(ctx.settings)).size
    places = [ctx.settings.resolved_site_root / "transparency"]
    if ctx.settings.audit_witness_dir is not None:
        places.append(Path(ctx.settings.audit_witness_dir))
    with transparency.publishing_lock(ctx.settings):
        for place in places:
            transparency.write_once(place / "cosigned" / str(size), cosigned)
            if transparency.published_size(place / "checkpoint") <= size:
                transparency.replace_file(place / "checkpoint", cosigned)
    origin = transparency.log_signer(
        ctx.settings
    ).name  # the witness key exists by now: name unused
    return {
        "tree_size": size,
        "checkpoint": cosigned,
        "witness_vkey": witness_signer(state, origin).verifier.vkey(),
    }
