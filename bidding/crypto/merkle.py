"""Merkle trees as RFC 6962 / RFC 9162 define them (SHA-256): roots, inclusion and consistency."""

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (MTH) of a list of leaf hashes."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path (RFC 9162 PATH) proving the leaf at `index` is in the tree."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    # Walk down from the root; each step's sibling subtree is hashed once and the siblings
    # are disjoint, so the whole proof costs O(n).
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append(_subtree_root(leaf_hashes, middle, end))
            end = middle
        else:
            siblings.append(_subtree_root(leaf_hashes, start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof (RFC 9162 PROOF) that the first `old_size` leaves prefix the tree."""
    size = len(leaf_hashes)
    if not 1 <= old_size <= size:
        raise ValueError(f"old size {old_size} is outside 1..{size} for a tree of {size} leaves")
    nodes: list[bytes] = []
    start, end = 0, size
    remaining = old_size
    # SUBPROOF's flag b: true while the old tree's root is the left edge of the current subtree,
    # in which case the verifier already holds that root and it is left out of the proof.
    on_left_edge = True
    while remaining != end - start:
        middle = start + _split(end - start)
        if remaining <= middle - start:
            nodes.append(_subtree_root(leaf_hashes, middle, end))
            end = middle
        else:
            nodes.append(_subtree_root(leaf_hashes, start, middle))
            remaining -= middle - start
            start = middle
            on_left_edge = False
    if not on_left_edge:
        nodes.append(_subtree_root(leaf_hashes, start, end))
    nodes.reverse()
    return nodes


def verify_inclusion(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether `proof` puts `leaf_hash` at `index` in the tree of `tree_size` and `root`."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    if not (isinstance(index, int) and isinstance(tree_size, int) and 0 <= index < tree_size):
        return False
    # RFC 9162 §2.1.3.2, step for step.
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether `proof` shows the tree of `old_size` is a prefix of the one of `new_size`."""
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    if not (isinstance(old_size, int) and isinstance(new_size, int) and 1 <= old_size <= new_size):
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    # RFC 9162 §2.1.4.2, step for step.
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if start == end:
        return EMPTY_ROOT
    # Each stack entry is the root of a perfect subtree, sizes strictly decreasing towards the
    # top; merging equal sizes as leaves arrive builds the tree in one pass, O(n).
    stack: list[tuple[int, bytes]] = []
    for position in range(start, end):
        size, node = 1, leaf_hashes[position]
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, node_hash(left, node)
        stack.append((size, node))
    # What is left is the right edge of an unbalanced tree: fold it from the right.
    _, root = stack.pop()
    while stack:
        _, left = stack.pop()
        root = node_hash(left, root)
    return root


def _split(size: int) -> int:
    """Return the largest power of two smaller than `size` (which must be at least 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_proof(proof: object) -> bool:
    return isinstance(proof, Sequence) and all(_is_hash(element) for element in proof)
