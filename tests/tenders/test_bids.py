"""Sealed bid submission: receipts that verify, versions, withdrawal, and what is refused."""

import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Role, User
from bidding.crypto.receipts import receipt_problems
from bidding.db import utcnow
from bidding.tenders.models import Bid, LogEntry
from tests.factories import bearer, create_user
from tests.support.bids import keys, open_tender, sealed, submit
from tests.tenders.conftest import TENDERS


class TestSubmit:
    async def test_a_sealed_bid_gets_a_receipt_that_verifies(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        body = sealed()
        response = await submit(client, tender, await bearer(session, bidder), body)
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt_problems(receipt, await keys(client)) == []
        assert receipt["body"]["kind"] == "bid"
        assert receipt["body"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert receipt["body"]["size"] == len(body)
        assert receipt["body"]["tender_id"] == str(tender.id)
        assert receipt["body"]["bidder_id"] == str(bidder.organization_id)
        assert receipt["body"]["version"] == 1

    async def test_a_plaintext_bid_never_lands(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        response = await submit(
            client, tender, await bearer(session, bidder), b'{"price": "1000000.00"}'
        )
        assert response.status_code == 422
        assert response.json()["type"] == "not_sealed"
        assert await session.scalar(select(func.count()).select_from(Bid)) == 0

    async def test_resubmitting_replaces_and_withdrawing_ends_the_bid(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        headers = await bearer(session, bidder)
        first = (await submit(client, tender, headers, sealed())).json()
        second = (await submit(client, tender, headers, sealed())).json()
        assert second["body"]["version"] == 2
        mine = (await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)).json()
        assert mine["bid"]["version"] == 2
        assert mine["receipts"] == [first, second]
        withdrawal = await client.delete(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)
        assert withdrawal.status_code == 200
        assert withdrawal.json()["body"]["kind"] == "withdrawal"
        mine = (await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)).json()
        assert mine["bid"] is None and len(mine["receipts"]) == 3
        positions = (await session.scalars(select(LogEntry.position).order_by("position"))).all()
        assert positions == [0, 1, 2]

    async def test_after_the_deadline_the_bid_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session, bid_deadline=utcnow() - timedelta(seconds=1))
        bidder = await create_user(session, role=Role.bidder)
        response = await submit(client, tender, await bearer(session, bidder), sealed())
        assert response.status_code == 409
        assert response.json()["type"] == "deadline_passed"

    async def test_an_idempotent_retry_returns_the_first_receipt(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder: User = await create_user(session, role=Role.bidder)
        headers = {**await bearer(session, bidder), "Idempotency-Key": "retry-1"}
        body = sealed()
        first = await submit(client, tender, headers, body)
        again = await submit(client, tender, headers, body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        other = await submit(client, tender, headers, sealed())
        assert other.status_code == 409
        assert other.json()["type"] == "idempotency_key_reused"


class TestSecrecy:
    async def test_the_tender_looks_the_same_to_everyone_after_a_bid(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        before = (await client.get(f"{TENDERS}/{tender.id}")).json()
        assert (await submit(client, tender, await bearer(session, bidder), sealed())).is_success
        after = (await client.get(f"{TENDERS}/{tender.id}")).json()
        before.pop("server_time"), after.pop("server_time")
        assert after == before
