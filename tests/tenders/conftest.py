"""Tender fixtures: a valid request body, tenders written directly, and a cast of users."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Organization, Role, User
from bidding.db import utcnow
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import bearer, create_organization, create_user

TENDERS = "/api/v1/tenders"


def tender_body(**changes: Any) -> dict[str, Any]:
    """A valid POST /tenders body; keyword arguments replace or add fields."""
    body: dict[str, Any] = {
        "reference": f"ZB-{secrets.token_hex(4)}",
        "title": "Resurfacing of Binhai Road",
        "description": "Section 3, 4.2 km.",
        "buyer_name": "Fuzhou Transport Bureau",
        "ceiling_price": "1250000.00",
        "floor_price": "900000.00",
        "bid_deadline": (utcnow() + timedelta(days=10)).isoformat(),
        "opening_mode": "platform",
        "scoring": {"method": "lowest_price"},
        "bid_fields": [{"name": "duration_days", "label": "Duration", "type": "integer"}],
    }
    body.update(changes)
    return body


async def create_tender(
    session: AsyncSession,
    *,
    officer: User,
    status: TenderStatus = TenderStatus.draft,
    reference: str | None = None,
    title: str = "Resurfacing of Binhai Road",
    bid_deadline: datetime | None = None,
    **columns: Any,
) -> Tender:
    """A tender written directly; published ones get a publication time, not real keys."""
    assert officer.organization_id is not None
    now = utcnow()
    published = status not in (TenderStatus.draft, TenderStatus.cancelled)
    values: dict[str, Any] = {
        "description": "",
        "buyer_name": "Fuzhou Transport Bureau",
        "currency": "CNY",
        "ceiling_price": "1250000.00",
        "floor_price": None,
        "scoring": {"method": "lowest_price"},
        "bid_fields": [{"name": "price", "label": "Price", "type": "decimal", "required": True}],
        "published_at": now if published else None,
    }
    tender = Tender(
        reference=reference or f"ZB-{secrets.token_hex(4)}",
        title=title,
        bid_deadline=bid_deadline or now + timedelta(days=10),
        status=status,
        organization_id=officer.organization_id,
        created_by_id=officer.id,
        **(values | columns),
    )
    session.add(tender)
    await session.flush()
    return tender


async def count_tenders(session: AsyncSession) -> int:
    """How many tenders the database holds (in this test's transaction)."""
    return await session.scalar(select(func.count()).select_from(Tender)) or 0


async def reload(session: AsyncSession, tender: Tender) -> Tender:
    """The tender as stored now, not as this session last saw it."""
    fresh = await session.scalar(
        select(Tender).where(Tender.id == tender.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


@dataclass
class Person:
    """A user of the cast with the headers that authenticate them (none for anonymous)."""

    user: User | None
    headers: dict[str, str]


@dataclass
class Cast:
    """Everyone the authorization rules distinguish, around one buying organization."""

    organization: Organization
    people: dict[str, Person]

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    @property
    def author(self) -> User:
        user = self.people["author"].user
        assert user is not None
        return user


CAST = (
    "author",  # the officer who created the tender
    "colleague",  # another officer of the same organization
    "supervisor",  # a supervisor of the same organization
    "other_officer",
    "other_supervisor",
    "bidder",
    "admin",
    "anonymous",
)


@pytest.fixture
async def cast(session: AsyncSession) -> Cast:
    """The buying organization's officers and supervisor, outsiders, and an anonymous visitor."""
    buyer = await create_organization(session, name="Fuzhou Transport Bureau")
    elsewhere = await create_organization(session, name="Xiamen Water Authority")
    roles = {
        "author": (Role.officer, buyer),
        "colleague": (Role.officer, buyer),
        "supervisor": (Role.supervisor, buyer),
        "other_officer": (Role.officer, elsewhere),
        "other_supervisor": (Role.supervisor, elsewhere),
        "bidder": (Role.bidder, None),
        "admin": (Role.admin, None),
    }
    people = {"anonymous": Person(user=None, headers={})}
    for name, (role, organization) in roles.items():
        user = await create_user(session, role=role, organization=organization)
        people[name] = Person(user=user, headers=await bearer(session, user))
    return Cast(organization=buyer, people=people)


async def create_via_api(
    client: httpx.AsyncClient, headers: dict[str, str], **changes: Any
) -> dict[str, Any]:
    """A draft created over HTTP; its response body."""
    response = await client.post(TENDERS, json=tender_body(**changes), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
