"""Custody of platform secrets: the master key, its key files, and secrets wrapped under it.

A wrapped secret is the bytes

    offset  size   field
    0       1      version, 0x01
    1       8      master key id: the first 8 bytes of SHA-256 of the master key
    9       12     random nonce
    21      n+16   AES-256-GCM ciphertext of the n-byte secret, then the 16-byte tag

with the associated data canonical_json({"purpose": ..., "tender_id": ..., "v": 1}), so a
record only unwraps under the master key, tender and purpose (such as "opening-identity" or
"coefficient-seed") it was wrapped for. Key files hold one line of standard base64 and must
not be accessible to group or others (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bidding.crypto.canonical import canonical_json

VERSION: Final = 0x01
MASTER_KEY_SIZE: Final = 32
_KEY_ID_SIZE: Final = 8
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_HEADER_SIZE: Final = 1 + _KEY_ID_SIZE + _NONCE_SIZE
_MAX_KEY_FILE_BYTES: Final = 1024


class CustodyError(Exception):
    """A wrapped secret that cannot be unwrapped with the given key, tender and purpose."""


def b64decode_strict(text: str) -> bytes:
    """Decode standard padded base64, refusing every other spelling of the same bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("not valid standard base64") from None
    # Refusing non-zero padding bits keeps one text per value, so encodings are not malleable.
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical standard base64")
    return raw


@dataclass(frozen=True, repr=False)
class MasterKey:
    """The 32-byte platform key under which all per-tender secrets are wrapped."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.raw) != MASTER_KEY_SIZE:
            raise ValueError(
                f"a master key is {MASTER_KEY_SIZE} bytes, got {len(self.raw)} "
                "(generate one with `openssl rand -base64 32`)"
            )

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> MasterKey:
        """Return a new random master key."""
        return cls(secrets.token_bytes(MASTER_KEY_SIZE))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse the base64 text form of a master key (surrounding whitespace ignored)."""
        try:
            raw = b64decode_strict(text.strip())
        except ValueError as exc:
            # The text itself is never echoed: it may be a mistyped secret.
            raise ValueError(
                f"the master key must be standard base64 of {MASTER_KEY_SIZE} bytes ({exc}); "
                "generate one with `openssl rand -base64 32`"
            ) from None
        return cls(raw)

    def to_text(self) -> str:
        """Return the base64 text form of the key."""
        return base64.b64encode(self.raw).decode("ascii")

    @property
    def key_id(self) -> str:
        """Return the hex id naming this key in wrapped records (not secret)."""
        return hashlib.sha256(self.raw).digest()[:_KEY_ID_SIZE].hex()


def load_or_create_master_key(path: Path) -> MasterKey:
    """Load the master key file, creating it with a new key (mode 0600) on first use."""
    text = load_or_create_secret_text(path, generate=lambda: MasterKey.generate().to_text())
    try:
        return MasterKey.from_text(text)
    except ValueError as exc:
        raise ValueError(f"master key file {path}: {exc}") from None


def resolve_master_key(*, text: str | None, path: Path) -> MasterKey:
    """Return the master key from settings text when given, else from the key file."""
    # An empty setting is an error, not "unset": silently creating a new key would orphan
    # every secret wrapped under the intended one.
    if text is not None:
        return MasterKey.from_text(text)
    return load_or_create_master_key(path)


def wrap(master: MasterKey, secret: bytes, *, tender_id: str, purpose: str) -> bytes:
    """Encrypt a secret under the master key, bound to one tender and purpose."""
    nonce = secrets.token_bytes(_NONCE_SIZE)
    header = bytes([VERSION]) + bytes.fromhex(master.key_id) + nonce
    sealed = AESGCM(master.raw).encrypt(nonce, secret, _associated_data(tender_id, purpose))
    return header + sealed


def unwrap(master: MasterKey, wrapped: bytes, *, tender_id: str, purpose: str) -> bytes:
    """Decrypt a secret wrapped for this tender and purpose, or raise CustodyError."""
    wrapped = bytes(wrapped)
    if len(wrapped) < _HEADER_SIZE + _TAG_SIZE:
        raise CustodyError(
            f"wrapped secret is truncated: {len(wrapped)} bytes, "
            f"at least {_HEADER_SIZE + _TAG_SIZE} expected"
        )
    if wrapped[0] != VERSION:
        raise CustodyError(f"unknown wrapped secret version 0x{wrapped[0]:02x}")
    key_id = wrapped[1 : 1 + _KEY_ID_SIZE].hex()
    if key_id != master.key_id:
        raise CustodyError(
            f"secret was wrapped under a different master key (key id {key_id}, "
            f"this master key is {master.key_id})"
        )
    nonce = wrapped[1 + _KEY_ID_SIZE : _HEADER_SIZE]
    try:
        return AESGCM(master.raw).decrypt(
            nonce, wrapped[_HEADER_SIZE:], _associated_data(tender_id, purpose)
        )
    except InvalidTag:
        # GCM cannot tell a corrupted record from one presented for the wrong tender/purpose.
        raise CustodyError(
            "authentication failed: the wrapped secret is corrupted or does not belong to "
            f"this tender/purpose (tender {tender_id!r}, purpose {purpose!r})"
        ) from None


def _associated_data(tender_id: str, purpose: str) -> bytes:
    return canonical_json({"purpose": purpose, "tender_id": tender_id, "v": VERSION})


def load_or_create_secret_text(path: Path, *, generate: Callable[[], str]) -> str:
    """Return the text of a 0600 secret file, first writing generate() there if it is absent."""
    try:
        return _read_secret_text(path)
    except FileNotFoundError:
        pass
    _create_secret_file(path, generate())
    return _read_secret_text(path)


def _read_secret_text(path: Path) -> str:
    with open(path, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & 0o077:
            raise ValueError(
                f"secret key file {path} has mode {stat.S_IMODE(mode):04o}, which lets group "
                f"or others access it; run `chmod 600 {path}` if it has not leaked"
            )
        data = file.read(_MAX_KEY_FILE_BYTES + 1)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ValueError(f"secret key file {path} is too large to be a key file")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"secret key file {path} does not hold base64 text") from None


def _create_secret_file(path: Path, text: str) -> None:
    # Written in full under a temporary name, then hard-linked into place: the link fails if
    # another process got there first, and no reader ever sees a half-written key.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(text.encode("ascii") + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
    finally:
        temporary.unlink(missing_ok=True)
    # Without this a crash could lose the new key after secrets wrapped under it were stored.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
