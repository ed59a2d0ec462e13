"""The audit log's Merkle tree: RFC 6962 hashing, RFC 9162 §2.1 proofs and their checks.

Pure: no database. A stored tree is read through `node(level, index)` — the hash of the
complete subtree over leaves [index·2^level, (index+1)·2^level) — so a proof needs only
the O(log n) complete subtrees named by `inclusion_nodes` / `consistency_nodes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from hashlib import sha256

Node = tuple[int, int]  # (level, index): a complete subtree of 2**level leaves
Span = tuple[int, int]  # [start, end): leaves whose Merkle tree hash one proof element is
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes, straight from the definition (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def span_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees making up [start, end), largest first; their right-to-left fold
    is the span's tree hash when start is aligned to the span (as every proof span is)."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: list[bytes]) -> bytes:
    """Combine the hashes of span_nodes(...) into the span's Merkle tree hash."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_spans(index: int, size: int) -> list[Span]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1 as spans, leaf end first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    spans: list[Span] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start += k
    return spans[::-1]


def consistency_spans(old: int, new: int) -> list[Span]:
    """PROOF(old, D[new]) of RFC 6962 §2.1.2 as spans."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    if old in (0, new):
        return []
    spans: list[Span] = []
    start, end, whole = 0, new, True
    m = old
    while True:
        if m == end - start:
            if not whole:
                spans.append((start, end))
            break
        k = _split(end - start)
        if m <= k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start, m, whole = start + k, m - k, False
    return spans[::-1]


def needed(spans: Iterable[Span]) -> list[Node]:
    """Every stored node a set of spans reads: fetch these in one query."""
    return sorted({n for a, b in spans for n in span_nodes(a, b)})


def resolve(spans: list[Span], node: Callable[[int, int], bytes]) -> list[bytes]:
    return [fold([node(*n) for n in span_nodes(a, b)]) for a, b in spans]


def tree_root(size: int, node: Callable[[int, int], bytes]) -> bytes:
    return EMPTY_ROOT if size == 0 else fold([node(*n) for n in span_nodes(0, size)])


# ------------------------------------------------------------------ verification (RFC 9162 §2.1)


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: list[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2; an empty tree is consistent with every tree (empty proof)."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    if old & (old - 1) == 0:  # a power of two: the old root is itself a proof node
        proof = [old_root, *proof]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# ------------------------------------------------------------------ building a tree leaf by leaf


class Builder:
    """The right edge of a growing tree: append leaves, get every subtree they complete.

    Holds one hash per level (O(log n) memory), so a sequencer or a verifier walks a
    million leaves without keeping them; `root()` is the tree hash at the current size."""

    def __init__(self, size: int = 0, edge: list[bytes] | None = None) -> None:
        """Resume at `size` from the hashes of span_nodes(0, size), largest first."""
        self.size = size
        self._edge = list(edge or [])
        if len(self._edge) != len(span_nodes(0, size)):
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} edge nodes")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; returns (level, index, hash) of it and of each subtree it completes."""
        index, level, h = self.size, 0, leaf
        made = [(0, index, h)]
        while index & 1:
            h = node_hash(self._edge.pop(), h)
            index, level = index >> 1, level + 1
            made.append((level, index, h))
        self._edge.append(h)
        self.size += 1
        return made

    def root(self) -> bytes:
        return fold(self._edge) if self._edge else EMPTY_ROOT
