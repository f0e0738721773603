"""Actions in the opening room: check-in (签到), objections (异议) and their answers, and the
bidders' confirmation of the record. Each is an event that every watcher sees."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Organization, Role, User
from bidding.db import utcnow
from bidding.errors import Conflict, Forbidden, NotFound
from bidding.opening import events as ev
from bidding.opening import service as opening_service
from bidding.opening.models import OpeningEvent
from bidding.tenders.models import Tender, TenderStatus


async def _events_of(
    *, session: AsyncSession, tender_id: uuid.UUID, type: str
) -> list[OpeningEvent]:
    rows = await session.scalars(
        select(OpeningEvent)
        .where(OpeningEvent.tender_id == tender_id, OpeningEvent.type == type)
        .order_by(OpeningEvent.seq)
    )
    return list(rows)


async def _append(
    *, session: AsyncSession, tender: Tender, type: str, data: dict[str, Any]
) -> dict[str, Any]:
    event = await ev.append(
        session=session, tender_id=tender.id, type=type, data=data, lease_owner=None
    )
    return ev.envelope(event)


async def _organization_name(session: AsyncSession, user: User) -> str | None:
    if user.organization_id is None:
        return None
    name: str | None = await session.scalar(
        select(Organization.name).where(Organization.id == user.organization_id)
    )
    return name


def _listed_bidders(listed: OpeningEvent | None) -> set[str]:
    return set() if listed is None else {bid["bidder_id"] for bid in listed.data["bids"]}


async def check_in(*, session: AsyncSession, tender: Tender, user: User) -> dict[str, Any]:
    """Record that a participant is present; a second check-in returns the first."""
    if not await opening_service.is_participant(session=session, tender=tender, viewer=user):
        raise Forbidden("only the tender's officers, supervisors and bidders check in")
    if tender.status not in (TenderStatus.published, TenderStatus.opening):
        raise Conflict(f"the tender is {tender.status}: check-in is over", type="check_in_closed")
    if user.role is Role.bidder and tender.bid_deadline > utcnow():
        # Before the deadline a bidder's presence would tell every watcher that it bid.
        raise Conflict(
            "bidders check in from the bid deadline on: before it, a check-in would tell "
            "everyone that you bid",
            type="check_in_not_open",
        )
    await ev.lock_opening(session=session, tender_id=tender.id)
    for event in await _events_of(session=session, tender_id=tender.id, type=ev.CHECKED_IN):
        if event.data["user_id"] == str(user.id):
            return ev.envelope(event)
    return await _append(
        session=session,
        tender=tender,
        type=ev.CHECKED_IN,
        data={
            "user_id": str(user.id),
            "display_name": user.display_name,
            "role": user.role.value,
            "organization_id": None if user.organization_id is None else str(user.organization_id),
            "organization_name": await _organization_name(session, user),
        },
    )


async def raise_objection(
    *, session: AsyncSession, tender: Tender, bidder: User, text: str
) -> dict[str, Any]:
    """A bidder whose bid was listed objects, while the opening is in progress."""
    if tender.status is not TenderStatus.opening:
        raise Conflict(
            "objections are raised while the opening is in progress", type="opening_not_running"
        )
    listed = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.BIDS_LISTED
    )
    if str(bidder.organization_id) not in _listed_bidders(listed):
        raise Forbidden("only a bidder whose bid is being opened may object")
    await ev.lock_opening(session=session, tender_id=tender.id)
    return await _append(
        session=session,
        tender=tender,
        type=ev.OBJECTION_RAISED,
        data={
            "objection_id": str(uuid.uuid4()),
            "bidder_id": str(bidder.organization_id),
            "bidder_name": await _organization_name(session, bidder),
            "text": text,
        },
    )


async def answer_objection(
    *, session: AsyncSession, tender: Tender, officer: User, objection_id: uuid.UUID, text: str
) -> dict[str, Any]:
    """The tender's officer answers an objection, once."""
    await ev.lock_opening(session=session, tender_id=tender.id)
    raised = await _events_of(session=session, tender_id=tender.id, type=ev.OBJECTION_RAISED)
    if not any(event.data["objection_id"] == str(objection_id) for event in raised):
        raise NotFound(f"no objection {objection_id} in this opening", type="objection_not_found")
    answered = await _events_of(session=session, tender_id=tender.id, type=ev.OBJECTION_ANSWERED)
    if any(event.data["objection_id"] == str(objection_id) for event in answered):
        raise Conflict("this objection has been answered already", type="already_answered")
    return await _append(
        session=session,
        tender=tender,
        type=ev.OBJECTION_ANSWERED,
        data={
            "objection_id": str(objection_id),
            "answered_by": officer.display_name,
            "text": text,
        },
    )


async def confirm_record(*, session: AsyncSession, tender: Tender, bidder: User) -> dict[str, Any]:
    """A bidder whose bid was listed confirms the published record, once."""
    published = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.RECORD_PUBLISHED
    )
    if published is None:
        raise Conflict("the record has not been published yet", type="record_not_published")
    listed = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.BIDS_LISTED
    )
    bidder_id = str(bidder.organization_id)
    if bidder_id not in _listed_bidders(listed):
        raise Forbidden("only a bidder whose bid was opened confirms the record")
    await ev.lock_opening(session=session, tender_id=tender.id)
    confirmed = await _events_of(session=session, tender_id=tender.id, type=ev.RECORD_CONFIRMED)
    if any(event.data["bidder_id"] == bidder_id for event in confirmed):
        raise Conflict(
            "your organization has confirmed this record already", type="already_confirmed"
        )
    return await _append(
        session=session,
        tender=tender,
        type=ev.RECORD_CONFIRMED,
        data={
            "bidder_id": bidder_id,
            "bidder_name": await _organization_name(session, bidder),
            "record_sha256": published.data["sha256"],
        },
    )
