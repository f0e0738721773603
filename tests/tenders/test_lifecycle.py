"""Publication (the opening key and the coefficient commitment), cancellation, and races."""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.auth.models import Role
from bidding.crypto import age, custody
from bidding.db import create_session_factory, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import secrets as opening_secrets
from bidding.settings import Settings
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import bearer, create_user
from tests.tenders.conftest import TENDERS, Cast, create_tender, reload


class TestPublish:
    async def test_publishing_makes_the_opening_key_and_commits_to_the_seed(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        platform_keys: PlatformKeys,
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        response = await client.post(
            f"{TENDERS}/{tender.id}/publish", headers=cast["author"].headers
        )
        assert response.status_code == 200, response.text
        published = response.json()
        assert published["status"] == "published"
        assert published["published_at"] is not None
        recipient = age.Recipient.parse(published["opening_recipient"])
        assert published["opening_recipient"].startswith("age1")

        stored = await reload(session, tender)
        assert stored.opening_identity_wrapped is not None
        assert stored.coefficient_seed_wrapped is not None
        seed = custody.unwrap(
            platform_keys.master,
            stored.coefficient_seed_wrapped,
            tender_id=str(tender.id),
            purpose="coefficient-seed",
        )
        assert len(seed) == 32
        assert published["coefficient_commitment"] == hashlib.sha256(seed).hexdigest()
        raw_identity = custody.unwrap(
            platform_keys.master,
            stored.opening_identity_wrapped,
            tender_id=str(tender.id),
            purpose="opening-identity",
        )
        identity = age.Identity(raw_identity)
        assert identity.recipient == recipient
        assert opening_secrets.opening_identity(master=platform_keys.master, tender=stored) == (
            identity
        )
        assert opening_secrets.coefficient_seed(master=platform_keys.master, tender=stored) == seed

        # What bidders seal to the published recipient, the platform can open at the deadline.
        sealed = age.seal_bytes(b'{"price": "1000000.00"}', [recipient])
        assert age.unseal_bytes(sealed, [identity]) == b'{"price": "1000000.00"}'

    async def test_no_secret_appears_in_any_answer(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        platform_keys: PlatformKeys,
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        published = await client.post(
            f"{TENDERS}/{tender.id}/publish", headers=cast["author"].headers
        )
        stored = await reload(session, tender)
        identity = opening_secrets.opening_identity(master=platform_keys.master, tender=stored)
        seed = opening_secrets.coefficient_seed(master=platform_keys.master, tender=stored)
        answers = [
            published.text,
            (await client.get(f"{TENDERS}/{tender.id}", headers=cast["author"].headers)).text,
            (await client.get(TENDERS, headers=cast["author"].headers)).text,
        ]
        for text in answers:
            assert "wrapped" not in text
            assert str(identity) not in text and "AGE-SECRET-KEY" not in text
            assert seed.hex() not in text

    async def test_each_tender_gets_its_own_keys(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        recipients = set()
        commitments = set()
        for _ in range(2):
            tender = await create_tender(session, officer=cast.author)
            response = await client.post(
                f"{TENDERS}/{tender.id}/publish", headers=cast["author"].headers
            )
            recipients.add(response.json()["opening_recipient"])
            commitments.add(response.json()["coefficient_commitment"])
        assert len(recipients) == 2 and len(commitments) == 2

    async def test_a_deadline_inside_the_minimum_bidding_period_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        # The default minimum is one minute.
        tender = await create_tender(
            session, officer=cast.author, bid_deadline=utcnow() + timedelta(seconds=30)
        )
        response = await client.post(
            f"{TENDERS}/{tender.id}/publish", headers=cast["author"].headers
        )
        assert response.status_code == 422
        assert response.json()["type"] == "bidding_period_too_short"
        assert "bid_deadline" in response.json()["detail"]
        stored = await reload(session, tender)
        assert stored.status is TenderStatus.draft
        assert stored.opening_recipient is None and stored.opening_identity_wrapped is None

    async def test_the_minimum_bidding_period_comes_from_the_settings(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        settings: Settings,
    ) -> None:
        app.state.settings = settings.model_copy(update={"min_bidding_period_seconds": 3 * 86400})
        soon = await create_tender(
            session, officer=cast.author, bid_deadline=utcnow() + timedelta(days=2)
        )
        later = await create_tender(
            session, officer=cast.author, bid_deadline=utcnow() + timedelta(days=4)
        )
        headers = cast["author"].headers
        refused = await client.post(f"{TENDERS}/{soon.id}/publish", headers=headers)
        assert refused.json()["type"] == "bidding_period_too_short"
        accepted = await client.post(f"{TENDERS}/{later.id}/publish", headers=headers)
        assert accepted.status_code == 200

    async def test_a_deadline_moved_later_makes_the_draft_publishable(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(
            session, officer=cast.author, bid_deadline=utcnow() + timedelta(seconds=10)
        )
        headers = cast["author"].headers
        later = (utcnow() + timedelta(hours=1)).isoformat()
        await client.patch(f"{TENDERS}/{tender.id}", json={"bid_deadline": later}, headers=headers)
        response = await client.post(f"{TENDERS}/{tender.id}/publish", headers=headers)
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "status",
        [
            TenderStatus.published,
            TenderStatus.opening,
            TenderStatus.opened,
            TenderStatus.failed,
            TenderStatus.cancelled,
        ],
    )
    async def test_only_a_draft_can_be_published(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, status: TenderStatus
    ) -> None:
        tender = await create_tender(
            session, officer=cast.author, status=status, opening_recipient="age1unchanged"
        )
        response = await client.post(
            f"{TENDERS}/{tender.id}/publish", headers=cast["author"].headers
        )
        assert response.status_code == 409
        assert response.json()["type"] == "not_a_draft"
        stored = await reload(session, tender)
        assert stored.status is status and stored.opening_recipient == "age1unchanged"


class TestCancel:
    async def test_a_draft_is_cancelled_with_its_reason(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        response = await client.post(
            f"{TENDERS}/{tender.id}/cancel",
            json={"reason": "budget withdrawn"},
            headers=cast["author"].headers,
        )
        assert response.status_code == 200
        cancelled = response.json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == "budget withdrawn"
        assert cancelled["cancelled_at"] is not None
        # A draft cancelled before publication stays private to its organization.
        assert (await client.get(f"{TENDERS}/{tender.id}")).status_code == 404

    async def test_a_published_tender_is_cancelled_before_its_deadline_in_public(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        response = await client.post(
            f"{TENDERS}/{tender.id}/cancel",
            json={"reason": "scope changed"},
            headers=cast["colleague"].headers,
        )
        assert response.status_code == 200
        public = (await client.get(f"{TENDERS}/{tender.id}")).json()
        assert public["status"] == "cancelled" and public["cancel_reason"] == "scope changed"

    async def test_a_published_tender_past_its_deadline_cannot_be_cancelled(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(
            session,
            officer=cast.author,
            status=TenderStatus.published,
            bid_deadline=utcnow() - timedelta(seconds=1),
        )
        headers = cast["author"].headers
        response = await client.post(
            f"{TENDERS}/{tender.id}/cancel", json={"reason": "too late"}, headers=headers
        )
        assert response.status_code == 409
        assert response.json()["type"] == "deadline_passed"
        assert (await reload(session, tender)).status is TenderStatus.published

    @pytest.mark.parametrize(
        "status",
        [TenderStatus.opening, TenderStatus.opened, TenderStatus.failed, TenderStatus.cancelled],
    )
    async def test_a_tender_past_publication_cannot_be_cancelled(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, status: TenderStatus
    ) -> None:
        tender = await create_tender(
            session, officer=cast.author, status=status, bid_deadline=utcnow() - timedelta(hours=1)
        )
        response = await client.post(
            f"{TENDERS}/{tender.id}/cancel", json={"reason": "no"}, headers=cast["author"].headers
        )
        assert response.status_code == 409
        assert response.json()["type"] == "not_cancellable"
        stored = await reload(session, tender)
        assert stored.status is status and stored.cancel_reason is None

    @pytest.mark.parametrize(
        "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "r" * 2001}, {"why": "x"}]
    )
    async def test_a_reason_is_required(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        body: dict[str, str],
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        response = await client.post(
            f"{TENDERS}/{tender.id}/cancel", json=body, headers=cast["author"].headers
        )
        assert response.status_code == 422
        assert any(
            item["field"] in ("body.reason", "body.why") for item in response.json()["errors"]
        )
        assert (await reload(session, tender)).status is TenderStatus.draft


@pytest.fixture
async def committing_client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class TestConcurrentPublish:
    async def test_of_officers_publishing_the_same_draft_at_once_exactly_one_succeeds(
        self,
        committing_app: FastAPI,
        engine: AsyncEngine,
        platform_keys: PlatformKeys,
    ) -> None:
        factory = create_session_factory(engine)
        async with factory() as session:
            author = await create_user(session, role=Role.officer)
            colleagues = [
                await create_user(session, role=Role.officer, organization=author.organization)
                for _ in range(3)
            ]
            headers = [await bearer(session, officer) for officer in [author, *colleagues]]
            tender = await create_tender(session, officer=author)
            tender_id = tender.id
            await session.commit()

        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=committing_app), base_url="http://testserver"
            )
            for _ in headers
        ]
        try:
            responses = await asyncio.gather(
                *(
                    client.post(f"{TENDERS}/{tender_id}/publish", headers=h)
                    for client, h in zip(clients, headers, strict=True)
                )
            )
        finally:
            for client in clients:
                await client.aclose()

        codes = sorted(response.status_code for response in responses)
        assert codes == [200, 409, 409, 409], [r.text for r in responses]
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        assert {r.json()["type"] for r in responses if r.status_code == 409} == {"not_a_draft"}

        # The stored keys are the winner's: no loser overwrote them with its own.
        async with factory() as session:
            stored = await session.get(Tender, uuid.UUID(str(tender_id)))
            assert stored is not None
            assert stored.status is TenderStatus.published
            assert stored.opening_recipient == winner["opening_recipient"]
            identity = opening_secrets.opening_identity(master=platform_keys.master, tender=stored)
            assert str(identity.recipient) == winner["opening_recipient"]
            seed = opening_secrets.coefficient_seed(master=platform_keys.master, tender=stored)
            assert hashlib.sha256(seed).hexdigest() == winner["coefficient_commitment"]
            assert stored.published_at is not None
            assert stored.published_at.isoformat().replace("+00:00", "Z") == winner["published_at"]
