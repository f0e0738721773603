"""GET /api/v1/audit: the platform's chain for administrators, a tender's for administrators
and its own officers and supervisors once its bids are public, paged, hashes that check."""

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth.models import Organization, Role
from bidding.crypto.canonical import canonical_json
from bidding.db import utcnow
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import bearer, create_organization, create_user
from tests.tenders.conftest import create_tender

AUDIT = "/api/v1/audit"

PEOPLE = ("admin", "officer", "supervisor", "other_officer", "bidder", "anonymous")


@pytest.fixture
async def buyer(session: AsyncSession) -> Organization:
    return await create_organization(session, name="Fuzhou Transport Bureau")


@pytest.fixture
async def people(session: AsyncSession, buyer: Organization) -> dict[str, dict[str, str]]:
    """Headers of each kind of reader, around the buying organization."""
    roles = {
        "admin": (Role.admin, None),
        "officer": (Role.officer, buyer),
        "supervisor": (Role.supervisor, buyer),
        "other_officer": (Role.officer, None),
        "bidder": (Role.bidder, None),
    }
    headers = {"anonymous": {}}
    for name, (role, organization) in roles.items():
        user = await create_user(session, role=role, organization=organization)
        headers[name] = await bearer(session, user)
    return headers


async def a_tender(session: AsyncSession, buyer: Organization, status: str) -> Tender:
    """A tender in this status, published first unless a draft or "cancelled_draft"."""
    officer = await create_user(session, role=Role.officer, organization=buyer)
    published = None if status in (TenderStatus.draft, "cancelled_draft") else utcnow()
    tender = await create_tender(
        session, officer=officer, status=TenderStatus(status.removesuffix("_draft")),
        published_at=published,
    )  # fmt: skip
    for action in ("tender.created", "tender.published", "bid.submitted"):
        await audit.record(session=session, action=action, tender_id=tender.id, actor=officer.actor)
    return tender


def checks(entry: dict[str, Any], prev_hash: str) -> bool:
    """The served entry hashes to its entry_hash and links to the one before."""
    body = {key: value for key, value in entry.items() if key not in ("prev_hash", "entry_hash")}
    digest = hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(body)).hexdigest()
    return entry["prev_hash"] == prev_hash and entry["entry_hash"] == digest


class TestWhoReadsWhat:
    async def test_the_platforms_chain_is_for_administrators(
        self, client: httpx.AsyncClient, people: dict[str, dict[str, str]]
    ) -> None:
        answers = {name: await client.get(AUDIT, headers=people[name]) for name in PEOPLE}

        assert {name: answer.status_code for name, answer in answers.items()} == {
            "admin": 200,
            "officer": 403,
            "supervisor": 403,
            "other_officer": 403,
            "bidder": 403,
            "anonymous": 401,
        }
        assert answers["admin"].json()["chain"] == "platform"

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (
                TenderStatus.draft,
                {"admin": 200, "officer": 200, "supervisor": 200, "other_officer": 404,
                 "bidder": 404, "anonymous": 401},
            ),
            (
                TenderStatus.published,
                {"admin": 409, "officer": 409, "supervisor": 409, "other_officer": 403,
                 "bidder": 403, "anonymous": 401},
            ),
            (
                TenderStatus.cancelled,
                {"admin": 409, "officer": 409, "supervisor": 409, "other_officer": 403,
                 "bidder": 403, "anonymous": 401},
            ),
            (
                "cancelled_draft",
                {"admin": 200, "officer": 200, "supervisor": 200, "other_officer": 404,
                 "bidder": 404, "anonymous": 401},
            ),
            (
                TenderStatus.opening,
                {"admin": 200, "officer": 200, "supervisor": 200, "other_officer": 403,
                 "bidder": 403, "anonymous": 401},
            ),
            (
                TenderStatus.opened,
                {"admin": 200, "officer": 200, "supervisor": 200, "other_officer": 403,
                 "bidder": 403, "anonymous": 401},
            ),
        ],
    )  # fmt: skip
    async def test_a_tenders_chain_is_for_its_own_people_once_its_bids_are_public(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        buyer: Organization,
        people: dict[str, dict[str, str]],
        status: str,
        expected: dict[str, int],
    ) -> None:
        tender = await a_tender(session, buyer, status)
        answers = {
            name: await client.get(
                AUDIT, params={"tender_id": str(tender.id)}, headers=people[name]
            )
            for name in PEOPLE
        }

        assert {name: answer.status_code for name, answer in answers.items()} == expected
        for answer in answers.values():
            if answer.status_code == 200:
                actions = [entry["action"] for entry in answer.json()["entries"]]
                assert actions == ["tender.created", "tender.published", "bid.submitted"]
            if answer.status_code == 409:
                assert answer.json()["type"] == "audit_sealed"
            if answer.status_code != 200:
                assert "entries" not in answer.json()

    async def test_an_unknown_tender_is_not_found(
        self, client: httpx.AsyncClient, people: dict[str, dict[str, str]]
    ) -> None:
        answer = await client.get(
            AUDIT, params={"tender_id": str(uuid.uuid4())}, headers=people["admin"]
        )
        assert answer.status_code == 404


class TestPaging:
    async def test_pages_follow_positions_and_every_entry_checks_against_its_hashes(
        self, client: httpx.AsyncClient, session: AsyncSession, people: dict[str, dict[str, str]]
    ) -> None:
        for number in range(5):
            await audit.record(session=session, action="auth.signed_in", details={"n": number})

        first = (await client.get(AUDIT, params={"limit": 2}, headers=people["admin"])).json()
        rest = await client.get(
            AUDIT, params={"after": first["next_after"], "limit": 10}, headers=people["admin"]
        )

        assert (first["has_more"], first["next_after"]) == (True, 2)
        later = rest.json()
        assert later["has_more"] is False
        entries = first["entries"] + later["entries"]
        assert [entry["position"] for entry in entries] == [1, 2, 3, 4, 5]
        assert [entry["details"] for entry in entries] == [{"n": n} for n in range(5)]
        prev = audit.GENESIS
        for entry in entries:
            assert checks(entry, prev), entry
            prev = entry["entry_hash"]
        empty = await client.get(AUDIT, params={"after": 5}, headers=people["admin"])
        assert (empty.json()["entries"], empty.json()["next_after"]) == ([], 5)
