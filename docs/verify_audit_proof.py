#!/usr/bin/env python3
"""Check a tongfa audit proof yourself: Python's standard library and `cryptography` only.

    tongfa audit prove 123 --json > proof.json
    python verify_audit_proof.py proof.json --vkey 'LOG+KEYID+BASE64'

    tongfa audit consistency 100 250 --json > consistency.json
    python verify_audit_proof.py consistency.json --vkey 'LOG+KEYID+BASE64'

    # a government web page and its publishing record (the link in its footer)
    python verify_audit_proof.py 42.json --page article.html --vkey 'LOG+KEYID+BASE64'

The verifier key (from `tongfa audit vkey`, or as the government publishes it) must come
from you, not from the proof file. Checked: the checkpoint is signed by that key (C2SP
signed note, Ed25519); the event's bytes hash to the leaf (RFC 6962); the path leads from
the leaf to the checkpoint's root (RFC 9162 §2.1.3.2), or the old tree is a prefix of the
new one (§2.1.4.2). Prints OK and exits 0, or says what failed and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failed(Exception):
    pass


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint signed by the key vkey names."""
    name, key_id, blob = vkey.strip().split("+", 2)
    raw = base64.b64decode(blob)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Failed("the verifier key is not an Ed25519 signed-note key")
    if hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4].hex() != key_id:
        raise Failed("the verifier key's id does not match its key")
    at = note.rfind("\n\n")
    if at < 0:
        raise Failed("the checkpoint is not a signed note")
    body = note[: at + 1]
    if body.split("\n")[0] != name:  # a log's checkpoints name it: its key signs no other
        raise Failed(f"the checkpoint is not of the log {name}")
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    for line in note[at + 2 :].splitlines():
        if not line.startswith("\u2014 "):
            raise Failed("the checkpoint has a malformed signature line")
        signer, sig = line[2:].split(" ")
        sig_raw = base64.b64decode(sig)
        if signer == name and sig_raw[:4].hex() == key_id:
            try:
                key.verify(sig_raw[4:], body.encode())
            except InvalidSignature:
                raise Failed("the checkpoint's signature does not match") from None
            origin, size, root = body.split("\n")[:3]
            return origin, int(size), base64.b64decode(root)
    raise Failed(f"the checkpoint is not signed by {name}")


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    if old & (old - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def leaf_of(event: dict) -> bytes:
    """RFC 6962 leaf hash of an event: its canonical JSON (sorted keys, no spaces, UTF-8)."""
    data = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(b"\x00" + data.encode()).digest()


def check_inclusion(proof: dict, vkey: str) -> str:
    _, size, root = open_checkpoint(proof["checkpoint"], vkey)
    if size != proof["tree_size"] or root.hex() != proof["root_hash"]:
        raise Failed("the proof is not against the checkpoint it carries")
    leaf = leaf_of(proof["event"])
    if leaf.hex() != proof["leaf_hash"]:
        raise Failed("the event does not hash to the proof's leaf: it was altered")
    path = [bytes.fromhex(h) for h in proof["path"]]
    if not verify_inclusion(proof["leaf_index"], size, leaf, path, root):
        raise Failed("the event is not in the tree the checkpoint signed")
    return (
        f"OK: event {proof['event']['id']} is entry {proof['leaf_index']} of the "
        f"{size} the log signed"
    )


def article_hash(html: bytes) -> str:
    """SHA-256 of the page's <article> element, byte for byte as served (no newline
    translation), as the page's footer states it. A page with another <article> beside
    it is refused: a copy of the logged one could hide while another one shows."""
    start, end = html.find(b"<article>"), html.find(b"</article>")
    if start < 0 or end < start:
        raise Failed("the page has no <article> element")
    end += len(b"</article>")
    if b"<article" in (html[:start] + b" " + html[end:]).lower():
        raise Failed("the page holds more than one <article> element")
    return hashlib.sha256(html[start:end]).hexdigest()


def check_page(record: dict, vkey: str, page: str | None) -> str:
    """The page's publishing record: its go-live event and the logged page hash, both in
    the tree the checkpoint signed; and, given the page, that it is the page logged."""
    _, size, root = open_checkpoint(record["checkpoint"], vkey)
    if size != record["tree_size"] or root.hex() != record["root_hash"]:
        raise Failed("the record is not against the checkpoint it carries")
    for part in ("go_live", "record"):
        entry = record[part]
        path = [bytes.fromhex(h) for h in entry["path"]]
        if not verify_inclusion(entry["leaf_index"], size, leaf_of(entry["event"]), path, root):
            raise Failed(f"the {part} event is not in the tree the checkpoint signed")
    go_live, logged = record["go_live"]["event"], record["record"]["event"]
    if (
        go_live["action"] != "release.go_live"
        or logged["action"] != "transparency.page_recorded"
        or logged["after"].get("go_live_event") != go_live["id"]
        or logged["release_id"] != go_live["release_id"]
    ):
        raise Failed("the logged page hash is not about this go-live")
    if logged["after"].get("page_hash") != record["page_hash"]:
        raise Failed("the record's page hash is not the one logged")
    if page is not None:
        with open(page, "rb") as handle:
            if article_hash(handle.read()) != record["page_hash"]:
                raise Failed("the page differs from the one that went live")
    return (
        f"OK: release {go_live['release_id']} went live at {go_live['at']} (UTC)"
        + f" at {logged['after'].get('url')}"
        + (", and this page's <article> is the one it published" if page else "")
        + f"; entries {record['go_live']['leaf_index']} and "
        f"{record['record']['leaf_index']} of the {size} the log signed"
    )


def check_consistency(proof: dict, vkey: str) -> str:
    _, old, old_root = open_checkpoint(proof["old_checkpoint"], vkey)
    _, new, new_root = open_checkpoint(proof["new_checkpoint"], vkey)
    hashes = [bytes.fromhex(h) for h in proof["proof"]]
    if not verify_consistency(old, new, old_root, new_root, hashes):
        raise Failed(f"the tree of {new} does not extend the tree of {old}")
    return f"OK: the log's first {old} entries are unchanged in its tree of {new}"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """A key twice in one object: a reader sees the first, json keeps the last. Refused."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Failed(
            f"the file names a field twice: {sorted(k for k in keys if keys.count(k) > 1)}"
        )
    return dict(pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proof", help="the JSON from `tongfa audit prove|consistency --json`")
    parser.add_argument("--vkey", required=True, help="the log's verifier key")
    parser.add_argument("--page", help="a saved web page whose publishing record this is")
    args = parser.parse_args()
    try:
        with open(args.proof, encoding="utf-8") as handle:
            proof = json.load(handle, object_pairs_hook=_no_duplicates)
        if "go_live" in proof:
            print(check_page(proof, args.vkey, args.page))
        elif "new_checkpoint" in proof:
            print(check_consistency(proof, args.vkey))
        else:
            print(check_inclusion(proof, args.vkey))
        return 0
    except (Failed, KeyError, ValueError, TypeError) as exc:
        print(f"FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
