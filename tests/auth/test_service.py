"""The one place that creates accounts, and signing in as the command line sees it."""

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth import service as auth_service
from bidding.auth.models import LoginFailure, Organization, Role, User
from bidding.auth.passwords import needs_rehash, verify_password
from bidding.db import utcnow
from bidding.errors import Conflict, TooManyRequests, Unauthorized, Unprocessable
from bidding.settings import Settings
from tests.factories import PASSWORD, create_organization, create_user, credit_code


async def user_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(User)) or 0


async def organization_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Organization)) or 0


class TestCreateUser:
    async def test_an_officer_is_created_with_a_new_organization(
        self, session: AsyncSession
    ) -> None:
        code = credit_code()
        user = await auth_service.create_user(
            session=session,
            email="  Zhang.San@Example.COM ",
            password=PASSWORD,
            display_name="  Zhang   San ",
            role=Role.officer,
            organization_name="Xiamen Public Resources Trading Centre",
            organization_code=code.lower(),
        )
        assert user.email == "zhang.san@example.com"
        assert user.display_name == "Zhang San"
        assert user.organization is not None and user.organization.code == code
        assert verify_password(user.password_hash, PASSWORD)

    async def test_an_admin_needs_no_organization_but_an_officer_does(
        self, session: AsyncSession
    ) -> None:
        admin = await auth_service.create_user(
            session=session,
            email="root@example.com",
            password=PASSWORD,
            display_name="Root",
            role=Role.admin,
        )
        assert admin.organization_id is None
        with pytest.raises(Unprocessable) as refused:
            await auth_service.create_user(
                session=session,
                email="officer@example.com",
                password=PASSWORD,
                display_name="Officer",
                role=Role.officer,
            )
        assert refused.value.extra["errors"][0]["field"] == "organization"

    async def test_a_trusted_caller_adds_a_colleague_to_an_organization(
        self, session: AsyncSession
    ) -> None:
        organization = await create_organization(session, name="Buyer Bureau")
        organizations = await organization_count(session)
        colleague = await auth_service.create_user(
            session=session,
            email="colleague@example.com",
            password=PASSWORD,
            display_name="Colleague",
            role=Role.officer,
            organization_code=organization.code,
        )
        assert colleague.organization_id == organization.id
        assert await organization_count(session) == organizations

    async def test_a_code_under_another_name_is_a_conflict(self, session: AsyncSession) -> None:
        organization = await create_organization(session, name="Buyer Bureau")
        with pytest.raises(Conflict) as refused:
            await auth_service.create_user(
                session=session,
                email="someone@example.com",
                password=PASSWORD,
                display_name="Someone",
                role=Role.bidder,
                organization_name="Somebody Else Ltd",
                organization_code=organization.code,
            )
        assert refused.value.type == "organization_mismatch"

    async def test_a_duplicate_email_leaves_the_transaction_usable(
        self, session: AsyncSession
    ) -> None:
        existing = await create_user(session, role=Role.admin, email="taken@example.com")
        before = await user_count(session)
        code = credit_code()
        with pytest.raises(Conflict) as refused:
            await auth_service.create_user(
                session=session,
                email="TAKEN@example.com",
                password=PASSWORD,
                display_name="Second",
                role=Role.bidder,
                organization_name="New Co",
                organization_code=code,
            )
        assert refused.value.type == "email_taken"
        # The savepoint undid only the failed account: no orphan organization, earlier work kept.
        assert await user_count(session) == before
        assert await session.get(User, existing.id) is not None
        assert await auth_service.get_organization_by_code(session=session, code=code) is None

    @pytest.mark.parametrize(
        ("field", "changes"),
        [
            ("email", {"email": "not an email"}),
            ("email", {"email": "someone@bidding.test"}),  # reserved names are no addresses
            ("password", {"password": "0000000000"}),
            ("display_name", {"display_name": "   "}),
            ("organization.code", {"organization_code": "91350100M000100Y44"}),
        ],
    )
    async def test_bad_input_names_its_field(
        self, session: AsyncSession, field: str, changes: dict[str, str]
    ) -> None:
        arguments: dict[str, Any] = {
            "email": "fine@example.com",
            "password": PASSWORD,
            "display_name": "Fine",
            "organization_name": "Fine Co",
            "organization_code": credit_code(),
            **changes,
        }
        with pytest.raises(Unprocessable) as refused:
            await auth_service.create_user(session=session, role=Role.bidder, **arguments)
        assert refused.value.extra["errors"][0]["field"] == field


class TestAuthenticate:
    async def test_a_weak_hash_is_upgraded_at_sign_in(
        self, session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(session)
        user.password_hash = PasswordHasher(time_cost=1, memory_cost=1024).hash(PASSWORD)
        await session.flush()
        assert needs_rehash(user.password_hash)

        signed_in = await auth_service.authenticate(
            session=session, email=user.email, password=PASSWORD, client="cli", settings=settings
        )
        assert signed_in.id == user.id
        assert not needs_rehash(signed_in.password_hash)
        assert verify_password(signed_in.password_hash, PASSWORD)

    async def test_a_failure_is_recorded_for_the_throttle(
        self, session: AsyncSession, settings: Settings
    ) -> None:
        with pytest.raises(Unauthorized):
            await auth_service.authenticate(
                session=session,
                email=" Ghost@Example.com",
                password="whatever it is",
                client="198.51.100.7",
                settings=settings,
            )
        failures = (
            await session.scalars(select(LoginFailure).where(LoginFailure.client == "198.51.100.7"))
        ).all()
        assert [f.email for f in failures] == ["ghost@example.com"]

    async def test_failures_past_the_window_are_pruned(
        self, session: AsyncSession, settings: Settings
    ) -> None:
        long_ago = utcnow() - timedelta(seconds=settings.login_window_seconds + 1)
        session.add(LoginFailure(email="old@example.com", client="198.51.100.9", at=long_ago))
        await session.flush()
        with pytest.raises(Unauthorized):
            await auth_service.authenticate(
                session=session,
                email="new@example.com",
                password="whatever it is",
                client="198.51.100.10",
                settings=settings,
            )
        # Looked up by content: SQLite hands a deleted row's id to the next row.
        left = await session.scalars(select(LoginFailure.email).where(LoginFailure.at == long_ago))
        assert left.all() == []

    async def test_the_throttle_says_how_long_to_wait(
        self, session: AsyncSession, settings: Settings
    ) -> None:
        session.add_all(
            LoginFailure(email="x@example.com", client="198.51.100.8")
            for _ in range(settings.login_max_failures)
        )
        await session.flush()
        with pytest.raises(TooManyRequests) as refused:
            await auth_service.authenticate(
                session=session,
                email="x@example.com",
                password=PASSWORD,
                client="198.51.100.8",
                settings=settings,
            )
        assert 0 < refused.value.extra["retry_after"] <= settings.login_window_seconds
