"""Plain factory functions for tests: organizations, users and their tokens, written directly."""

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import AccessToken, Organization, Role, User
from bidding.auth.passwords import hash_password
from bidding.auth.tokens import hash_token, new_token
from bidding.auth.uscc import ALPHABET, check_character
from bidding.db import utcnow

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)  # once: Argon2 is slow on purpose


def credit_code() -> str:
    """A random, valid unified social credit code."""
    first17 = "91" + "".join(secrets.choice(ALPHABET) for _ in range(15))
    return first17 + check_character(first17)


async def create_organization(session: AsyncSession, *, name: str = "Test Org") -> Organization:
    organization = Organization(name=name, code=credit_code())
    session.add(organization)
    await session.flush()
    return organization


async def create_user(
    session: AsyncSession,
    *,
    role: Role = Role.bidder,
    email: str | None = None,
    organization: Organization | None = None,
    display_name: str = "Test User",
) -> User:
    """A user whose password is PASSWORD; bidders, officers and supervisors get an organization."""
    if organization is None and role is not Role.admin:
        organization = await create_organization(session, name=f"{role.value} org")
    user = User(
        email=email or f"{role.value}-{secrets.token_hex(4)}@example.com",
        display_name=display_name,
        password_hash=_PASSWORD_HASH,
        role=role,
        organization_id=organization.id if organization else None,
    )
    session.add(user)
    await session.flush()
    await session.refresh(user)
    return user


async def bearer(session: AsyncSession, user: User) -> dict[str, str]:
    """Authorization headers for a fresh token of the user."""
    token = new_token()
    session.add(
        AccessToken(
            token_hash=hash_token(token), user_id=user.id, expires_at=utcnow() + timedelta(hours=1)
        )
    )
    await session.flush()
    return {"Authorization": f"Bearer {token}"}
