"""The ledger's Merkle tree: RFC 6962 roots, inclusion and consistency proofs."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    CompactTree,
    consistency_proof,
    event_leaf,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(f"event {i}".encode()) for i in range(n)]


sizes = st.integers(min_value=1, max_value=70)


def test_hashing_is_domain_separated_as_in_rfc_6962() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert event_leaf("ab" * 32) == hashlib.sha256(b"\x00" + bytes.fromhex("ab" * 32)).digest()


def test_a_known_three_leaf_root() -> None:
    a, b, c = leaves_of(3)
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)


@given(st.integers(min_value=0, max_value=300))
def test_the_compact_tree_root_equals_the_rfc_root_at_every_size(n: int) -> None:
    leaves = leaves_of(n)
    tree = CompactTree()
    for count, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        if count in (1, n // 2, n):
            assert tree.root() == reference_root(leaves[:count])
    assert tree.size == n
    assert root(leaves) == reference_root(leaves)


@settings(max_examples=60)
@given(sizes, st.data())
def test_every_inclusion_proof_verifies_and_fails_when_anything_is_changed(
    n: int, data: st.DataObject
) -> None:
    leaves = leaves_of(n)
    top = root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, n, proof, top)
    assert not verify_inclusion(leaf_hash(b"forged"), index, n, proof, top)
    assert not verify_inclusion(leaves[index], index, n, proof, leaf_hash(b"other root"))
    if n > 1:
        other = (index + 1) % n
        assert not verify_inclusion(leaves[index], other, n, proof, top)
        assert not verify_inclusion(leaves[index], index, n, proof[:-1], top)
        bent = [*proof]
        bent[0] = leaf_hash(b"bent")
        assert not verify_inclusion(leaves[index], index, n, bent, top)


@settings(max_examples=60)
@given(sizes, st.data())
def test_consistency_proofs_verify_between_every_pair_of_sizes(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    old = data.draw(st.integers(min_value=1, max_value=n))
    proof = consistency_proof(leaves, old)
    old_root, new_root = root(leaves[:old]), root(leaves)
    assert verify_consistency(old, n, old_root, new_root, proof)
    # A rewritten history: the same sizes, another old root.
    rewritten = [*leaves[: old - 1], leaf_hash(b"rewritten"), *leaves[old:]]
    assert not verify_consistency(old, n, root(rewritten[:old]), new_root, proof)
    if old < n:
        assert not verify_consistency(old, n, old_root, root(rewritten), proof)


def test_proof_requests_outside_the_tree_are_refused() -> None:
    leaves = leaves_of(4)
    for bad in (-1, 4):
        try:
            inclusion_proof(leaves, bad)
        except ValueError:
            continue
        raise AssertionError(f"index {bad} accepted")
    assert not verify_inclusion(leaves[0], 5, 4, [], root(leaves))
    assert not verify_consistency(0, 4, EMPTY_ROOT, root(leaves), [])
