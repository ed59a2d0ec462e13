"""Checkpoints as C2SP signed notes: a signature checks only on the text it signed, by
the key it names; a witness's cosignature likewise."""

from __future__ import annotations

import pytest

from orchestrator.domain import merkle
from orchestrator.domain.note import (
    COSIGNATURE,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    cosignature_time,
    open_checkpoint,
)

LOG = Signer.generate("gov.example/audit")
WITNESS = Signer.generate("witness.example/w1", COSIGNATURE)
CP = Checkpoint("gov.example/audit", 12, merkle.leaf_hash(b"x"))


def test_a_signed_checkpoint_opens_with_the_logs_verifier_key():
    note = LOG.sign(CP.body())
    assert note.startswith("gov.example/audit\n12\n") and "\n\n\u2014 gov.example/audit " in note
    vkey = LOG.verifier.vkey()
    assert open_checkpoint(note, Verifier.parse(vkey), "gov.example/audit") == CP


def test_an_altered_checkpoint_or_another_key_is_refused():
    note = LOG.sign(CP.body())
    with pytest.raises(NoteError, match="does not match"):
        open_checkpoint(note.replace("\n12\n", "\n13\n"), LOG.verifier)
    with pytest.raises(NoteError, match="not signed by"):
        open_checkpoint(note, Signer.generate("gov.example/audit").verifier)
    with pytest.raises(NoteError, match="another log"):
        open_checkpoint(note, LOG.verifier, "other.example/log")


def test_keys_round_trip_through_their_text_forms():
    again = Signer.parse(LOG.private_text())
    assert again.verifier == LOG.verifier
    with pytest.raises(NoteError, match="key id"):
        Verifier.parse(LOG.verifier.vkey().replace(LOG.verifier.key_id.hex(), "00000000"))


def test_a_cosignature_checks_and_carries_its_time():
    cosigned = WITNESS.cosign(LOG.sign(CP.body()), 1_790_000_000)
    assert open_checkpoint(cosigned, LOG.verifier) == CP
    assert cosignature_time(cosigned, WITNESS.verifier) == 1_790_000_000
    with pytest.raises(NoteError):
        cosignature_time(cosigned.replace("\n12\n", "\n13\n"), WITNESS.verifier)
    with pytest.raises(NoteError, match="not cosigned"):
        cosignature_time(LOG.sign(CP.body()), WITNESS.verifier)


@pytest.mark.parametrize("body", ["o\n1\n", "o\n01\nAAAA\n", "o\nx\n" + "A" * 44 + "\n"])
def test_malformed_checkpoints_are_refused(body):
    with pytest.raises(NoteError, match="checkpoint"):
        Checkpoint.parse(body)
