"""Actions in the opening room: check-in (签到), objections (异议) and their answers, and the
bidders' confirmation of the record. Each is an event that every watcher sees."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth.models import Organization, Role, User
from bidding.db import iso_utc, utcnow
from bidding.errors import Forbidden
from bidding.opening import decryption, lease, payloads
from bidding.opening import events as ev
from bidding.opening import service as opening_service
from bidding.opening.exceptions import (
    AlreadyAnswered,
    AlreadyConfirmed,
    AlreadyOpened,
    CheckInClosed,
    CheckInNotOpen,
    FileKeyRefused,
    ObjectionNotFound,
    OpeningNotRunning,
    RecordNotPublished,
    TooManyTries,
    WindowClosed,
    WindowNotOpen,
)
from bidding.opening.models import OpeningEvent
from bidding.tenders.models import Bid, Tender, TenderStatus


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
    *,
    session: AsyncSession,
    tender: Tender,
    payload: payloads.Event,
    user: User,
    audited: dict[str, Any],
) -> ev.Envelope:
    """The room's event, and its audit entry by the user (the same name, what identifies it)."""
    event = await ev.append(session=session, tender_id=tender.id, payload=payload, lease_owner=None)
    await audit.record(
        session=session,
        action=payload.type,
        tender_id=tender.id,
        details={"event_seq": event.seq, **audited},
        actor=user.actor,
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
    if listed is None:
        return set()
    return {bid.bidder_id for bid in ev.payload(listed, payloads.BidsListed).bids}


async def check_in(*, session: AsyncSession, tender: Tender, user: User) -> ev.Envelope:
    """Record that a participant is present; a second check-in returns the first."""
    if not await opening_service.is_participant(session=session, tender=tender, viewer=user):
        raise Forbidden("only the tender's officers, supervisors and bidders check in")
    if tender.status not in (TenderStatus.published, TenderStatus.opening):
        raise CheckInClosed(f"the tender is {tender.status}: check-in is over")
    if user.role is Role.bidder and tender.bid_deadline > utcnow():
        # Before the deadline a bidder's presence would tell every watcher that it bid.
        raise CheckInNotOpen(
            "bidders check in from the bid deadline on: before it, a check-in would tell "
            "everyone that you bid"
        )
    await ev.lock_opening(session=session, tender_id=tender.id)
    for event in await _events_of(session=session, tender_id=tender.id, type=ev.CHECKED_IN):
        if ev.payload(event, payloads.CheckedIn).user_id == str(user.id):
            return ev.envelope(event)
    return await _append(
        session=session,
        tender=tender,
        payload=payloads.CheckedIn(
            user_id=str(user.id),
            display_name=user.display_name,
            role=user.role.value,
            organization_id=None if user.organization_id is None else str(user.organization_id),
            organization_name=await _organization_name(session, user),
        ),
        user=user,
        audited={},
    )


async def raise_objection(
    *, session: AsyncSession, tender: Tender, bidder: User, text: str
) -> ev.Envelope:
    """A bidder whose bid was listed objects, while the opening is in progress."""
    if tender.status is not TenderStatus.opening:
        raise OpeningNotRunning("objections are raised while the opening is in progress")
    listed = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.BIDS_LISTED
    )
    if str(bidder.organization_id) not in _listed_bidders(listed):
        raise Forbidden("only a bidder whose bid is being opened may object")
    await ev.lock_opening(session=session, tender_id=tender.id)
    objection_id = str(uuid.uuid4())
    return await _append(
        session=session,
        tender=tender,
        payload=payloads.ObjectionRaised(
            objection_id=objection_id,
            bidder_id=str(bidder.organization_id),
            bidder_name=await _organization_name(session, bidder),
            text=text,
        ),
        user=bidder,
        audited={"objection_id": objection_id},
    )


async def answer_objection(
    *, session: AsyncSession, tender: Tender, officer: User, objection_id: uuid.UUID, text: str
) -> ev.Envelope:
    """The tender's officer answers an objection, once."""
    await ev.lock_opening(session=session, tender_id=tender.id)
    raised = await _events_of(session=session, tender_id=tender.id, type=ev.OBJECTION_RAISED)
    if not any(
        ev.payload(event, payloads.ObjectionRaised).objection_id == str(objection_id)
        for event in raised
    ):
        raise ObjectionNotFound(f"no objection {objection_id} in this opening")
    answered = await _events_of(session=session, tender_id=tender.id, type=ev.OBJECTION_ANSWERED)
    if any(
        ev.payload(event, payloads.ObjectionAnswered).objection_id == str(objection_id)
        for event in answered
    ):
        raise AlreadyAnswered("this objection has been answered already")
    return await _append(
        session=session,
        tender=tender,
        payload=payloads.ObjectionAnswered(
            objection_id=str(objection_id), answered_by=officer.display_name, text=text
        ),
        user=officer,
        audited={"objection_id": str(objection_id)},
    )


async def confirm_record(*, session: AsyncSession, tender: Tender, bidder: User) -> ev.Envelope:
    """A bidder whose bid was listed confirms the published record, once."""
    published = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.RECORD_PUBLISHED
    )
    if published is None:
        raise RecordNotPublished("the record has not been published yet")
    record_sha256 = ev.payload(published, payloads.RecordPublished).sha256
    listed = await opening_service.first_event(
        session=session, tender_id=tender.id, type=ev.BIDS_LISTED
    )
    bidder_id = str(bidder.organization_id)
    if bidder_id not in _listed_bidders(listed):
        raise Forbidden("only a bidder whose bid was opened confirms the record")
    await ev.lock_opening(session=session, tender_id=tender.id)
    confirmed = await _events_of(session=session, tender_id=tender.id, type=ev.RECORD_CONFIRMED)
    if any(
        ev.payload(event, payloads.RecordConfirmed).bidder_id == bidder_id for event in confirmed
    ):
        raise AlreadyConfirmed("your organization has confirmed this record already")
    return await _append(
        session=session,
        tender=tender,
        payload=payloads.RecordConfirmed(
            bidder_id=bidder_id,
            bidder_name=await _organization_name(session, bidder),
            record_sha256=record_sha256,
        ),
        user=bidder,
        audited={"record_sha256": record_sha256},
    )


# --- revealing a bid's file key (bidder mode) ----------------------------------------------

MOST_REVEAL_FAILURES = 5


async def _window_bid(
    *, session: AsyncSession, tender: Tender, bidder: User, counting: bool = True
) -> tuple[payloads.ListedBid, Bid]:
    """The bidder's listed bid, if the decryption window is open and it is still sealed."""
    if tender.status is TenderStatus.published:
        raise WindowNotOpen(
            "the decryption window opens once the bids are listed, after the deadline"
        )
    if tender.status is not TenderStatus.opening:
        raise WindowClosed(f"the tender is {tender.status}: nothing to reveal")
    events = await ev.after(session=session, tender_id=tender.id)
    by_type: dict[str, list[OpeningEvent]] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    opened = by_type.get(ev.WINDOW_OPENED)
    if not opened:
        raise WindowNotOpen("the decryption window is not open yet")
    closes_at = ev.payload(opened[0], payloads.WindowOpened).closes_at
    if ev.WINDOW_CLOSED in by_type or iso_utc(utcnow()) >= closes_at:
        raise WindowClosed(f"the decryption window closed at {closes_at}")
    listed = ev.payload(by_type[ev.BIDS_LISTED][0], payloads.BidsListed).bids
    mine = next((bid for bid in listed if bid.bidder_id == str(bidder.organization_id)), None)
    if mine is None:
        raise Forbidden("only a bidder whose bid is listed reveals its file key")
    if mine.bid_id in ev.decided(events):
        raise AlreadyOpened("your bid has been opened already")
    bid = await session.get(Bid, uuid.UUID(mine.bid_id), populate_existing=True)
    assert bid is not None, "a listed bid exists"
    # The last allowed try is itself counted while it runs: `counting` is off for its own check.
    if counting and bid.reveal_failures >= MOST_REVEAL_FAILURES:
        raise TooManyTries(f"{MOST_REVEAL_FAILURES} wrong file keys: no more tries for this bid")
    return mine, bid


async def reveal(
    *,
    session: AsyncSession,
    tender: Tender,
    bidder: User,
    file_key: bytes,
    open_bid: Callable[[payloads.ListedBid, bytes], Awaitable[decryption.Outcome]],
) -> ev.Envelope:
    """Open the bidder's bid with the file key it revealed; the event, or 422 for a wrong key.

    No transaction is held while the bid is decrypted (`open_bid`, off the event loop); the
    window and the bid are checked again, under the opening's row lock, before the event.
    """
    listed, bid = await _window_bid(session=session, tender=tender, bidder=bidder)
    # A try is taken before the key is checked, in one statement, so that parallel requests
    # cannot get past the limit; a key that opens the bid gives it back.
    tries = await session.scalar(
        update(Bid)
        .where(Bid.id == bid.id, Bid.reveal_failures < MOST_REVEAL_FAILURES)
        .values(reveal_failures=Bid.reveal_failures + 1)
        .returning(Bid.reveal_failures)
    )
    if tries is None:
        raise TooManyTries(f"{MOST_REVEAL_FAILURES} wrong file keys: no more tries for this bid")
    await session.commit()
    try:
        outcome = await open_bid(listed, file_key)
    except decryption.WrongFileKey:
        left = MOST_REVEAL_FAILURES - tries
        # Committed although the request fails, like the try it used up.
        await audit.record(
            session=session,
            action="bid.reveal_failed",
            tender_id=tender.id,
            details={"bid_id": str(bid.id), "bidder_id": str(bid.bidder_id), "tries_left": left},
            actor=bidder.actor,
        )
        await session.commit()
        raise FileKeyRefused(
            f"this file key does not open your bid ({left} tries left)", tries_left=left
        ) from None
    await ev.lock_opening(session=session, tender_id=tender.id)
    await _window_bid(session=session, tender=tender, bidder=bidder, counting=False)
    await session.execute(
        update(Bid).where(Bid.id == bid.id).values(reveal_failures=Bid.reveal_failures - 1)
    )
    opened = decryption.outcome_event(listed, outcome, "bidder")
    event = await ev.append(session=session, tender_id=tender.id, payload=opened, lease_owner=None)
    await _resume_when_all_opened(session=session, tender=tender)
    await audit.record(
        session=session,
        action="bid.revealed",
        tender_id=tender.id,
        details={
            "bid_id": str(bid.id),
            "bidder_id": str(bid.bidder_id),
            "event_seq": event.seq,
            "outcome": opened.type,
        },
        actor=bidder.actor,
    )
    return ev.envelope(event)


async def _resume_when_all_opened(*, session: AsyncSession, tender: Tender) -> None:
    """Once every listed bid is opened, the window may close now instead of at its time."""
    events = await ev.after(session=session, tender_id=tender.id)
    listed = next(event for event in events if event.type == ev.BIDS_LISTED)
    if ev.decided(events) >= {bid.bid_id for bid in ev.payload(listed, payloads.BidsListed).bids}:
        await lease.resume_at(session, tender.id, utcnow())
