"""`SubtreeHashes` gives the same roots and audit paths as the whole leaf list, for every tree
size it has reached, while reading leaves only from the chunks a path crosses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import SubtreeHashes, inclusion_proof, leaf_hash, root, verify_inclusion


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 300),
    data=st.data(),
    min_level=st.integers(0, 4),
)
def test_roots_and_paths_equal_those_of_the_full_leaf_list(
    total: int, data: st.DataObject, min_level: int
) -> None:
    leaves = [leaf_hash(n.to_bytes(4, "big")) for n in range(total)]
    tree = SubtreeHashes(min_level)
    for leaf in leaves:
        tree.append(leaf)
    reads: list[tuple[int, int]] = []

    def source(start: int, end: int) -> list[bytes]:
        reads.append((start, end))
        return leaves[start:end]

    size = data.draw(st.integers(1, total))
    index = data.draw(st.integers(0, size - 1))
    assert tree.root_of(size, source) == root(leaves[:size])
    path = tree.path(index, size, source)
    assert path == inclusion_proof(leaves[:size], index)
    assert verify_inclusion(leaves[index], index, size, path, root(leaves[:size]))
    # At most the leaf's chunk and the tree's ragged right edge are read, one chunk each.
    assert all(end - start <= 1 << min_level for start, end in reads)
    assert len(set(reads)) <= 2 * 2


def test_a_tree_refuses_a_size_it_has_not_reached() -> None:
    tree = SubtreeHashes(2)
    tree.append(leaf_hash(b"x"))
    try:
        tree.path(0, 2, lambda start, end: [])
    except ValueError as exc:
        assert "catch it up" in str(exc)
    else:
        raise AssertionError("a path beyond the tree was built")
