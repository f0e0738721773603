"""Opening events: appended with a gapless seq in the caller's transaction, read in order."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import iso_utc, utcnow
from bidding.opening.models import Opening, OpeningEvent

Envelope = dict[str, Any]

# The pipeline's events, in order (docs/architecture.md, The opening).
STARTED = "opening.started"
LOG_SEALED = "log.sealed"
BIDS_LISTED = "bids.listed"
BID_DECRYPTED = "bid.decrypted"
BID_REJECTED = "bid.rejected"
# Bidder mode (online decryption): the window in which bidders reveal their bids' file keys.
WINDOW_OPENED = "decryption.window_opened"
WINDOW_CLOSED = "decryption.window_closed"
BID_WITHDRAWN = "bid.withdrawn"
COEFFICIENT_DRAWN = "coefficient.drawn"
SCORES_COMPUTED = "scores.computed"
RECORD_PUBLISHED = "record.published"
FAILED = "opening.failed"
COMPLETED = "opening.completed"
# Actions in the room, by its participants.
CHECKED_IN = "attendance.checked_in"
OBJECTION_RAISED = "objection.raised"
OBJECTION_ANSWERED = "objection.answered"
RECORD_CONFIRMED = "record.confirmed"

# PostgreSQL channel on which every committed event is announced as "<tender id>:<seq>".
CHANNEL = "bidding_opening_events"


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
        OpeningEvent(tender_id=tender_id, seq=first + offset, type=type, at=moment, data=data)
        for offset, (type, data) in enumerate(items)
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
