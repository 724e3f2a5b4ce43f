"""The Merkle tree over the ledger (RFC 6962 / RFC 9162 §2.1 hashing), pure and dependency-free.

Leaf hash `SHA-256(0x00 ‖ leaf input)`, node hash `SHA-256(0x01 ‖ left ‖ right)`, the root of
n leaves split at the largest power of two below n, the empty tree's root `SHA-256("")`.

The leaf input of the event at position p (leaf index p - 1) is its 32-byte chain hash:
`SHA-256(prev_hash ‖ canonical(record without hash))` (see `ledger.hashing`). An offline
checker holding the event's exported record (which carries `prev_hash`) recomputes that hash
from the record, then the leaf, then the root through the proof: the chain hash already
binds every field of the event, its position and its predecessor, so nothing else is needed.

Proofs are lists of 32-byte hashes, in the order RFC 9162 gives them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "CompactTree",
    "LeafSource",
    "SubtreeHashes",
    "consistency_proof",
    "event_leaf",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf(chain_hash: str) -> bytes:
    """The leaf hash of an event, from its chain hash (lowercase hex)."""
    return leaf_hash(bytes.fromhex(chain_hash))


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactTree:
    """A tree grown one leaf at a time, keeping only its O(log n) perfect subtrees.

    `root()` is the root of the leaves appended so far, at any moment, in O(log n): what a
    verifier walking a million events needs to check each checkpoint as it passes it.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes decreasing

    def append(self, leaf: bytes) -> None:
        size, value = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, value = left_size + size, node_hash(left, value)
        self._stack.append((size, value))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _size, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


LeafSource = Callable[[int, int], Sequence[bytes]]
"""`source(start, end)`: the leaf hashes of indices start..end-1 (a range of one chunk)."""


class SubtreeHashes(CompactTree):
    """A `CompactTree` that also keeps every perfect subtree of at least `2**min_level`
    leaves as it completes, so that roots and audit paths of any tree size it has reached
    cost O(log n) hashes plus the leaves of at most two chunks of `2**min_level`.

    Perfect subtrees are aligned (a subtree of 2**j leaves starts at a multiple of 2**j),
    so each level is a list indexed by `start >> j`. Memory: about 64 bytes per chunk, well
    under one byte per leaf with the default chunk of 1024 leaves.
    """

    def __init__(self, min_level: int = 10) -> None:
        super().__init__()
        self.min_level = min_level
        self._levels: list[list[bytes]] = []

    def append(self, leaf: bytes) -> None:
        size, value = 1, leaf
        self._keep(size, value)
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, value = left_size + size, node_hash(left, value)
            self._keep(size, value)
        self._stack.append((size, value))
        self.size += 1

    def _keep(self, size: int, value: bytes) -> None:
        level = size.bit_length() - 1 - self.min_level
        if level >= 0:
            while len(self._levels) <= level:
                self._levels.append([])
            self._levels[level].append(value)

    def _perfect(self, start: int, size: int) -> bytes | None:
        if size & (size - 1) or start % size:
            return None
        level = size.bit_length() - 1 - self.min_level
        if level < 0 or level >= len(self._levels):
            return None
        row = self._levels[level]
        index = start >> (level + self.min_level)
        return row[index] if index < len(row) else None

    def root_of(self, size: int, source: LeafSource) -> bytes:
        """The root of the first `size` leaves (`size` <= the leaves appended so far)."""
        self._reached(size)
        return (
            self._subroot(0, size, _Chunks(source, 1 << self.min_level, size))
            if size
            else EMPTY_ROOT
        )

    def path(self, index: int, size: int, source: LeafSource) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962)."""
        self._reached(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
        chunks = _Chunks(source, 1 << self.min_level, size)
        out: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                out.append(self._subroot(start + k, end, chunks))
                end = start + k
            else:
                out.append(self._subroot(start, start + k, chunks))
                start += k
        return out[::-1]

    def _reached(self, size: int) -> None:
        if size > self.size:
            raise ValueError(f"the tree holds {self.size} leaves, not {size}: catch it up first")

    def _subroot(self, start: int, end: int, chunks: _Chunks) -> bytes:
        n = end - start
        found = self._perfect(start, n)
        if found is not None:
            return found
        if n == 1:
            return chunks.leaf(start)
        k = _split(n)
        return node_hash(
            self._subroot(start, start + k, chunks), self._subroot(start + k, end, chunks)
        )


class _Chunks:
    """Leaves read from a `LeafSource` a whole chunk at a time, each chunk at most once."""

    def __init__(self, source: LeafSource, chunk: int, size: int) -> None:
        self.source, self.chunk, self.size = source, chunk, size
        self._read: dict[int, Sequence[bytes]] = {}

    def leaf(self, index: int) -> bytes:
        number = index // self.chunk
        if number not in self._read:
            start = number * self.chunk
            self._read[number] = self.source(start, min(start + self.chunk, self.size))
        return self._read[number][index - number * self.chunk]


def root(leaves: Sequence[bytes]) -> bytes:
    """The root over `leaves` (leaf hashes)."""
    tree = CompactTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of all `leaves` (RFC 6962 PATH)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    return _path(leaves, index, 0, len(leaves))


def _path(leaves: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(leaves, m, start, start + k), _subroot(leaves, start + k, end)]
    return [*_path(leaves, m - k, start + k, end), _subroot(leaves, start, start + k)]


def _subroot(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    tree = CompactTree()
    for position in range(start, end):
        tree.append(leaves[position])
    return tree.root()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """True when `proof` shows `leaf` at `index` in the tree of `size` leaves with that root
    (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, value = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            value = node_hash(value, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and value == expected_root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the tree of the first `old_size` leaves is a prefix of all `leaves`
    (RFC 6962 PROOF)."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {len(leaves)} leaves")
    return _subproof(leaves, old_size, 0, len(leaves), True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [_subroot(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, start, start + k, whole), _subroot(leaves, start + k, end)]
    return [*_subproof(leaves, m - k, start + k, end, False), _subroot(leaves, start, start + k)]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when `proof` shows the tree (old_size, old_root) is a prefix of
    (new_size, new_root) (RFC 9162 §2.1.4.2)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first = node_hash(sibling, first)
            second = node_hash(sibling, second)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second = node_hash(second, sibling)
        fn >>= 1
        sn >>= 1
    return first == old_root and second == new_root and sn == 0
