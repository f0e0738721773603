"""Password hashing with Argon2id."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106 low-memory profile


@cache
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so that both answers take the same time;
    # made on first use, not at import: each Argon2 hash briefly takes 64 MiB.
    return _hasher.hash("not a password anyone has")


def hash_password(password: str) -> str:
    """An Argon2id hash with its own salt and parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; None (no such account) costs the same and fails."""
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
