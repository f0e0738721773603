"""Opening events: appended with a gapless seq in the caller's transaction, read in order, their
payloads written to and read from the stored JSON."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import iso_utc, utcnow
from bidding.opening import payloads
from bidding.opening.models import Opening, OpeningEvent

Envelope = dict[str, Any]
E = TypeVar("E", bound=payloads.Event)

# The pipeline's events, in order (docs/architecture.md, The opening).
STARTED = payloads.Started.type
LOG_SEALED = payloads.LogSealed.type
BIDS_LISTED = payloads.BidsListed.type
BID_DECRYPTED = payloads.BidDecrypted.type
BID_REJECTED = payloads.BidRejected.type
# Bidder mode (online decryption): the window in which bidders reveal their bids' file keys.
WINDOW_OPENED = payloads.WindowOpened.type
WINDOW_CLOSED = payloads.WindowClosed.type
BID_WITHDRAWN = payloads.BidWithdrawn.type
COEFFICIENT_DRAWN = payloads.CoefficientDrawn.type
SCORES_COMPUTED = payloads.ScoresComputed.type
RECORD_PUBLISHED = payloads.RecordPublished.type
FAILED = payloads.Failed.type
COMPLETED = payloads.Completed.type
# Actions in the room, by its participants.
CHECKED_IN = payloads.CheckedIn.type
OBJECTION_RAISED = payloads.ObjectionRaised.type
OBJECTION_ANSWERED = payloads.ObjectionAnswered.type
RECORD_CONFIRMED = payloads.RecordConfirmed.type
# What a listed bid can come to: one of these, once.
OUTCOMES = (BID_DECRYPTED, BID_REJECTED, BID_WITHDRAWN)

# PostgreSQL channel on which every committed event is announced as "<tender id>:<seq>".
CHANNEL = "bidding_opening_events"


class LeaseLost(Exception):
    """Another instance took the opening over: this one must stop writing."""


def envelope(event: OpeningEvent) -> Envelope:
    """The event as REST and WebSocket send it: {seq, type, at, data}."""
    return {"seq": event.seq, "type": event.type, "at": iso_utc(event.at), "data": event.data}


def payload(event: OpeningEvent, kind: type[E]) -> E:
    """The event's payload, read as the kind its type names."""
    if event.type != kind.type:
        raise ValueError(f"event {event.seq} is {event.type}, not {kind.type}")
    return kind.from_data(event.data)


def outcome(event: OpeningEvent) -> payloads.Outcome:
    """A bid's outcome event, read as its kind."""
    kind: type[payloads.Outcome] = {
        BID_DECRYPTED: payloads.BidDecrypted,
        BID_REJECTED: payloads.BidRejected,
        BID_WITHDRAWN: payloads.BidWithdrawn,
    }[event.type]
    return kind.from_data(event.data)


def decided(events: Iterable[OpeningEvent]) -> set[str]:
    """The ids of the listed bids that have an outcome among these events."""
    return {event.data["bid_id"] for event in events if event.type in OUTCOMES}


async def append(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    payload: payloads.Event,
    lease_owner: str | None,
    at: datetime | None = None,
) -> OpeningEvent:
    """Add the next event of the tender's opening to the session's transaction.

    With a lease_owner the event is written only while that instance holds the opening
    (LeaseLost otherwise), so a step is never written by two instances.
    """
    (event,) = await append_many(
        session=session, tender_id=tender_id, items=[payload], lease_owner=lease_owner, at=at
    )
    return event


async def append_many(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    items: Sequence[payloads.Event],
    lease_owner: str | None,
    at: datetime | None = None,
) -> list[OpeningEvent]:
    """Add the next events, in order, with one claim of as many seqs."""
    claim = update(Opening).where(Opening.tender_id == tender_id)
    if lease_owner is not None:
        claim = claim.where(Opening.lease_owner == lease_owner)
    last = await session.scalar(
        claim.values(last_seq=Opening.last_seq + len(items))
        .returning(Opening.last_seq)
        .execution_options(synchronize_session=False)
    )
    if last is None:
        if lease_owner is None:
            raise LookupError(f"tender {tender_id} has no opening row: call ensure_opening first")
        raise LeaseLost(f"tender {tender_id}: the opening is no longer held by {lease_owner}")
    if session.get_bind().dialect.name == "postgresql":
        # Transactional: sent at commit, never for a rollback. Every instance's live rooms
        # then read the new events from the table.
        await session.execute(select(func.pg_notify(CHANNEL, f"{tender_id}:{last}")))
    moment = at or utcnow()
    first = last - len(items) + 1
    events = [
        OpeningEvent(
            tender_id=tender_id, seq=first + offset, type=item.type, at=moment, data=item.to_data()
        )
        for offset, item in enumerate(items)
    ]
    session.add_all(events)
    await session.flush()
    return events


async def ensure_opening(*, session: AsyncSession, tender_id: uuid.UUID) -> None:
    """Make the tender's opening row exist (events may come before the opening starts)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    await session.execute(
        insert(Opening).values(tender_id=tender_id, last_seq=0).on_conflict_do_nothing()
    )


async def lock_opening(*, session: AsyncSession, tender_id: uuid.UUID) -> None:
    """Hold the tender's opening row until the transaction ends: check, then append, safely."""
    await ensure_opening(session=session, tender_id=tender_id)
    await session.execute(
        select(Opening.tender_id).where(Opening.tender_id == tender_id).with_for_update()
    )


async def after(
    *, session: AsyncSession, tender_id: uuid.UUID, seq: int = 0, limit: int | None = None
) -> list[OpeningEvent]:
    """The tender's events with a seq above the given one, in order."""
    statement = (
        select(OpeningEvent)
        .where(OpeningEvent.tender_id == tender_id, OpeningEvent.seq > seq)
        .order_by(OpeningEvent.seq)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list(await session.scalars(statement))
