"""Ed25519 signatures over canonical JSON: receipts, tree heads and opening records.

A signing key file holds one line: the standard base64 of the 32-byte Ed25519 private key
(RFC 8032 secret), with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bidding.crypto.canonical import canonical_json
from bidding.crypto.custody import b64decode_strict, load_or_create_secret_text

ALGORITHM: Final = "Ed25519"
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def key_id(public_key_raw: bytes) -> str:
    """Return the id of a public key: the first 8 bytes of its SHA-256, in lowercase hex."""
    return hashlib.sha256(public_key_raw).digest()[:8].hex()


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key that checks the platform's signatures."""

    raw: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {KEY_SIZE} bytes, got {len(self.raw)}")
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        """Return the key with these 32 raw bytes."""
        return cls(bytes(raw))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> VerifyKey:
        """Parse the published form made by to_dict, checking its algorithm and key id."""
        if data.get("algorithm") != ALGORITHM:
            raise ValueError(f"unsupported key algorithm {data.get('algorithm')!r}")
        public_key = data.get("public_key")
        if not isinstance(public_key, str):
            raise ValueError("public_key must be a base64 string")
        key = cls(b64decode_strict(public_key))
        if data.get("key_id") != key.key_id:
            raise ValueError(f"key_id {data.get('key_id')!r} does not match the public key")
        return key

    @property
    def key_id(self) -> str:
        """Return the id naming this key in signed documents."""
        return key_id(self.raw)

    def to_dict(self) -> dict[str, str]:
        """Return the published form: key id, algorithm and base64 public key."""
        return {
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(self.raw).decode("ascii"),
        }

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether signature is this key's Ed25519 signature of message."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key; two keys are equal when their public keys are."""

    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    public_key: VerifyKey = field(init=False)

    def __post_init__(self) -> None:
        public = VerifyKey(self.private_key.public_key().public_bytes_raw())
        object.__setattr__(self, "public_key", public)

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a new random signing key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SigningKey:
        """Return the key with this 32-byte RFC 8032 secret."""
        if len(raw) != KEY_SIZE:
            raise ValueError(f"an Ed25519 private key is {KEY_SIZE} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(raw)))

    def private_bytes(self) -> bytes:
        """Return the 32-byte secret."""
        return self.private_key.private_bytes_raw()

    @property
    def key_id(self) -> str:
        """Return the id of the public key."""
        return self.public_key.key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of message."""
        return self.private_key.sign(message)

    def sign_document(self, body: object) -> dict[str, str]:
        """Sign the canonical JSON of body; return its key_id and base64 signature."""
        signature = self.sign(canonical_json(body))
        return {"key_id": self.key_id, "signature": base64.b64encode(signature).decode("ascii")}


def verify_document(
    body: object, *, key_id: str, signature: str, keys: Mapping[str, VerifyKey]
) -> bool:
    """Return whether signature signs canonical_json(body) under keys[key_id]; never raises."""
    # Everything here may come from a hostile peer, so any malformed part means "not valid".
    try:
        key = keys.get(key_id)
        if key is None or key.key_id != key_id:
            return False
        return key.verify(canonical_json(body), b64decode_strict(signature))
    except (TypeError, ValueError, RecursionError):
        return False


def load_or_create_signing_key(path: Path) -> SigningKey:
    """Load the signing key file, creating it with a new key (mode 0600) on first use."""
    text = load_or_create_secret_text(
        path,
        generate=lambda: base64.b64encode(SigningKey.generate().private_bytes()).decode("ascii"),
    )
    try:
        return SigningKey.from_private_bytes(b64decode_strict(text))
    except ValueError as exc:
        raise ValueError(f"signing key file {path}: {exc}") from None
