"""The database engine keeps statement parameters out of its error messages, on both backends.

A failing statement's message goes to logs (the service's, an operator's terminal under
`bidding users create`); its parameters would carry password and token hashes there.
"""

import traceback
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import AccessToken, User
from bidding.auth.tokens import hash_token, new_token
from bidding.db import utcnow
from tests.factories import create_user


def logged(exc: BaseException) -> str:
    """The error as a log shows it: the message and the whole traceback."""
    return "".join(traceback.format_exception(exc))


async def test_a_duplicate_token_hash_is_not_in_the_error_text(session: AsyncSession) -> None:
    user = await create_user(session)
    token_hash = hash_token(new_token())
    expires_at = utcnow() + timedelta(hours=1)
    session.add(AccessToken(token_hash=token_hash, user_id=user.id, expires_at=expires_at))
    await session.flush()
    session.add(AccessToken(token_hash=token_hash, user_id=user.id, expires_at=expires_at))
    with pytest.raises(IntegrityError) as raised:
        await session.flush()
    text = logged(raised.value)
    assert "access_tokens" in text  # the error still says what failed
    assert token_hash not in text
    assert str(user.id) not in text and user.id.hex not in text


async def test_a_duplicate_email_shows_no_password_hash(session: AsyncSession) -> None:
    first = await create_user(session)
    twin = User(
        email=first.email,
        display_name="Twin",
        password_hash=first.password_hash,
        role=first.role,
        organization_id=first.organization_id,
    )
    session.add(twin)
    with pytest.raises(IntegrityError) as raised:
        await session.flush()
    text = logged(raised.value)
    assert "users" in text
    assert first.password_hash not in text
    assert first.email not in text


async def test_a_missing_value_shows_no_other_value_of_the_row(session: AsyncSession) -> None:
    first = await create_user(session)
    nameless = User(
        email=f"other-{first.email}",
        display_name=None,
        password_hash=first.password_hash,
        role=first.role,
        organization_id=first.organization_id,
    )
    session.add(nameless)
    with pytest.raises(IntegrityError) as raised:
        await session.flush()
    text = logged(raised.value)
    assert "display_name" in text
    assert first.password_hash not in text
    assert nameless.email not in text
