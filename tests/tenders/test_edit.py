"""Editing drafts, and amending published tenders: recorded, shown, never an earlier deadline."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import utcnow
from bidding.tenders.models import TenderStatus
from tests.tenders.conftest import TENDERS, Cast, create_tender, create_via_api, reload


def _iso(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


class TestEditDraft:
    async def test_every_field_of_a_draft_can_be_changed(
        self, client: httpx.AsyncClient, cast: Cast
    ) -> None:
        tender = await create_via_api(client, cast["author"].headers)
        changes: dict[str, Any] = {
            "reference": "ZB-2031-007",
            "title": "Resurfacing of Binhai Road, sections 3 and 4",
            "description": "Now 8.1 km.",
            "buyer_name": "Fuzhou Transport Bureau (East)",
            "currency": "USD",
            "ceiling_price": "2400000",
            "floor_price": "1800000.5",
            "opening_mode": "bidder",
            "decryption_window_minutes": 45,
            "backup_decryption": True,
            "min_bids": 5,
            "scoring": {"method": "comprehensive", "price_weight": "40"},
            "bid_fields": [{"name": "staff", "label": "Staff", "type": "integer", "max": "90"}],
            "public_opening": True,
        }
        response = await client.patch(
            f"{TENDERS}/{tender['id']}", json=changes, headers=cast["colleague"].headers
        )
        assert response.status_code == 200, response.text
        edited = response.json()
        expected = changes | {"ceiling_price": "2400000.00", "floor_price": "1800000.50"}
        for name, value in expected.items():
            if name != "bid_fields":
                assert edited[name] == value, name
        assert [field["name"] for field in edited["bid_fields"]] == ["price", "staff"]
        assert edited["status"] == "draft"
        assert edited["amendments"] == []  # drafts are work in progress, not a public record
        again = await client.get(f"{TENDERS}/{tender['id']}", headers=cast["author"].headers)
        assert again.json()["title"] == changes["title"]

    async def test_the_floor_can_be_removed(self, client: httpx.AsyncClient, cast: Cast) -> None:
        tender = await create_via_api(client, cast["author"].headers)
        response = await client.patch(
            f"{TENDERS}/{tender['id']}", json={"floor_price": None}, headers=cast["author"].headers
        )
        assert response.json()["floor_price"] is None

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"floor_price": "1250000.01"}, "floor_price"),
            ({"ceiling_price": "899999.99"}, "ceiling_price"),
            ({"bid_deadline": "2031-01-01T00:00:00"}, "bid_deadline"),
            ({"bid_deadline": (utcnow() - timedelta(hours=1)).isoformat()}, "bid_deadline"),
            ({"scoring": {"method": "median"}}, "scoring"),
            ({"bid_fields": [{"name": "x", "type": "datetime"}]}, "bid_fields.0.type"),
            ({"title": None}, "title"),
            ({"title": "t" * 201}, "title"),
            ({"status": "published"}, "status"),
        ],
        ids=[
            "floor above the kept ceiling",
            "ceiling below the kept floor",
            "naive deadline",
            "past deadline",
            "unknown scoring",
            "unknown field type",
            "null title",
            "long title",
            "status is not editable",
        ],
    )
    async def test_a_bad_edit_is_refused_by_name_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        changes: dict[str, Any],
        field: str,
    ) -> None:
        tender = await create_tender(session, officer=cast.author, floor_price="900000.00")
        before = tender.updated_at
        response = await client.patch(
            f"{TENDERS}/{tender.id}", json=changes, headers=cast["author"].headers
        )
        assert response.status_code == 422, response.text
        assert any(field in item["field"] for item in response.json()["errors"])
        stored = await reload(session, tender)
        assert stored.updated_at == before
        assert (stored.ceiling_price, stored.floor_price) == ("1250000.00", "900000.00")
        assert stored.status is TenderStatus.draft

    async def test_a_reference_cannot_be_changed_to_another_tenders(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        taken = await create_tender(session, officer=cast.author, reference="ZB-TAKEN")
        tender = await create_tender(session, officer=cast.author, reference="ZB-MINE")
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"reference": taken.reference},
            headers=cast["author"].headers,
        )
        assert response.status_code == 409
        assert response.json()["type"] == "reference_taken"
        assert (await reload(session, tender)).reference == "ZB-MINE"

    async def test_keeping_its_own_reference_is_not_a_conflict(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, reference="ZB-MINE")
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"reference": "ZB-MINE", "title": "New title"},
            headers=cast["author"].headers,
        )
        assert response.status_code == 200
        assert response.json()["title"] == "New title"


class TestAmend:
    async def test_a_later_deadline_and_a_new_description_are_recorded_and_shown(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(
            session, officer=cast.author, status=TenderStatus.published, description="v1"
        )
        old_deadline = tender.bid_deadline
        later = old_deadline + timedelta(days=3)
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"bid_deadline": later.isoformat(), "description": "v2", "reason": "site visit"},
            headers=cast["colleague"].headers,
        )
        assert response.status_code == 200, response.text
        amended = response.json()
        assert amended["description"] == "v2"
        assert amended["bid_deadline"] == later.isoformat().replace("+00:00", "Z")
        (amendment,) = amended["amendments"]
        assert amendment["number"] == 1
        assert amendment["reason"] == "site visit"
        assert amendment["amended_by_id"] == str(cast["colleague"].user.id)  # type: ignore[union-attr]
        assert amendment["changes"] == {
            "bid_deadline": {
                "from": old_deadline.isoformat().replace("+00:00", "Z"),
                "to": later.isoformat().replace("+00:00", "Z"),
            },
            "description": {"from": "v1", "to": "v2"},
        }
        # Anyone reading the tender sees the amendment, not only its officers.
        public = await client.get(f"{TENDERS}/{tender.id}")
        assert public.json()["amendments"] == amended["amendments"]

    async def test_every_amendment_is_kept_in_order(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        for text in ("first", "second", "third"):
            response = await client.patch(
                f"{TENDERS}/{tender.id}", json={"description": text}, headers=cast["author"].headers
            )
            assert response.status_code == 200
        amendments = response.json()["amendments"]
        assert [a["number"] for a in amendments] == [1, 2, 3]
        assert [a["changes"]["description"]["to"] for a in amendments] == [
            "first",
            "second",
            "third",
        ]
        assert amendments[0]["reason"] == ""

    async def test_an_earlier_deadline_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        deadline = tender.bid_deadline
        earlier = deadline - timedelta(hours=1)
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"bid_deadline": earlier.isoformat(), "description": "hurry"},
            headers=cast["author"].headers,
        )
        assert response.status_code == 422
        assert response.json()["type"] == "deadline_moved_earlier"
        assert "bid_deadline" in response.json()["detail"]
        stored = await reload(session, tender)
        assert stored.bid_deadline == deadline and stored.description == ""
        assert stored.amendments == []

    async def test_resending_the_same_values_records_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        current = (await client.get(f"{TENDERS}/{tender.id}")).json()
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={
                "title": current["title"],
                "ceiling_price": current["ceiling_price"],
                "bid_deadline": current["bid_deadline"],
                "description": current["description"],
            },
            headers=cast["author"].headers,
        )
        assert response.status_code == 200
        assert response.json()["amendments"] == []

    @pytest.mark.parametrize(
        "changes",
        [
            {"ceiling_price": "2000000.00"},
            {"title": "Another road"},
            {"scoring": {"method": "comprehensive", "price_weight": "30"}},
            {"opening_mode": "bidder"},
        ],
        ids=["ceiling", "title", "scoring", "opening mode"],
    )
    async def test_terms_fixed_at_publication_cannot_be_amended(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        changes: dict[str, Any],
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        before = tender.updated_at
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={**changes, "description": "sneaked in"},
            headers=cast["author"].headers,
        )
        assert response.status_code == 409
        assert response.json()["type"] == "not_amendable"
        assert response.json()["field"] == next(iter(changes))
        stored = await reload(session, tender)
        assert stored.updated_at == before and stored.description == ""

    async def test_nothing_can_be_amended_after_the_deadline(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        # Published, its deadline just passed, the opening not yet started.
        tender = await create_tender(
            session,
            officer=cast.author,
            status=TenderStatus.published,
            bid_deadline=utcnow() - timedelta(seconds=1),
        )
        response = await client.patch(
            f"{TENDERS}/{tender.id}",
            json={"bid_deadline": _iso(5), "description": "late"},
            headers=cast["author"].headers,
        )
        assert response.status_code == 409
        assert response.json()["type"] == "deadline_passed"
        assert (await reload(session, tender)).amendments == []

    @pytest.mark.parametrize(
        "status", [TenderStatus.opening, TenderStatus.opened, TenderStatus.failed]
    )
    async def test_a_tender_past_publication_cannot_be_changed(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, status: TenderStatus
    ) -> None:
        tender = await create_tender(
            session, officer=cast.author, status=status, bid_deadline=utcnow() - timedelta(hours=1)
        )
        response = await client.patch(
            f"{TENDERS}/{tender.id}", json={"description": "x"}, headers=cast["author"].headers
        )
        assert response.status_code == 409
        assert response.json()["type"] == "not_editable"
