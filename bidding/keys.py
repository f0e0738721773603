"""The platform's own keys: the master key that wraps tender secrets, the receipt signing key."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.requests import HTTPConnection

from bidding.crypto.custody import MasterKey, resolve_master_key
from bidding.crypto.signing import SigningKey, load_or_create_signing_key
from bidding.settings import Settings


@dataclass(frozen=True)
class PlatformKeys:
    """Loaded once at start-up and kept in the app state."""

    master: MasterKey
    signing: SigningKey


def load_platform_keys(settings: Settings) -> PlatformKeys:
    """From the environment or from 0600 key files in the data dir, created on first start."""
    text = settings.master_key.get_secret_value() if settings.master_key else None
    if text is None and settings.environment == "production":
        # A key file next to the database would travel with every backup of it.
        raise RuntimeError("BIDDING_MASTER_KEY must be set in production")
    return PlatformKeys(
        master=resolve_master_key(text=text, path=settings.master_key_path),
        signing=load_or_create_signing_key(settings.signing_key_path),
    )


def get_platform_keys(connection: HTTPConnection) -> PlatformKeys:
    """Dependency: the keys loaded at start-up."""
    keys: PlatformKeys = connection.app.state.keys
    return keys


Keys = Annotated[PlatformKeys, Depends(get_platform_keys)]


router = APIRouter(tags=["keys"])


@router.get("/keys")
async def public_keys(keys: Keys) -> dict[str, Any]:
    """The platform's signing keys, to check receipts, tree heads and opening records."""
    return {"keys": [keys.signing.public_key.to_dict()]}
