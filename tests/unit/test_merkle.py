"""The audit log's Merkle tree against RFC 6962's published vectors and, for every shape,
against its own definition: a proof verifies, and fails once anything in it is altered."""

from __future__ import annotations

from hashlib import sha256

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain import merkle

# the Certificate Transparency test inputs and the tree hashes of their first n leaves
INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [merkle.leaf_hash(d) for d in INPUTS]


class Stored:
    """A tree kept the way the database keeps it: every complete subtree by (level, index)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        builder = merkle.Builder()
        for leaf in leaves:
            for level, index, h in builder.append(leaf):
                self.nodes[level, index] = h
        self.builder = builder

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[level, index]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.resolve(merkle.inclusion_spans(index, size), self.node)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.resolve(merkle.consistency_spans(old, new), self.node)


def test_the_rfc6962_vectors():
    assert merkle.root([]).hex() == sha256(b"").hexdigest()
    stored = Stored(LEAVES)
    for n, expected in enumerate(ROOTS, 1):
        assert merkle.root(LEAVES[:n]).hex() == expected
        assert merkle.tree_root(n, stored.node).hex() == expected


def test_the_published_proofs_of_the_eight_leaf_tree():
    stored = Stored(LEAVES)
    assert [h.hex() for h in stored.inclusion(5, 8)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in stored.consistency(3, 8)] == [
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


@st.composite
def index_and_size(draw):  # type: ignore[no-untyped-def]
    size = draw(st.integers(1, 300))
    return draw(st.integers(0, size - 1)), size


@given(index_and_size())
def test_an_inclusion_proof_verifies_and_nothing_else_does(case):
    index, size = case
    leaves = leaves_of(size + 3)
    stored = Stored(leaves)
    root = merkle.root(leaves[:size])
    assert merkle.tree_root(size, stored.node) == root
    path = stored.inclusion(index, size)
    assert len(path) <= size.bit_length()
    assert merkle.verify_inclusion(index, size, leaves[index], path, root)
    assert not merkle.verify_inclusion(index, size, flip(leaves[index]), path, root)
    # a wrong size: the path does not lead to that tree's root
    grown = merkle.root(leaves[: size + 1])
    assert not merkle.verify_inclusion(index, size + 1, leaves[index], path, grown)
    assert not merkle.verify_inclusion(index, size, leaves[index], path, flip(root))
    if size > 1:
        assert not merkle.verify_inclusion(
            index ^ 1 if index ^ 1 < size else index - 1, size, leaves[index], path, root
        )
        if index < size - 1:
            shrunk = merkle.root(leaves[: size - 1])
            assert not merkle.verify_inclusion(index, size - 1, leaves[index], path, shrunk)
    for i in range(len(path)):
        altered = [*path[:i], flip(path[i]), *path[i + 1 :]]
        assert not merkle.verify_inclusion(index, size, leaves[index], altered, root)
    assert not merkle.verify_inclusion(index, size, leaves[index], [*path, root], root)
    if path:
        assert not merkle.verify_inclusion(index, size, leaves[index], path[:-1], root)


@st.composite
def old_and_new(draw):  # type: ignore[no-untyped-def]
    new = draw(st.integers(1, 300))
    return draw(st.integers(1, new)), new


@given(old_and_new())
def test_a_consistency_proof_verifies_and_nothing_else_does(case):
    old, new = case
    leaves = leaves_of(new + 2)
    stored = Stored(leaves)
    old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves[:new])
    proof = stored.consistency(old, new)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, new, flip(old_root), new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, flip(new_root), proof)
    for i in range(len(proof)):
        altered = [*proof[:i], flip(proof[i]), *proof[i + 1 :]]
        assert not merkle.verify_consistency(old, new, old_root, new_root, altered)
    if old < new:
        grown = merkle.root(leaves[: new + 1])
        assert not merkle.verify_consistency(old, new + 1, old_root, grown, proof)
        assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
        assert not merkle.verify_consistency(new, old, new_root, old_root, proof)
        # a tree that rewrote one of the old leaves is not consistent with the old head
        forked = list(leaves[:new])
        forked[old - 1] = flip(forked[old - 1])
        fork_proof = Stored(forked).consistency(old, new)
        assert not merkle.verify_consistency(old, new, old_root, merkle.root(forked), fork_proof)


def test_a_builder_resumed_from_its_edge_carries_on_the_same_tree():
    leaves = leaves_of(77)
    stored = Stored(leaves[:50])
    edge = [stored.node(*n) for n in merkle.span_nodes(0, 50)]
    resumed = merkle.Builder(50, edge)
    for leaf in leaves[50:]:
        resumed.append(leaf)
    assert resumed.root() == merkle.root(leaves)


def test_a_proof_reads_only_logarithmically_many_nodes():
    spans = merkle.inclusion_spans(123_456, 1_000_003)
    assert len(merkle.needed(spans)) <= 2 * 20
