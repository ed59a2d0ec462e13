"""Signed notes (C2SP signed-note), checkpoints (C2SP tlog-checkpoint) and witness
cosignatures (C2SP tlog-cosignature), Ed25519 throughout.

A note is text ending in a newline, a blank line, then lines "— <key name> base64(key
id ‖ signature)". The key id is the first four bytes of SHA-256(name ‖ "\\n" ‖ type ‖
public key): type 0x01 for a log's Ed25519 signature, 0x04 for a timestamped cosignature.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519, COSIGNATURE = 0x01, 0x04
DASH = "\u2014 "


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or not signed by the key asked for."""


def _key_id(name: str, kind: int, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True)
class Verifier:
    name: str
    kind: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.kind, self.public)

    def vkey(self) -> str:
        """The signed-note text form: name+hex(key id)+base64(type ‖ public key)."""
        return (
            f"{self.name}+{self.key_id.hex()}+"
            f"{base64.b64encode(bytes([self.kind]) + self.public).decode()}"
        )

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        try:
            name, key_id, blob = vkey.strip().split("+", 2)  # base64 may hold "+"
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            # never echoed: a signing key pasted here by mistake would show
            raise NoteError("not a verifier key (name+keyid+base64)") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise NoteError("verifier key: not an Ed25519 key")
        verifier = cls(check_key_name(name), raw[0], raw[1:])
        if verifier.key_id.hex() != key_id.lower():
            raise NoteError("verifier key: the key id does not match the key")
        return verifier


class Signer:
    """An Ed25519 private key with its name: the log's (type 0x01) or a witness's (0x04)."""

    def __init__(self, name: str, seed: bytes, kind: int = ED25519) -> None:
        self.name, self.kind = check_key_name(name), kind
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, kind, public)

    @classmethod
    def generate(cls, name: str, kind: int = ED25519) -> Signer:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        return cls(name, seed, kind)

    def private_text(self) -> str:
        """PRIVATE+KEY+name+keyid+base64(type ‖ seed): how the key is kept in a file or env."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return (
            f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+"
            f"{base64.b64encode(bytes([self.kind]) + seed).decode()}"
        )

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signing key: expected PRIVATE+KEY+name+keyid+base64") from None
        try:
            raw = base64.b64decode(parts[4], validate=True)
        except ValueError:
            raise NoteError("signing key: the key is not base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise NoteError("signing key: not an Ed25519 key")
        signer = cls(parts[2], raw[1:], raw[0])
        if signer.verifier.key_id.hex() != parts[3].lower():
            raise NoteError("signing key: the key id does not match the key")
        return signer

    def sign(self, body: str) -> str:
        """The note: body, blank line, this key's signature line."""
        _check_body(body)
        sig = self._key.sign(body.encode())
        return f"{body}\n{self._line(sig)}"

    def cosign(self, note: str, timestamp: int) -> str:
        """The note with this witness's cosignature/v1 line added (C2SP tlog-cosignature)."""
        body, lines = split(note)
        sig = self._key.sign(_cosigned_message(body, timestamp))
        return f"{body}\n{''.join(lines)}{self._line(struct.pack('>Q', timestamp) + sig)}"

    def _line(self, sig: bytes) -> str:
        blob = base64.b64encode(self.verifier.key_id + sig).decode()
        return f"{DASH}{self.name} {blob}\n"


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _check_body(body: str) -> None:
    if not body.endswith("\n") or "\n\n" in body:
        raise NoteError("note text must end in one newline and hold no blank line")


def split(note: str) -> tuple[str, list[str]]:
    """(body, signature lines) of a note; the body keeps its final newline."""
    at = note.rfind("\n\n")
    if at < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    body, sigs = note[: at + 1], note[at + 2 :]
    lines = sigs.splitlines(keepends=True)
    if not lines or any(not (ln.startswith(DASH) and ln.endswith("\n")) for ln in lines):
        raise NoteError("not a signed note: malformed signature lines")
    return body, lines


def _signatures(note: str, verifier: Verifier) -> tuple[str, list[bytes]]:
    body, lines = split(note)
    found = []
    for line in lines:
        try:
            name, blob = line[len(DASH) :].rstrip("\n").split(" ")
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise NoteError("not a signed note: malformed signature line") from None
        if name == verifier.name and raw[:4] == verifier.key_id:
            found.append(raw[4:])
    return body, found


def open_note(note: str, verifier: Verifier) -> str:
    """The body, once the log key's signature on it checks; NoteError otherwise."""
    body, found = _signatures(note, verifier)
    if not found:
        raise NoteError(f"not signed by {verifier.name}")
    key = Ed25519PublicKey.from_public_bytes(verifier.public)
    try:
        key.verify(found[0], body.encode())
    except InvalidSignature:
        raise NoteError(f"the signature of {verifier.name} does not match the note") from None
    return body


def cosignature_time(note: str, witness: Verifier) -> int:
    """When the witness cosigned this checkpoint (its signature checked); NoteError if not."""
    body, found = _signatures(note, witness)
    if not found or len(found[0]) != 72:
        raise NoteError(f"not cosigned by {witness.name}")
    (timestamp,) = struct.unpack(">Q", found[0][:8])
    key = Ed25519PublicKey.from_public_bytes(witness.public)
    try:
        key.verify(found[0][8:], _cosigned_message(body, timestamp))
    except InvalidSignature:
        raise NoteError(f"the cosignature of {witness.name} does not match") from None
    return timestamp


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: origin line, tree size, base64 root hash (C2SP tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("checkpoint: expected origin, size and root hash lines")
        origin, size, root = lines[:3]
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError(f"checkpoint: tree size {size[:20]!r} is not a decimal number")
        try:
            digest = base64.b64decode(root, validate=True)
        except ValueError:
            raise NoteError("checkpoint: root hash is not base64") from None
        if len(digest) != 32 or not origin:
            raise NoteError("checkpoint: a root hash has 32 bytes, an origin is not empty")
        return cls(origin, int(size), digest)


def open_checkpoint(note: str, log: Verifier, origin: str | None = None) -> Checkpoint:
    """A checkpoint whose log signature checks (and whose origin is the log's)."""
    checkpoint = Checkpoint.parse(open_note(note, log))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint of another log: {checkpoint.origin!r}")
    return checkpoint
