"""`tongfa audit verify|checkpoint|keygen|vkey|witness|prove|consistency`: the audit trail as a
transparency log (docs/audit.md). Registered on `tongfa audit` by cli/main."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orchestrator.domain.errors import Refused
from orchestrator.domain.note import NoteError, Verifier
from orchestrator.settings import get_settings
from orchestrator.usecases import audit, transparency, witness
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

commands = typer.Typer()
Json = Annotated[bool, typer.Option("--json", help="machine-readable output (docs/cli.md)")]
# what a damaged or forked log raises: a clear line and exit 1, never a traceback
BROKEN = (Refused, transparency.LogForked, NoteError)


def _context() -> Context:
    from orchestrator.bootstrap import installed_context

    return installed_context(get_settings())


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _refuse(exc: Exception) -> typer.Exit:
    typer.echo(f"refused: {exc}", err=True)
    return typer.Exit(1)


@commands.command("verify")
def verify(
    json_out: Json = False,
    vkey: Annotated[
        str,
        typer.Option(help="the log's verifier key as published; default: this installation's"),
    ] = "",
) -> None:
    """Check every event against the Merkle tree, the signed checkpoints and those published
    outside the database; exit 1 naming the first position that differs."""
    try:
        verifier = Verifier.parse(vkey) if vkey else None
    except NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--vkey") from None
    ctx = _context()
    with UnitOfWork(ctx) as uow:
        verdict = audit.verify(uow.session, ctx.settings, verifier)
    if json_out:
        _emit(verdict)
    else:
        where = "" if verdict["ok"] else f" (first bad position: {verdict['first_bad_position']})"
        typer.echo(
            f"{'OK' if verdict['ok'] else 'ALTERED'}: {verdict['reason']}{where}; "
            f"{verdict['checked']} events checked, {verdict['pending']} not yet in the "
            f"log, latest published tree {verdict['published_size']}"
        )
        for problem in verdict["problems"][1:]:
            typer.echo(f"  also: {problem}")
    if not verdict["ok"]:
        raise typer.Exit(1)


@commands.command("checkpoint")
def checkpoint() -> None:
    """Put every pending event in the log and sign a checkpoint now (the scheduler does
    this about every second); the checkpoint is published at once."""
    try:
        made = transparency.checkpoint(_context())
    except BROKEN as exc:
        raise _refuse(exc) from None
    typer.echo(made["note"] if made else "nothing new to sign")


@commands.command("keygen")
def keygen(
    name: Annotated[str, typer.Option(help="the log's name (checkpoint origin)")] = "",
) -> None:
    """Print a new signing key for TONGFA_AUDIT_SIGNING_KEY (a deployment sets it once, in
    its env file, so every container signs with the same key); nothing is stored."""
    settings = get_settings()
    try:
        typer.echo(transparency.new_signing_key(name or transparency.log_name(settings)))
    except NoteError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None


@commands.command("vkey")
def vkey() -> None:
    """The log's verifier key (signed-note name+keyid+base64 form): give it to whoever checks."""
    typer.echo(transparency.log_verifier(get_settings()).vkey())


@commands.command("witness")
def witness_cosign(json_out: Json = False) -> None:
    """The built-in witness: cosign the latest checkpoint if it extends the last one cosigned."""
    try:
        result = witness.witness(_context())
    except BROKEN as exc:
        raise _refuse(exc) from None
    if json_out:
        return _emit(result)
    typer.echo(result["checkpoint"], nl=False)


@commands.command("prove")
def prove(event_id: int, json_out: Json = False) -> None:
    """An inclusion proof of one event in the latest checkpoint (docs/verify_audit_proof.py)."""
    try:
        with UnitOfWork(_context()) as uow:
            proof = transparency.prove(uow.session, event_id)
    except BROKEN as exc:
        raise _refuse(exc) from None
    if json_out:
        return _emit(proof)
    typer.echo(
        f"event {event_id} is leaf {proof['leaf_index']} of {proof['tree_size']}; "
        f"{len(proof['path'])} hashes lead to root {proof['root_hash']}"
    )


@commands.command("consistency")
def consistency(old_size: int, new_size: int, json_out: Json = False) -> None:
    """A consistency proof between two checkpoints of the log."""
    try:
        with UnitOfWork(_context()) as uow:
            proof = transparency.consistency(uow.session, old_size, new_size)
    except BROKEN as exc:
        raise _refuse(exc) from None
    if json_out:
        return _emit(proof)
    typer.echo(
        f"the tree of {old_size} is a prefix of the tree of {new_size}: "
        f"{len(proof['proof'])} hashes"
    )
