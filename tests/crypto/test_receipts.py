"""Receipts: made and checked with the platform key; any alteration is named."""

import copy

from bidding.crypto.receipts import make_receipt, receipt_problems
from bidding.crypto.signing import SigningKey

BODY = {
    "kind": "bid",
    "tender_id": "6c1d8a2e-0000-4000-8000-000000000001",
    "bidder_id": "6c1d8a2e-0000-4000-8000-000000000002",
    "bid_id": "6c1d8a2e-0000-4000-8000-000000000003",
    "version": 1,
    "sha256": "ab" * 32,
    "size": 1234,
    "received_at": "2026-11-27T08:00:03.120Z",
}


class TestReceipts:
    def test_a_genuine_receipt_has_no_problems(self) -> None:
        key = SigningKey.generate()
        receipt = make_receipt(BODY, key)
        assert receipt_problems(receipt, {key.key_id: key.public_key}) == []

    def test_a_changed_field_is_caught_by_signature_and_leaf_hash(self) -> None:
        key = SigningKey.generate()
        receipt = make_receipt(BODY, key)
        for field, value in [("tender_id", "other"), ("bidder_id", "other"), ("size", 1)]:
            altered = copy.deepcopy(receipt)
            altered["body"][field] = value
            problems = receipt_problems(altered, {key.key_id: key.public_key})
            assert any("signature" in p for p in problems), field
            assert any("leaf_hash" in p for p in problems), field

    def test_another_key_or_an_unknown_key_id_fails(self) -> None:
        key, other = SigningKey.generate(), SigningKey.generate()
        receipt = make_receipt(BODY, key)
        assert receipt_problems(receipt, {other.key_id: other.public_key}) != []
        forged = {**receipt, "key_id": other.key_id}
        assert any(
            "signature" in p for p in receipt_problems(forged, {other.key_id: other.public_key})
        )

    def test_garbage_is_described_not_raised(self) -> None:
        keys = {SigningKey.generate().key_id: SigningKey.generate().public_key}
        assert receipt_problems([], keys) == ["a receipt is a JSON object"]
        assert receipt_problems({"body": 3}, keys) == ["the receipt has no body object"]
        floats = {"body": {"price": 1.5}, "key_id": "x", "signature": "y", "leaf_hash": "z"}
        assert receipt_problems(floats, keys) != []
