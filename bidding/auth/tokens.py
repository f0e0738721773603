"""Opaque random tokens; only their SHA-256 is ever stored."""

import hashlib
import secrets


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe text that never begins with a dash.

    A token that began with "-" would be read as an option by a command line
    (`bidding submit --token -Q5…` fails), so such draws are thrown away; the
    token keeps its 256 random bits either way.
    """
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
