"""The demo data that `make run` seeds on an empty database, and its opening."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding import demo
from bidding.auth import service as auth_service
from bidding.auth.models import Role, User
from bidding.crypto import age
from bidding.db import create_session_factory, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import lease
from bidding.opening import secrets as opening_secrets
from bidding.opening.scheduler import OpeningScheduler
from bidding.settings import Settings
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.models import Bid, OpeningMode, Tender, TenderStatus


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

        platform, bidder_mode = (
            await session.scalars(select(Tender).order_by(Tender.bid_deadline))
        ).all()
        for tender in (platform, bidder_mode):
            assert tender.status is TenderStatus.published
            assert tender.public_opening
            age.Recipient.parse(tender.opening_recipient or "")
        minutes = (platform.bid_deadline - utcnow()).total_seconds() / 60
        assert 3 < minutes <= 6
        assert (platform.opening_mode, bidder_mode.opening_mode) == (
            OpeningMode.platform,
            OpeningMode.bidder,
        )
        assert bidder_mode.backup_decryption

    async def test_a_database_with_users_is_left_alone(
        self, session: AsyncSession, platform_keys: PlatformKeys, settings: Settings
    ) -> None:
        assert await demo.seed(session=session, keys=platform_keys, settings=settings)
        users = await session.scalar(select(func.count()).select_from(User))
        assert await demo.seed(session=session, keys=platform_keys, settings=settings) == []
        assert await session.scalar(select(func.count()).select_from(User)) == users
        assert await session.scalar(select(func.count()).select_from(Tender)) == 2


class TestDemoBidders:
    async def test_the_demo_bidders_hand_in_sealed_bids_before_the_deadlines(
        self,
        app: FastAPI,
        session: AsyncSession,
        platform_keys: PlatformKeys,
        settings: Settings,
    ) -> None:
        await demo.seed(session=session, keys=platform_keys, settings=settings)
        tenders = (await session.scalars(select(Tender).order_by(Tender.bid_deadline))).all()
        for tender in tenders:
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
        bidders = {
            user.organization_id: user
            for user in await session.scalars(select(User).where(User.role == Role.bidder))
        }
        for tender in tenders:
            bids = (await session.scalars(select(Bid).where(Bid.tender_id == tender.id))).all()
            assert len(bids) == 4
            identity = opening_secrets.opening_identity(master=platform_keys.master, tender=tender)
            floor, ceiling = Decimal(tender.floor_price or "0"), Decimal(tender.ceiling_price)
            for bid in bids:
                with blobs.open(bid.sha256) as stored:
                    sealed = stored.read()
                form = json.loads(age.unseal_bytes(sealed, [identity]))
                assert floor <= Decimal(form["price"]) <= ceiling
                assert 30 <= form["duration_days"] <= 365
                if tender.opening_mode is OpeningMode.bidder:
                    # Sealed to the organization's own key too, kept for `bidding reveal`.
                    path = demo.demo_identity_path(settings, bidders[bid.bidder_id])
                    assert path.stat().st_mode & 0o077 == 0
                    own = age.parse_identities(path.read_text())
                    assert json.loads(age.unseal_bytes(sealed, own)) == form
        assert list(settings.data_dir.joinpath("staging").iterdir()) == []


class TestDemoOpening:
    async def test_the_demo_tender_opens_by_itself_and_its_record_is_there_to_read(
        self, committing_app: FastAPI, engine: AsyncEngine, platform_keys: PlatformKeys,
        settings: Settings,
    ) -> None:  # fmt: skip
        factory = create_session_factory(engine)
        async with factory() as session:
            await demo.seed(session=session, keys=platform_keys, settings=settings)
            tenders = (await session.scalars(select(Tender))).all()
            for each in tenders:
                each.bid_deadline = utcnow() + timedelta(seconds=3)
            tender = next(each for each in tenders if each.opening_mode is OpeningMode.platform)
            await session.commit()
        blobs = committing_app.state.blobs
        await demo.run_bidders(
            session_factory=factory,
            keys=platform_keys,
            blobs=blobs,
            settings=settings,
            leads=[2.9, 2.8, 2.7, 2.6],
        )
        openings = OpeningScheduler(
            lease.Context(
                session_factory=factory, keys=platform_keys, blobs=blobs, instance="demo-test"
            ),
            sync_every=timedelta(seconds=30),
        )
        await openings.start()
        try:
            for _ in range(300):
                async with factory() as session:
                    status = await session.scalar(
                        select(Tender.status).where(Tender.id == tender.id)
                    )
                if status is TenderStatus.opened:
                    break
                await asyncio.sleep(0.05)
        finally:
            await openings.stop()
        assert status is TenderStatus.opened

        transport = httpx.ASGITransport(app=committing_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            # The demo opening is public: anyone may read the record, signed in or not.
            answer = await client.get(f"/api/v1/tenders/{tender.id}/opening/record")
        assert answer.status_code == 200, answer.text
        record = answer.json()["record"]
        assert [bid["status"] for bid in record["bids"]] == ["decrypted"] * 4
        assert record["scores"]["method"] == "benchmark"
        assert [place["rank"] for place in record["scores"]["ranking"]] == [1, 2, 3, 4]
