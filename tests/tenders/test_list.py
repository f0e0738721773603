"""Listing and reading tenders: filters, search, paging, order, and the server's clock."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import utcnow
from bidding.tenders.models import TenderStatus
from tests.tenders.conftest import TENDERS, Cast, create_tender


async def _list(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(TENDERS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _references(page: dict[str, Any]) -> list[str]:
    return [item["reference"] for item in page["items"]]


class TestList:
    async def test_tenders_come_soonest_deadline_first(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        now = utcnow()
        for reference, days in (("ZB-C", 30), ("ZB-A", 1), ("ZB-B", 7)):
            await create_tender(
                session,
                officer=cast.author,
                status=TenderStatus.published,
                reference=reference,
                bid_deadline=now + timedelta(days=days),
            )
        page = await _list(client)
        assert _references(page) == ["ZB-A", "ZB-B", "ZB-C"]
        assert page["total"] == 3 and page["page"] == 1 and page["page_size"] == 20

    async def test_one_organizations_tenders_drafts_only_for_its_own(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        other = cast["other_officer"].user
        assert other is not None
        await create_tender(session, officer=cast.author, reference="ZB-OURS-DRAFT")
        await create_tender(
            session, officer=cast.author, status=TenderStatus.published, reference="ZB-OURS"
        )
        await create_tender(
            session, officer=other, status=TenderStatus.published, reference="ZB-THEIRS"
        )
        ours = str(cast.organization.id)
        response = await client.get(
            TENDERS, params={"organization_id": ours}, headers=cast["author"].headers
        )
        assert sorted(_references(response.json())) == ["ZB-OURS", "ZB-OURS-DRAFT"]
        # Anyone may filter by organization, and still sees only what is public.
        assert _references(await _list(client, organization_id=ours)) == ["ZB-OURS"]
        bad = await client.get(TENDERS, params={"organization_id": "not-a-uuid"})
        assert bad.status_code == 422

    async def test_paging_covers_every_tender_once(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        deadline = utcnow() + timedelta(days=3)  # equal deadlines: the id breaks the tie
        for number in range(7):
            await create_tender(
                session,
                officer=cast.author,
                status=TenderStatus.published,
                reference=f"ZB-{number}",
                bid_deadline=deadline,
            )
        pages = [await _list(client, page=number, page_size=3) for number in (1, 2, 3, 4)]
        assert [len(page["items"]) for page in pages] == [3, 3, 1, 0]
        assert all(page["total"] == 7 for page in pages)
        seen = [reference for page in pages for reference in _references(page)]
        assert sorted(seen) == [f"ZB-{number}" for number in range(7)]
        ids = [item["id"] for page in pages for item in page["items"]]
        assert ids == sorted(ids)  # both databases order UUIDs as their hex text

    @pytest.mark.parametrize(
        "params",
        [{"page": 0}, {"page_size": 0}, {"page_size": 101}, {"status": "secret"}, {"q": "q" * 201}],
    )
    async def test_bad_paging_and_filters_are_refused_by_name(
        self, client: httpx.AsyncClient, params: dict[str, Any]
    ) -> None:
        response = await client.get(TENDERS, params=params)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == f"query.{next(iter(params))}"

    async def test_the_status_filter(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        past = utcnow() - timedelta(days=1)
        await create_tender(
            session, officer=cast.author, status=TenderStatus.published, reference="ZB-PUB"
        )
        await create_tender(
            session,
            officer=cast.author,
            status=TenderStatus.opened,
            reference="ZB-DONE",
            bid_deadline=past,
        )
        assert _references(await _list(client, status="published")) == ["ZB-PUB"]
        assert _references(await _list(client, status="opened")) == ["ZB-DONE"]
        assert _references(await _list(client, status="draft")) == []

    async def test_search_matches_title_or_reference_in_any_case(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        for reference, title in (
            ("ZB-2031-ROAD", "Binhai Road resurfacing"),
            ("CG-2031-017", "School desks"),
            ("CG-2031-018", "福州市政道路养护"),
        ):
            await create_tender(
                session,
                officer=cast.author,
                status=TenderStatus.published,
                reference=reference,
                title=title,
            )
        assert _references(await _list(client, q="binhai")) == ["ZB-2031-ROAD"]
        assert _references(await _list(client, q="road")) == ["ZB-2031-ROAD"]
        assert sorted(_references(await _list(client, q="cg-2031"))) == [
            "CG-2031-017",
            "CG-2031-018",
        ]
        assert _references(await _list(client, q="道路")) == ["CG-2031-018"]
        assert _references(await _list(client, q="bridge")) == []

    @pytest.mark.parametrize(
        ("query", "expected"),
        [("%", ["ZB-100%"]), ("_", ["ZB_LOT"]), ("\\", ["ZB\\X"]), ("/", ["ZB/7"])],
    )
    async def test_wildcards_in_a_search_are_plain_characters(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        query: str,
        expected: list[str],
    ) -> None:
        for reference in ("ZB-100%", "ZB_LOT", "ZB\\X", "ZB/7", "ZB-PLAIN"):
            await create_tender(
                session, officer=cast.author, status=TenderStatus.published, reference=reference
            )
        assert _references(await _list(client, q=query)) == expected

    async def test_an_answer_carries_the_server_time(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        before = utcnow()
        body = (await client.get(f"{TENDERS}/{tender.id}")).json()
        after = utcnow()
        server_time = datetime.fromisoformat(body["server_time"])
        assert before <= server_time <= after
        assert body["server_time"].endswith("Z")
        deadline = datetime.fromisoformat(body["bid_deadline"])
        assert deadline - server_time > timedelta(days=9)  # a countdown without the client clock
        (item,) = (await _list(client))["items"]
        assert item["server_time"].endswith("Z")

    async def test_an_unknown_tender_is_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{TENDERS}/5b0c8ad4-1b63-4c43-9b8f-0f3f0c3f7e11")
        assert response.status_code == 404
        assert response.json()["type"] == "not_found"
