"""Tests for the RFC 6962 / RFC 9162 Merkle tree: roots, inclusion and consistency proofs."""

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidding.crypto import merkle

# An independent implementation, written from the recursive definitions of RFC 6962 §2.1 over
# the raw entries, so a shared mistake in hashing or splitting cannot hide.


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = _largest_power_of_two_below(n)
    return _sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if complete else [ref_mth(entries)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], complete), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    return ref_subproof(m, entries, True)


def flip_bit(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


SIZES = range(1, 65)
ENTRIES = [b"receipt %d " % i + bytes(range(i % 7)) for i in range(max(SIZES))]
LEAVES = [merkle.leaf_hash(entry) for entry in ENTRIES]
ROOTS = [ref_mth(ENTRIES[:size]) for size in range(len(ENTRIES) + 1)]
OTHER_HASH = _sha256(b"not in any tree")

# The classic certificate-transparency test data, with the values published in
# transparency-dev/merkle (testonly/constants.go, proof/verify_test.go).
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def includes(index: int, tree_size: int, proof: list[bytes], root: bytes) -> bool:
    return merkle.verify_inclusion(
        leaf_hash=LEAVES[index], index=index, tree_size=tree_size, proof=proof, root=root
    )


def consistent(old_size: int, new_size: int, proof: list[bytes]) -> bool:
    return merkle.verify_consistency(
        old_size=old_size,
        new_size=new_size,
        old_root=ROOTS[old_size],
        new_root=ROOTS[new_size],
        proof=proof,
    )


def count_node_hashes(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    calls = 0
    original = merkle.node_hash

    def counting(left: bytes, right: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return original(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting)
    return lambda: calls


class TestHashes:
    def test_leaf_hash_is_sha256_of_zero_byte_and_data(self) -> None:
        assert merkle.leaf_hash(b"bid") == _sha256(b"\x00bid")
        assert merkle.leaf_hash(b"") == CT_ROOTS[1]

    def test_node_hash_is_sha256_of_one_byte_and_children(self) -> None:
        left, right = _sha256(b"l"), _sha256(b"r")
        assert merkle.node_hash(left, right) == _sha256(b"\x01" + left + right)


class TestKnownAnswers:
    @pytest.mark.parametrize("size", range(len(CT_ROOTS)))
    def test_root_matches_the_published_value(self, size: int) -> None:
        leaves = [merkle.leaf_hash(entry) for entry in CT_ENTRIES[:size]]
        assert ref_mth(CT_ENTRIES[:size]) == CT_ROOTS[size]
        assert merkle.root_hash(leaves) == CT_ROOTS[size]

    @pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
    def test_inclusion_proof_matches_the_published_value(
        self, index: int, size: int, expected: list[str]
    ) -> None:
        leaves = [merkle.leaf_hash(entry) for entry in CT_ENTRIES[:size]]
        proof = [bytes.fromhex(h) for h in expected]
        assert ref_path(index, CT_ENTRIES[:size]) == proof
        assert merkle.inclusion_proof(leaves, index) == proof
        assert merkle.verify_inclusion(
            leaf_hash=leaves[index], index=index, tree_size=size, proof=proof, root=CT_ROOTS[size]
        )

    @pytest.mark.parametrize(("old_size", "new_size", "expected"), CT_CONSISTENCY)
    def test_consistency_proof_matches_the_published_value(
        self, old_size: int, new_size: int, expected: list[str]
    ) -> None:
        leaves = [merkle.leaf_hash(entry) for entry in CT_ENTRIES[:new_size]]
        proof = [bytes.fromhex(h) for h in expected]
        assert ref_proof(old_size, CT_ENTRIES[:new_size]) == proof
        assert merkle.consistency_proof(leaves, old_size) == proof
        assert merkle.verify_consistency(
            old_size=old_size,
            new_size=new_size,
            old_root=CT_ROOTS[old_size],
            new_root=CT_ROOTS[new_size],
            proof=proof,
        )


class TestRootHash:
    def test_empty_tree_is_sha256_of_nothing(self) -> None:
        assert merkle.root_hash([]) == hashlib.sha256(b"").digest()

    @pytest.mark.parametrize("size", SIZES)
    def test_matches_the_reference(self, size: int) -> None:
        assert merkle.root_hash(LEAVES[:size]) == ROOTS[size]

    def test_changes_when_leaves_are_reordered(self) -> None:
        swapped = [LEAVES[1], LEAVES[0], *LEAVES[2:5]]
        assert merkle.root_hash(swapped) != ROOTS[5]

    @pytest.mark.parametrize("size", [1, 2, 5, 64, 1000, 1025])
    def test_hashes_each_interior_node_once(
        self, size: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = count_node_hashes(monkeypatch)
        merkle.root_hash([OTHER_HASH] * size)
        assert calls() == size - 1


class TestInclusionProof:
    @pytest.mark.parametrize("size", SIZES)
    def test_every_proof_matches_the_reference_and_verifies(self, size: int) -> None:
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            assert proof == ref_path(index, ENTRIES[:size]), index
            assert includes(index, size, proof, ROOTS[size]), index

    def test_costs_linear_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = count_node_hashes(monkeypatch)
        merkle.inclusion_proof([OTHER_HASH] * 1000, 500)
        assert calls() < 1000

    @pytest.mark.parametrize(("size", "index"), [(0, 0), (5, 5), (5, 6), (5, -1)])
    def test_refuses_an_index_outside_the_tree(self, size: int, index: int) -> None:
        with pytest.raises(ValueError, match="outside a tree"):
            merkle.inclusion_proof(LEAVES[:size], index)


class TestVerifyInclusion:
    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_a_flipped_bit_in_any_element(self, size: int) -> None:
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            for position in range(len(proof)):
                for bit in (0, 7):
                    tampered = list(proof)
                    tampered[position] = flip_bit(proof[position], bit)
                    assert not includes(index, size, tampered, ROOTS[size]), (index, position)

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_the_proof_under_any_other_index(self, size: int) -> None:
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            for other in range(size):
                if other != index:
                    assert not merkle.verify_inclusion(
                        leaf_hash=LEAVES[index],
                        index=other,
                        tree_size=size,
                        proof=proof,
                        root=ROOTS[size],
                    ), (index, other)

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_a_different_tree_shape(self, size: int) -> None:
        # The verifier sees tree_size only through the shape of the path (trees of 3 and 4 leaves
        # share leaf 0's path shape), so only sizes that change the shape can be caught here; the
        # signed tree head is what ties a root to its size.
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            assert not includes(index, size * 2, proof, ROOTS[size])
            assert not includes(index, size // 2, proof, ROOTS[size])

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_missing_or_extra_elements(self, size: int) -> None:
        root = ROOTS[size]
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            if proof:
                assert not includes(index, size, proof[:-1], root)
                assert not includes(index, size, proof[1:], root)
            assert not includes(index, size, [*proof, OTHER_HASH], root)
            assert not includes(index, size, [*proof, root], root)
            assert not includes(index, size, [OTHER_HASH, *proof], root)
            assert not includes(index, size, [*proof, b""], root)

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_another_root_or_leaf(self, size: int) -> None:
        for index in range(size):
            proof = merkle.inclusion_proof(LEAVES[:size], index)
            assert not includes(index, size, proof, ROOTS[size - 1])
            assert not includes(index, size, proof, merkle.EMPTY_ROOT)
            assert not merkle.verify_inclusion(
                leaf_hash=OTHER_HASH, index=index, tree_size=size, proof=proof, root=ROOTS[size]
            )

    def test_rejects_an_interior_node_passed_off_as_an_entry(self) -> None:
        # Second-preimage attempt: claim the entry L0 || L1 is a leaf standing where node(L0, L1)
        # is; the 0x00 / 0x01 prefixes make its leaf hash differ from the node's hash.
        forged = merkle.leaf_hash(LEAVES[0] + LEAVES[1])
        proof = merkle.inclusion_proof(LEAVES[:4], 0)[1:]
        assert merkle.verify_inclusion(
            leaf_hash=merkle.node_hash(LEAVES[0], LEAVES[1]),
            index=0,
            tree_size=2,
            proof=proof,
            root=ROOTS[4],
        )
        assert not merkle.verify_inclusion(
            leaf_hash=forged, index=0, tree_size=2, proof=proof, root=ROOTS[4]
        )

    def test_rejects_a_path_longer_than_the_claimed_tree_is_deep(self) -> None:
        # The last leaf of a 2^k tree has only left siblings, so extra steps would hash "right";
        # the verifier must stop once the claimed tree's height is used up.
        for size in (4, 8, 16, 32, 64):
            proof = merkle.inclusion_proof(LEAVES[:size], size - 1)
            for claimed in (2, 4, 8, 16, 32):
                if claimed < size:
                    assert not merkle.verify_inclusion(
                        leaf_hash=LEAVES[size - 1],
                        index=claimed - 1,
                        tree_size=claimed,
                        proof=proof,
                        root=ROOTS[size],
                    ), (size, claimed)

    # A one-leaf tree's root is its leaf and its proof is empty, so only the range check
    # stops the (1, 1) and (2, 1) cases.
    @pytest.mark.parametrize(
        ("index", "tree_size"), [(1, 1), (2, 1), (4, 4), (5, 4), (-1, 4), (0, 0), (0, -1)]
    )
    def test_rejects_an_index_outside_the_tree(self, index: int, tree_size: int) -> None:
        assert not merkle.verify_inclusion(
            leaf_hash=LEAVES[0], index=index, tree_size=tree_size, proof=[], root=LEAVES[0]
        )

    def test_single_leaf_tree_needs_an_empty_proof(self) -> None:
        assert includes(0, 1, [], LEAVES[0])
        assert not includes(0, 1, [LEAVES[0]], LEAVES[0])

    @pytest.mark.parametrize(
        "malformed",
        [
            {"leaf_hash": LEAVES[0][:31]},
            {"leaf_hash": b"", "root": b"", "tree_size": 1, "proof": []},
            {"leaf_hash": b"x" * 33, "root": b"x" * 33, "tree_size": 1, "proof": []},
            {"leaf_hash": "00" * 32},
            {"root": ROOTS[5] + b"\x00"},
            {"root": None},
            {"proof": [LEAVES[1][:16], LEAVES[1][16:]]},
            {"proof": ["a" * 32]},
            {"proof": b""},
            {"proof": None},
            {"index": "0"},
            {"tree_size": 5.0},
        ],
    )
    def test_returns_false_on_malformed_input(self, malformed: dict[str, object]) -> None:
        arguments: dict[str, object] = {
            "leaf_hash": LEAVES[0],
            "index": 0,
            "tree_size": 5,
            "proof": merkle.inclusion_proof(LEAVES[:5], 0),
            "root": ROOTS[5],
        }
        assert merkle.verify_inclusion(**arguments)  # type: ignore[arg-type]
        arguments.update(malformed)
        assert merkle.verify_inclusion(**arguments) is False  # type: ignore[arg-type]


class TestConsistencyProof:
    @pytest.mark.parametrize("size", SIZES)
    def test_every_proof_matches_the_reference_and_verifies(self, size: int) -> None:
        for old_size in range(1, size + 1):
            proof = merkle.consistency_proof(LEAVES[:size], old_size)
            assert proof == ref_proof(old_size, ENTRIES[:size]), old_size
            assert consistent(old_size, size, proof), old_size

    def test_same_size_needs_no_proof(self) -> None:
        assert merkle.consistency_proof(LEAVES[:7], 7) == []

    def test_power_of_two_old_tree_leaves_its_root_out(self) -> None:
        # The verifier already holds the old root, so it is not repeated in the proof.
        proof = merkle.consistency_proof(LEAVES[:7], 4)
        assert ROOTS[4] not in proof
        assert proof == [merkle.root_hash(LEAVES[4:7])]

    def test_costs_linear_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = count_node_hashes(monkeypatch)
        merkle.consistency_proof([OTHER_HASH] * 1000, 700)
        assert calls() < 1000

    @pytest.mark.parametrize(("size", "old_size"), [(5, 0), (5, 6), (5, -1), (0, 0), (0, 1)])
    def test_refuses_an_old_size_outside_the_tree(self, size: int, old_size: int) -> None:
        with pytest.raises(ValueError, match="old size"):
            merkle.consistency_proof(LEAVES[:size], old_size)


class TestVerifyConsistency:
    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_a_flipped_bit_in_any_element(self, size: int) -> None:
        for old_size in range(1, size):
            proof = merkle.consistency_proof(LEAVES[:size], old_size)
            for position in range(len(proof)):
                for bit in (0, 7):
                    tampered = list(proof)
                    tampered[position] = flip_bit(proof[position], bit)
                    assert not consistent(old_size, size, tampered), (old_size, position)

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_wrong_sizes(self, size: int) -> None:
        # As with inclusion, only sizes that change the proof's shape are detectable without
        # the signed tree heads; these are the ones certificate-transparency verifiers test.
        for old_size in range(1, size):
            proof = merkle.consistency_proof(LEAVES[:size], old_size)
            for old, new in [
                (old_size - 1, size),
                (old_size + 1, size),
                (old_size ^ 2, size),
                (old_size, size * 2),
                (old_size, size // 2),
            ]:
                assert not merkle.verify_consistency(
                    old_size=old,
                    new_size=new,
                    old_root=ROOTS[old_size],
                    new_root=ROOTS[size],
                    proof=proof,
                ), (old_size, old, new)

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_missing_or_extra_elements(self, size: int) -> None:
        for old_size in range(1, size):
            proof = merkle.consistency_proof(LEAVES[:size], old_size)
            assert not consistent(old_size, size, [])
            assert not consistent(old_size, size, proof[:-1])
            assert not consistent(old_size, size, proof[1:])
            assert not consistent(old_size, size, [*proof, OTHER_HASH])
            assert not consistent(old_size, size, [*proof, ROOTS[size]])
            assert not consistent(old_size, size, [ROOTS[old_size], *proof])
            assert not consistent(old_size, size, [proof[0], *proof])

    @pytest.mark.parametrize("size", SIZES)
    def test_rejects_swapped_or_foreign_roots(self, size: int) -> None:
        for old_size in range(1, size):
            proof = merkle.consistency_proof(LEAVES[:size], old_size)
            for old_root, new_root in [
                (ROOTS[size], ROOTS[old_size]),
                (OTHER_HASH, ROOTS[size]),
                (ROOTS[old_size], OTHER_HASH),
            ]:
                assert not merkle.verify_consistency(
                    old_size=old_size,
                    new_size=size,
                    old_root=old_root,
                    new_root=new_root,
                    proof=proof,
                ), old_size

    def test_rejects_a_rewritten_history(self) -> None:
        # A log that replaced leaf 2 after publishing the 4-leaf head cannot prove consistency.
        rewritten = [*LEAVES[:2], OTHER_HASH, *LEAVES[3:9]]
        proof = merkle.consistency_proof(rewritten, 4)
        assert not merkle.verify_consistency(
            old_size=4,
            new_size=9,
            old_root=ROOTS[4],
            new_root=merkle.root_hash(rewritten),
            proof=proof,
        )

    def test_same_size_holds_only_for_the_same_root_and_no_proof(self) -> None:
        assert consistent(6, 6, [])
        assert not consistent(6, 6, [OTHER_HASH])
        assert not merkle.verify_consistency(
            old_size=6, new_size=6, old_root=ROOTS[6], new_root=ROOTS[5], proof=[]
        )

    @pytest.mark.parametrize(("old_size", "new_size"), [(0, 5), (0, 0), (6, 5), (-1, 5)])
    def test_rejects_an_old_size_outside_1_to_new_size(self, old_size: int, new_size: int) -> None:
        assert not merkle.verify_consistency(
            old_size=old_size,
            new_size=new_size,
            old_root=merkle.EMPTY_ROOT,
            new_root=ROOTS[5],
            proof=merkle.consistency_proof(LEAVES[:5], 1),
        )
        assert not merkle.verify_consistency(
            old_size=old_size, new_size=new_size, old_root=ROOTS[5], new_root=ROOTS[5], proof=[]
        )

    @pytest.mark.parametrize(
        "malformed",
        [
            {"old_root": ROOTS[3][:31]},
            {"old_root": b"x", "new_root": b"x", "new_size": 3, "proof": []},
            {"new_root": "00" * 32},
            {"proof": [b"\x00" * 31]},
            {"proof": [None]},
            {"proof": b""},
            {"old_size": None},
            {"new_size": "8"},
        ],
    )
    def test_returns_false_on_malformed_input(self, malformed: dict[str, object]) -> None:
        arguments: dict[str, object] = {
            "old_size": 3,
            "new_size": 8,
            "old_root": ROOTS[3],
            "new_root": ROOTS[8],
            "proof": merkle.consistency_proof(LEAVES[:8], 3),
        }
        assert merkle.verify_consistency(**arguments)  # type: ignore[arg-type]
        arguments.update(malformed)
        assert merkle.verify_consistency(**arguments) is False  # type: ignore[arg-type]


@st.composite
def trees_with_positions(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    entries = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=200))
    index = draw(st.integers(min_value=0, max_value=len(entries) - 1))
    old_size = draw(st.integers(min_value=1, max_value=len(entries)))
    return entries, index, old_size


class TestProperties:
    @given(trees_with_positions())
    def test_proofs_verify_and_agree_with_the_reference(
        self, case: tuple[list[bytes], int, int]
    ) -> None:
        entries, index, old_size = case
        leaves = [merkle.leaf_hash(entry) for entry in entries]
        size = len(leaves)
        root = merkle.root_hash(leaves)
        assert root == ref_mth(entries)

        path = merkle.inclusion_proof(leaves, index)
        assert path == ref_path(index, entries)
        assert merkle.verify_inclusion(
            leaf_hash=leaves[index], index=index, tree_size=size, proof=path, root=root
        )

        proof = merkle.consistency_proof(leaves, old_size)
        assert proof == ref_proof(old_size, entries)
        assert merkle.verify_consistency(
            old_size=old_size,
            new_size=size,
            old_root=merkle.root_hash(leaves[:old_size]),
            new_root=root,
            proof=proof,
        )
