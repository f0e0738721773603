"""The demo data that `make run` seeds on an empty database."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import demo
from bidding.auth import service as auth_service
from bidding.auth.models import Role, User
from bidding.crypto import age
from bidding.db import utcnow
from bidding.keys import PlatformKeys
from bidding.settings import Settings
from bidding.tenders.models import Tender, TenderStatus


class TestSeed:
    async def test_an_empty_database_gets_labelled_accounts_and_a_published_tender(
        self, session: AsyncSession, platform_keys: PlatformKeys, settings: Settings
    ) -> None:
        accounts = await demo.seed(session=session, keys=platform_keys, settings=settings)
        roles = sorted(a.role.value for a in accounts)
        assert roles == ["bidder"] * 4 + ["officer", "supervisor"]
        assert all(a.email.endswith("@demo.example.com") for a in accounts)
        assert len({a.password for a in accounts}) == 6
        officer = next(a for a in accounts if a.role is Role.officer)
        signed_in = await auth_service.authenticate(
            session=session,
            email=officer.email,
            password=officer.password,
            client="127.0.0.1",
            settings=settings,
        )
        assert signed_in.role is Role.officer

        tender = (await session.scalars(select(Tender))).one()
        assert tender.status is TenderStatus.published
        assert tender.public_opening
        age.Recipient.parse(tender.opening_recipient or "")
        minutes = (tender.bid_deadline - utcnow()).total_seconds() / 60
        assert 3 < minutes <= 6

    async def test_a_database_with_users_is_left_alone(
        self, session: AsyncSession, platform_keys: PlatformKeys, settings: Settings
    ) -> None:
        assert await demo.seed(session=session, keys=platform_keys, settings=settings)
        users = await session.scalar(select(func.count()).select_from(User))
        assert await demo.seed(session=session, keys=platform_keys, settings=settings) == []
        assert await session.scalar(select(func.count()).select_from(User)) == users
        assert await session.scalar(select(func.count()).select_from(Tender)) == 1
