"""A bidder organization's own age recipient (online decryption) and the check that it holds
the identity: a random value sealed to the recipient, answered with its plaintext."""

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth.exceptions import InvalidRecipient, KeyUnusable, NoChallenge, NoKey, WrongAnswer
from bidding.auth.models import BidderKey, User
from bidding.auth.tokens import hash_token
from bidding.crypto import age
from bidding.db import utcnow
from bidding.errors import EditedConcurrently, Forbidden

CHALLENGE_TTL = timedelta(minutes=10)
_CHALLENGE_PREFIX = "bidding key check "


def _organization_of(bidder: User) -> uuid.UUID:
    if bidder.organization_id is None:
        raise Forbidden("a bidder account must belong to an organization to hold its keys")
    return bidder.organization_id


async def keys_of(*, session: AsyncSession, bidder: User) -> list[BidderKey]:
    """The organization's keys, the current one first, then the retired ones, newest first."""
    rows = await session.scalars(
        select(BidderKey)
        .where(BidderKey.organization_id == _organization_of(bidder))
        .order_by(BidderKey.retired_at.is_not(None), BidderKey.registered_at.desc())
    )
    return list(rows)


async def current_key(*, session: AsyncSession, bidder: User) -> BidderKey | None:
    """The organization's key in use, if it registered one."""
    key: BidderKey | None = await session.scalar(
        select(BidderKey).where(
            BidderKey.organization_id == _organization_of(bidder), BidderKey.retired_at.is_(None)
        )
    )
    return key


async def register(*, session: AsyncSession, bidder: User, recipient: str) -> BidderKey:
    """Make a recipient the organization's key; the one before is retired, not forgotten."""
    try:
        parsed = age.Recipient.parse(recipient.strip())
    except age.KeyFormatError as exc:
        raise InvalidRecipient(f"recipient: {exc}", field="recipient") from None
    text = str(parsed)
    current = await current_key(session=session, bidder=bidder)
    if current is not None and current.recipient == text:
        return current
    now = utcnow()
    if current is not None:
        current.retired_at = now
    key = BidderKey(
        organization_id=_organization_of(bidder),
        recipient=text,
        registered_by_id=bidder.id,
        registered_at=now,
    )
    session.add(key)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # Another registration for the organization won the race (one current key each).
        raise EditedConcurrently(
            "the organization's key was changed by another request meanwhile; reload it",
        ) from None
    await audit.record(
        session=session,
        action="bidder_key.registered",
        details={
            "key_id": str(key.id),
            "recipient": text,
            "retired_key_id": None if current is None else str(current.id),
        },
        actor=bidder.actor,
    )
    return key


async def _key_to_check(*, session: AsyncSession, bidder: User) -> BidderKey:
    key = await current_key(session=session, bidder=bidder)
    if key is None:
        raise NoKey("register your organization's recipient first")
    return key


async def challenge(*, session: AsyncSession, bidder: User) -> tuple[str, datetime]:
    """A new random value sealed to the current key (base64 of the age file), and its expiry."""
    key = await _key_to_check(session=session, bidder=bidder)
    value = _CHALLENGE_PREFIX + secrets.token_urlsafe(32)
    try:
        recipient = age.Recipient.parse(key.recipient)
    except age.KeyFormatError:
        # Registered before such keys were refused (a low-order point): nothing opens for it.
        raise KeyUnusable(
            "the registered key cannot be sealed to; register a new one (bidding keygen)",
        ) from None
    sealed = age.seal_bytes(value.encode("utf-8"), [recipient])
    key.challenge_sha256 = hash_token(value)
    key.challenge_expires_at = utcnow() + CHALLENGE_TTL
    await session.flush()
    return base64.b64encode(sealed).decode("ascii"), key.challenge_expires_at


async def answer(*, session: AsyncSession, bidder: User, plaintext: str) -> BidderKey:
    """Mark the current key verified if the plaintext is the challenge's; 422 otherwise."""
    key = await _key_to_check(session=session, bidder=bidder)
    expires = key.challenge_expires_at
    if key.challenge_sha256 is None or expires is None or expires <= utcnow():
        raise NoChallenge("ask for a new challenge first")
    if not secrets.compare_digest(hash_token(plaintext), key.challenge_sha256):
        raise WrongAnswer(
            "that is not the sealed value: the identity used does not match the registered "
            "recipient",
        )
    key.verified_at = utcnow()
    key.challenge_sha256 = None
    key.challenge_expires_at = None
    await audit.record(
        session=session,
        action="bidder_key.verified",
        details={"key_id": str(key.id), "recipient": key.recipient},
        actor=bidder.actor,
    )
    return key
