"""The demo data that `make run` seeds on an empty database."""

import json
from datetime import timedelta
from decimal import Decimal

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import demo
from bidding.auth import service as auth_service
from bidding.auth.models import Role, User
from bidding.crypto import age
from bidding.db import utcnow
from bidding.keys import PlatformKeys
from bidding.settings import Settings
from bidding.tenders import service as tenders_service
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.models import Bid, Tender, TenderStatus


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


class TestDemoBidders:
    async def test_the_demo_bidders_hand_in_sealed_bids_before_the_deadline(
        self,
        app: FastAPI,
        session: AsyncSession,
        platform_keys: PlatformKeys,
        settings: Settings,
    ) -> None:
        await demo.seed(session=session, keys=platform_keys, settings=settings)
        tender = (await session.scalars(select(Tender))).one()
        tender.bid_deadline = utcnow() + timedelta(seconds=30)
        await session.flush()
        blobs = FilesystemBlobStore(settings.data_dir / "blobs")
        await demo.run_bidders(
            session_factory=app.state.session_factory,
            keys=platform_keys,
            blobs=blobs,
            settings=settings,
            leads=[29.9, 29.8, 29.7, 29.6],
        )
        bids = (await session.scalars(select(Bid).order_by(Bid.received_at))).all()
        assert len(bids) == 4
        identity = tenders_service.opening_identity(master=platform_keys.master, tender=tender)
        for bid in bids:
            with blobs.open(bid.sha256) as sealed:
                form = json.loads(age.unseal_bytes(sealed.read(), [identity]))
            assert Decimal("900000") <= Decimal(form["price"]) <= Decimal("1500000")
            assert 30 <= form["duration_days"] <= 365
        assert list(settings.data_dir.joinpath("staging").iterdir()) == []
