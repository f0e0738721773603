"""Who may do what, role by role: officers manage their organization's tenders, supervisors
read them, everyone else reads published tenders only, and drafts stay hidden."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Role
from bidding.db import utcnow
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import bearer, create_user
from tests.tenders.conftest import (
    CAST,
    TENDERS,
    Cast,
    count_tenders,
    create_tender,
    reload,
    tender_body,
)


def _matrix(expected: dict[str, Any]) -> pytest.MarkDecorator:
    assert set(expected) == set(CAST), "every member of the cast has an expected answer"
    return pytest.mark.parametrize(("who", "status"), expected.items(), ids=expected.keys())


async def _act(
    client: httpx.AsyncClient, action: str, tender: Tender, headers: dict[str, str]
) -> httpx.Response:
    url = f"{TENDERS}/{tender.id}"
    later = (tender.bid_deadline + timedelta(days=1)).isoformat()
    if action == "edit":
        return await client.patch(url, json={"bid_deadline": later}, headers=headers)
    if action == "publish":
        return await client.post(f"{url}/publish", headers=headers)
    assert action == "cancel"
    return await client.post(f"{url}/cancel", json={"reason": "test"}, headers=headers)


class TestAuthorizationMatrix:
    @_matrix(
        {
            "author": 201,
            "colleague": 201,
            "supervisor": 403,
            "other_officer": 201,
            "other_supervisor": 403,
            "bidder": 403,
            "admin": 403,
            "anonymous": 401,
        }
    )
    async def test_only_officers_create_tenders(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        who: str,
        status: int,
    ) -> None:
        person = cast[who]
        response = await client.post(TENDERS, json=tender_body(), headers=person.headers)
        assert response.status_code == status, response.text
        if status == 201:
            assert person.user is not None
            assert response.json()["organization"]["id"] == str(person.user.organization_id)
        assert await count_tenders(session) == (1 if status == 201 else 0)

    @_matrix(
        {
            "author": 200,
            "colleague": 200,
            "supervisor": 200,
            "other_officer": 404,
            "other_supervisor": 404,
            "bidder": 404,
            "admin": 404,
            "anonymous": 404,
        }
    )
    async def test_a_draft_is_read_only_by_its_organization(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        who: str,
        status: int,
    ) -> None:
        draft = await create_tender(session, officer=cast.author)
        response = await client.get(f"{TENDERS}/{draft.id}", headers=cast[who].headers)
        assert response.status_code == status
        if status == 404:
            # Indistinguishable from a tender that does not exist.
            assert response.json()["detail"] == f"no tender {draft.id}"

    @pytest.mark.parametrize("who", CAST)
    async def test_a_published_tender_is_read_by_everyone(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, who: str
    ) -> None:
        # Whatever became of it after publication, cancellation included, stays public.
        for tender_status in (
            TenderStatus.published,
            TenderStatus.opening,
            TenderStatus.opened,
            TenderStatus.failed,
            TenderStatus.cancelled,
        ):
            tender = await create_tender(
                session, officer=cast.author, status=tender_status, published_at=utcnow()
            )
            response = await client.get(f"{TENDERS}/{tender.id}", headers=cast[who].headers)
            assert response.status_code == 200, tender_status
            assert response.json()["status"] == tender_status

    @_matrix(
        {
            "author": {"BUYER-DRAFT", "BUYER-PUB"},
            "colleague": {"BUYER-DRAFT", "BUYER-PUB"},
            "supervisor": {"BUYER-DRAFT", "BUYER-PUB"},
            "other_officer": {"OTHER-DRAFT", "BUYER-PUB"},
            "other_supervisor": {"OTHER-DRAFT", "BUYER-PUB"},
            "bidder": {"BUYER-PUB"},
            "admin": {"BUYER-PUB"},
            "anonymous": {"BUYER-PUB"},
        }
    )
    async def test_the_list_shows_drafts_to_their_organization_only(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        who: str,
        status: set[str],
    ) -> None:
        other_officer = cast["other_officer"].user
        assert other_officer is not None
        await create_tender(session, officer=cast.author, reference="BUYER-DRAFT")
        await create_tender(
            session, officer=cast.author, reference="BUYER-PUB", status=TenderStatus.published
        )
        await create_tender(session, officer=other_officer, reference="OTHER-DRAFT")
        await create_tender(
            session, officer=cast.author, reference="BUYER-CANCELLED", status=TenderStatus.cancelled
        )  # cancelled as a draft: never public
        response = await client.get(TENDERS, headers=cast[who].headers)
        expected = set(status)
        if who in ("author", "colleague", "supervisor"):
            expected.add("BUYER-CANCELLED")
        assert {item["reference"] for item in response.json()["items"]} == expected
        assert response.json()["total"] == len(expected)
        drafts = await client.get(TENDERS, params={"status": "draft"}, headers=cast[who].headers)
        assert {item["reference"] for item in drafts.json()["items"]} == {
            reference for reference in expected if reference.endswith("DRAFT")
        }

    @pytest.mark.parametrize("action", ["edit", "publish", "cancel"])
    @_matrix(
        {
            "author": 200,
            "colleague": 200,
            "supervisor": 403,
            "other_officer": 404,
            "other_supervisor": 403,
            "bidder": 403,
            "admin": 403,
            "anonymous": 401,
        }
    )
    async def test_a_draft_is_managed_by_its_organizations_officers(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        action: str,
        who: str,
        status: int,
    ) -> None:
        draft = await create_tender(session, officer=cast.author)
        before = draft.updated_at
        response = await _act(client, action, draft, cast[who].headers)
        assert response.status_code == status, response.text
        if status != 200:
            stored = await reload(session, draft)
            assert stored.status is TenderStatus.draft and stored.updated_at == before

    @pytest.mark.parametrize("action", ["edit", "cancel"])
    @_matrix(
        {
            "author": 200,
            "colleague": 200,
            "supervisor": 403,
            "other_officer": 403,
            "other_supervisor": 403,
            "bidder": 403,
            "admin": 403,
            "anonymous": 401,
        }
    )
    async def test_a_published_tender_is_managed_by_its_organizations_officers(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        cast: Cast,
        action: str,
        who: str,
        status: int,
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        before = tender.updated_at
        response = await _act(client, action, tender, cast[who].headers)
        assert response.status_code == status, response.text
        if status != 200:
            stored = await reload(session, tender)
            assert stored.status is TenderStatus.published and stored.updated_at == before
            assert stored.amendments == []

    async def test_a_bad_token_is_refused_even_where_anonymous_visitors_may_read(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        bad = {"Authorization": "Bearer not-a-token"}
        assert (await client.get(f"{TENDERS}/{tender.id}", headers=bad)).status_code == 401
        assert (await client.get(TENDERS, headers=bad)).status_code == 401

    async def test_drafts_belong_to_the_organization_not_to_their_author(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        # Authorization follows the organization, not who created the tender.
        draft = await create_tender(session, officer=cast.author)
        other = cast["other_officer"].user
        assert other is not None
        cast.author.organization_id = other.organization_id
        await session.flush()
        response = await client.get(f"{TENDERS}/{draft.id}", headers=cast["author"].headers)
        assert response.status_code == 404
        successor = await create_user(session, role=Role.officer, organization=cast.organization)
        headers = await bearer(session, successor)
        response = await client.post(
            f"{TENDERS}/{draft.id}/cancel", json={"reason": "handover"}, headers=headers
        )
        assert response.status_code == 200
