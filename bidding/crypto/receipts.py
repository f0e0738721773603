"""Signed receipts: {"body", "leaf_hash", "key_id", "signature"} over a canonical JSON body.

The body is a log leaf: its RFC 6962 leaf hash places it in the tender's Merkle log, and the
Ed25519 signature over its canonical JSON lets anyone check it with the platform's public key.
A bid's body also pins the bid's age header by its digest (`header_sha256`); receipts made
before it did lack the field and are still genuine receipts.
"""

import hashlib
from collections.abc import Mapping
from typing import Any

from bidding.crypto.canonical import canonical_json
from bidding.crypto.merkle import leaf_hash
from bidding.crypto.signing import SigningKey, VerifyKey, verify_document


def header_sha256(header: bytes | bytearray) -> str:
    """The digest a bid's receipt names its age header by: SHA-256 of the header's bytes as
    they start the file, from the version line through the MAC line's newline, in hex."""
    return hashlib.sha256(header).hexdigest()


def make_receipt(body: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The signed receipt of a body."""
    signed = key.sign_document(body)
    return {
        "body": dict(body),
        "leaf_hash": leaf_hash(canonical_json(body)).hex(),
        "key_id": signed["key_id"],
        "signature": signed["signature"],
    }


def receipt_problems(receipt: object, keys: Mapping[str, VerifyKey]) -> list[str]:
    """What is wrong with a receipt, in words; empty when it is genuine. Never raises."""
    if not isinstance(receipt, Mapping):
        return ["a receipt is a JSON object"]
    body, leaf, key_id, signature = (
        receipt.get(name) for name in ("body", "leaf_hash", "key_id", "signature")
    )
    if not isinstance(body, Mapping):
        return ["the receipt has no body object"]
    if not (isinstance(key_id, str) and isinstance(signature, str)):
        return ["the receipt has no key_id and signature"]
    problems = []
    if key_id not in keys:
        problems.append(f"key {key_id!r} is not one of the platform's published keys")
    elif not verify_document(body, key_id=key_id, signature=signature, keys=keys):
        problems.append("the signature does not match the body: the receipt was altered")
    try:
        expected_leaf = leaf_hash(canonical_json(body)).hex()
    except (TypeError, ValueError, RecursionError):
        return [*problems, "the body is not canonical JSON (floats or invalid text)"]
    if leaf != expected_leaf:
        problems.append("leaf_hash is not the RFC 6962 leaf hash of the body")
    return problems
