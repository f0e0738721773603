"""Opening events: appended with a gapless seq in the caller's transaction, read in order."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import iso_utc, utcnow
from bidding.opening.models import Opening, OpeningEvent

Envelope = dict[str, Any]

# Events DESIGN §5 names, in pipeline order; the room's own events come with issue 6.
STARTED = "opening.started"
LOG_SEALED = "log.sealed"
BIDS_LISTED = "bids.listed"
BID_DECRYPTED = "bid.decrypted"
BID_REJECTED = "bid.rejected"
COEFFICIENT_DRAWN = "coefficient.drawn"
SCORES_COMPUTED = "scores.computed"
RECORD_PUBLISHED = "record.published"
FAILED = "opening.failed"
COMPLETED = "opening.completed"


class LeaseLost(Exception):
    """Another instance took the opening over: this one must stop writing."""


def envelope(event: OpeningEvent) -> Envelope:
    """The event as REST and WebSocket send it: {seq, type, at, data}."""
    return {"seq": event.seq, "type": event.type, "at": iso_utc(event.at), "data": event.data}


async def append(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    lease_owner: str | None,
    at: datetime | None = None,
) -> OpeningEvent:
    """Add the next event of the tender's opening to the session's transaction.

    With a lease_owner the event is written only while that instance holds the opening
    (LeaseLost otherwise), so a step is never written by two instances.
    """
    (event,) = await append_many(
        session=session, tender_id=tender_id, items=[(type, data)], lease_owner=lease_owner, at=at
    )
    return event


async def append_many(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    items: Sequence[tuple[str, dict[str, Any]]],
    lease_owner: str | None,
    at: datetime | None = None,
) -> list[OpeningEvent]:
    """Add the next events, (type, data) in order, with one claim of as many seqs."""
    claim = update(Opening).where(Opening.tender_id == tender_id)
    if lease_owner is not None:
        claim = claim.where(Opening.lease_owner == lease_owner)
    last = await session.scalar(
        claim.values(last_seq=Opening.last_seq + len(items))
        .returning(Opening.last_seq)
        .execution_options(synchronize_session=False)
    )
    if last is None:
        raise LeaseLost(f"tender {tender_id}: the opening is no longer held by {lease_owner}")
    moment = at or utcnow()
    first = last - len(items) + 1
    events = [
        OpeningEvent(tender_id=tender_id, seq=first + offset, type=type, at=moment, data=data)
        for offset, (type, data) in enumerate(items)
    ]
    session.add_all(events)
    await session.flush()
    return events


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
