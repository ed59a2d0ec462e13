"""Anyone can check the log: `tongfa audit prove` and `consistency` print proofs that the
standalone docs/verify_audit_proof.py accepts — and refuses once the event is altered;
the built-in witness cosigns only a tree that extends the last it cosigned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.domain import merkle
from orchestrator.domain.note import Checkpoint, Signer, Verifier, cosignature_time, open_checkpoint
from orchestrator.settings import Settings
from orchestrator.store.db import engine_for
from orchestrator.usecases import audit, transparency, witness
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.cli_runner import tongfa_in
from tests.conftest import RecordingQueue

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "verify_audit_proof.py"


@pytest.fixture
def log(tmp_path):
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        audit_witness_dir=tmp_path / "witness-dir",
        _env_file=None,
    )
    ctx = Context(engine_for(settings.resolved_database_url), settings, RecordingQueue())
    env = {
        **os.environ,
        "TONGFA_VAR_DIR": str(settings.var_dir),
        "TONGFA_DATABASE_URL": settings.resolved_database_url,
        "TONGFA_AUDIT_WITNESS_DIR": str(settings.audit_witness_dir),
    }
    env.pop("TONGFA_BROKER_URL", None)

    tongfa = tongfa_in(env)

    ctx.tongfa = tongfa  # type: ignore[attr-defined]
    append(ctx, 40)
    tongfa("audit", "checkpoint")
    return ctx


def append(ctx: Context, n: int) -> None:
    for i in range(n):
        with UnitOfWork(ctx) as uow:
            audit.record(
                uow.session,
                actor=f"user{i % 3}",
                action="release.approved",
                subject_type="release",
                subject_id=i,
                after={"state": "approved"},
            )
            uow.commit()


def check(path: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    """The verifier as a citizen runs it: its own interpreter, nothing of tongfa imported."""
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), "--vkey", vkey],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_printed_proof_verifies_standalone_and_fails_once_the_event_is_altered(log, tmp_path):
    vkey = log.tongfa("audit", "vkey").stdout.strip()
    proof = json.loads(log.tongfa("audit", "prove", "17", "--json").stdout)
    assert (
        set(proof) >= {"leaf_index", "tree_size", "leaf_hash", "path", "root_hash", "checkpoint"}
        and proof["tree_size"] == 40
    )
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    result = check(good, vkey)
    assert result.returncode == 0 and result.stdout.startswith("OK"), result.stdout

    edited = tmp_path / "edited.json"  # the proof's copy of the event, edited
    edited.write_text(json.dumps({**proof, "event": {**proof["event"], "actor": "mallory"}}))
    assert check(edited, vkey).returncode == 1

    with log.engine.begin() as conn:  # the event edited in the database, then proved again
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE id = 17"))
    again = tmp_path / "again.json"
    again.write_text(log.tongfa("audit", "prove", "17", "--json").stdout)
    result = check(again, vkey)
    assert result.returncode == 1 and "not in the tree" in result.stdout

    other_log = Signer.generate("other.example/log").verifier.vkey()
    assert check(good, other_log).returncode == 1


def test_a_consistency_proof_verifies_standalone_and_fails_when_altered(log, tmp_path):
    vkey = log.tongfa("audit", "vkey").stdout.strip()
    append(log, 25)
    log.tongfa("audit", "checkpoint")
    proof = json.loads(log.tongfa("audit", "consistency", "40", "65", "--json").stdout)
    path = tmp_path / "consistency.json"
    path.write_text(json.dumps(proof))
    assert check(path, vkey).returncode == 0
    proof["proof"][0] = "00" * 32
    path.write_text(json.dumps(proof))
    assert check(path, vkey).returncode == 1


def test_prove_refuses_what_no_checkpoint_covers(log):
    assert "event_id" in log.tongfa("audit", "prove", "9999", ok=False).stderr
    append(log, 1)
    assert "not yet covered" in log.tongfa("audit", "prove", "41", ok=False).stderr
    assert "old_size" in log.tongfa("audit", "consistency", "3", "40", ok=False).stderr


def test_checkpoints_are_published_on_the_website_and_in_the_witness_directory(log):
    site = log.settings.resolved_site_root / "transparency"
    verifier = transparency.log_verifier(log.settings)
    assert open_checkpoint((site / "checkpoint").read_text(), verifier).size == 40
    append(log, 2)
    transparency.checkpoint(log)
    assert open_checkpoint((site / "checkpoint").read_text(), verifier).size == 42
    assert [line.split()[0] for line in (site / "history").read_text().splitlines()] == ["40", "42"]
    out = log.settings.audit_witness_dir
    assert (out / "leaves").stat().st_size == 42 * 32
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["40", "42"]


def test_the_witness_cosigns_a_tree_that_extends_the_last_one(log):
    first = json.loads(log.tongfa("audit", "witness", "--json").stdout)
    append(log, 5)
    log.tongfa("audit", "checkpoint")
    second = json.loads(log.tongfa("audit", "witness", "--json").stdout)
    assert (first["tree_size"], second["tree_size"]) == (40, 45)
    witness = Verifier.parse(second["witness_vkey"])
    assert cosignature_time(second["checkpoint"], witness) > 0
    site = log.settings.resolved_site_root / "transparency"
    assert cosignature_time((site / "checkpoint").read_text(), witness) > 0


def _signed(log: Context, size: int, root: bytes) -> str:
    signer = transparency.log_signer(log.settings)
    return signer.sign(Checkpoint(signer.name, size, root).body())


def test_the_witness_refuses_a_smaller_a_forked_or_an_inconsistent_tree(log):
    log.tongfa("audit", "witness")
    state = witness.witness_state_dir(log.settings)
    verifier = transparency.log_verifier(log.settings)
    with UnitOfWork(log) as uow:
        root = bytes.fromhex(transparency.latest(uow.session).root_hash)

    def proof(old: int, new: int) -> list[bytes]:
        return [merkle.leaf_hash(b"made up")]

    with pytest.raises(witness.WitnessRefused, match="smaller"):
        witness.cosign(state, _signed(log, 39, root), verifier, proof, 1)
    with pytest.raises(witness.WitnessRefused, match="fork"):
        witness.cosign(state, _signed(log, 40, merkle.leaf_hash(b"x")), verifier, proof, 1)
    with pytest.raises(witness.WitnessRefused, match="not consistent"):
        witness.cosign(state, _signed(log, 50, merkle.leaf_hash(b"x")), verifier, proof, 1)
    someone = Signer.generate(verifier.name)
    with pytest.raises(witness.WitnessRefused, match="does not match|not signed"):
        witness.cosign(
            state,
            someone.sign(Checkpoint(verifier.name, 50, root).body()),
            someone.verifier,
            proof,
            1,
        )
    # and what it last cosigned is still the tree of 40
    assert open_checkpoint((state / "latest").read_text(), verifier).size == 40


def test_the_assessment_report_names_the_checkpoint_it_was_computed_at(log):
    append(log, 3)  # not yet in the log: the report signs them in first
    out = log.tongfa("report", "assessment", "--quarter", "2026Q4").stdout
    with UnitOfWork(log) as uow:
        cp = transparency.latest(uow.session)
    assert cp.tree_size == 43
    assert out.splitlines()[-1] == f"审计日志检查点：43 条，根哈希 {cp.root_hash}"
