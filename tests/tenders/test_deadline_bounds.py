"""Deadlines within bounds: at most BIDDING_MAX_DEADLINE_DAYS ahead, created or amended, and a
date at the edge of the calendar or an offset no clock has refused with 422, never a 500."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import utcnow
from bidding.tenders.models import TenderStatus
from tests.tenders.conftest import TENDERS, Cast, count_tenders, create_tender, reload, tender_body

EDGES = {
    "year 9999 west of UTC": "9999-12-31T23:59:59-01:00",
    "year 9999 in UTC": "9999-12-31T23:59:59+00:00",
    "year 9999, a microsecond short, a minute west": "9999-12-31T23:59:59.999999-00:01",
    "year 1 east of UTC": "0001-01-01T00:00:00+14:00",
    "year 1 in UTC": "0001-01-01T00:00:00Z",
    "an offset of -14:00": "2027-03-01T09:00:00-14:00",
    "an offset of +23:59": "2027-03-01T09:00:00+23:59",
    "an offset of +14:01": "2027-03-01T09:00:00+14:01",
    "two years ahead": None,
}


def _deadline(text: str | None) -> str:
    return text or (utcnow() + timedelta(days=730)).isoformat()


class TestDeadlineBounds:
    @pytest.mark.parametrize("deadline", EDGES.values(), ids=EDGES.keys())
    async def test_a_deadline_out_of_bounds_is_refused_at_creation(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, deadline: str | None
    ) -> None:
        response = await client.post(
            TENDERS,
            json=tender_body(bid_deadline=_deadline(deadline)),
            headers=cast["author"].headers,
        )
        assert response.status_code == 422, response.text
        assert "bid_deadline" in response.json()["detail"]
        assert await count_tenders(session) == 0

    @pytest.mark.parametrize("deadline", EDGES.values(), ids=EDGES.keys())
    async def test_an_amendment_out_of_bounds_is_refused_and_changes_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, deadline: str | None
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        before = tender.bid_deadline
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"bid_deadline": _deadline(deadline)},
            headers=cast["author"].headers,
        )
        assert response.status_code == 422, response.text
        stored = await reload(session, tender)
        assert stored.bid_deadline == before and stored.amendments == []

    async def test_the_horizon_is_named_and_a_deadline_within_it_is_taken(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        too_far = utcnow() + timedelta(days=366)
        refused = await client.post(
            TENDERS,
            json=tender_body(bid_deadline=too_far.isoformat()),
            headers=cast["author"].headers,
        )
        assert refused.status_code == 422
        assert refused.json()["type"] == "deadline_too_far"
        assert refused.json()["limit"] == 365
        within = utcnow() + timedelta(days=364)
        taken = await client.post(
            TENDERS,
            json=tender_body(bid_deadline=within.isoformat()),
            headers=cast["author"].headers,
        )
        assert taken.status_code == 201, taken.text
        # A draft edited to beyond the horizon is refused as well.
        edited = await client.patch(
            f"{TENDERS}/{taken.json()['id']}",
            json={"bid_deadline": too_far.isoformat()},
            headers=cast["author"].headers,
        )
        assert (edited.status_code, edited.json()["type"]) == (422, "deadline_too_far")

    @pytest.mark.parametrize(
        "offset", ["-12:00", "+14:00", "+05:45", "-09:30"], ids=lambda offset: offset
    )
    async def test_every_real_offset_is_taken(
        self, client: httpx.AsyncClient, cast: Cast, offset: str
    ) -> None:
        moment = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
        response = await client.post(
            TENDERS, json=tender_body(bid_deadline=moment + offset), headers=cast["author"].headers
        )
        assert response.status_code == 201, response.text
