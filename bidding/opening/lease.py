"""Who runs an opening: the claim at the deadline, the lease that is renewed while it runs, and
its fencing (docs/architecture.md, Principles: exactly once by compare-and-set)."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.audit import service as audit
from bidding.db import iso_utc, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import events as ev
from bidding.opening import payloads
from bidding.opening.models import Opening
from bidding.tenders.bids import Arrivals
from bidding.tenders.blobs import BlobStore
from bidding.tenders.models import Tender, TenderStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What an instance needs to run openings."""

    session_factory: async_sessionmaker[AsyncSession]
    keys: PlatformKeys
    blobs: BlobStore
    instance: str
    # This process's bids that arrived and wait for the log: the opening lets them in first.
    arrivals: Arrivals | None = None
    lease: timedelta = timedelta(seconds=15)
    workers: int = 2
    clock: Callable[[], datetime] = utcnow
    # Called after each commit that wrote events: this process's live rooms read them then.
    announce: Callable[[uuid.UUID], None] | None = None


@dataclass(frozen=True)
class Claimed:
    """This instance holds the opening's lease and runs it."""


@dataclass(frozen=True)
class NotDue:
    """The deadline has not come (it was moved later, or this clock runs early)."""

    deadline: datetime


@dataclass(frozen=True)
class HeldElsewhere:
    """Another instance runs the opening; it may be taken over once the lease expires."""

    until: datetime


@dataclass(frozen=True)
class Waiting:
    """The opening waits for its bidders (the decryption window) until this moment at most;
    it is held by nobody meanwhile."""

    until: datetime


@dataclass(frozen=True)
class Nothing:
    """The tender has nothing to open: a draft, cancelled, or its opening is finished."""

    status: TenderStatus | None


Claim = Claimed | NotDue | HeldElsewhere | Waiting | Nothing


@asynccontextmanager
async def transaction(
    ctx: Context, announcing: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction; with `announcing`, the tender's new events are announced after it."""
    async with ctx.session_factory() as session, session.begin():
        yield session
    if announcing is not None and ctx.announce is not None:
        ctx.announce(announcing)


async def claim(ctx: Context, tender_id: uuid.UUID, *, actor: audit.Actor | None = None) -> Claim:
    """Start the tender's opening (compare-and-set published -> opening) or take it over.

    Before the deadline nothing is opened, whoever asks: NotDue, and the attempt goes into
    the tender's audit trail as `opening.refused_early`, by `actor` (None: the platform).

    The bids of this process that arrived before now are logged first, and the clock is read
    the moment they are: whatever arrives later is late if the opening starts.
    """
    if ctx.arrivals is not None:
        await ctx.arrivals.drained(tender_id)
    now = ctx.clock()
    async with transaction(ctx, tender_id) as session:
        row = (
            await session.execute(
                select(Tender.status, Tender.bid_deadline).where(Tender.id == tender_id)
            )
        ).first()
        if row is None:
            return Nothing(None)
        status: TenderStatus | None = row.status
        deadline: datetime = row.bid_deadline
        if status is TenderStatus.published:
            if deadline > now:
                await audit.record(
                    session=session,
                    action="opening.refused_early",
                    tender_id=tender_id,
                    details={"bid_deadline": iso_utc(deadline), "instance": ctx.instance},
                    actor=actor,
                )
                return NotDue(deadline)
            started = await session.execute(
                update(Tender)
                .where(
                    Tender.id == tender_id,
                    Tender.status == TenderStatus.published,
                    Tender.bid_deadline <= now,
                )
                .values(status=TenderStatus.opening, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if started.rowcount == 1:  # type: ignore[attr-defined]
                await ev.ensure_opening(session=session, tender_id=tender_id)
                await session.execute(
                    update(Opening)
                    .where(Opening.tender_id == tender_id)
                    .values(
                        lease_owner=ctx.instance, lease_expires_at=now + ctx.lease, started_at=now
                    )
                    .execution_options(synchronize_session=False)
                )
                await ev.append(
                    session=session,
                    tender_id=tender_id,
                    payload=payloads.Started(bid_deadline=iso_utc(deadline)),
                    lease_owner=ctx.instance,
                    at=now,
                )
                await audit.record(
                    session=session,
                    action="opening.started",
                    tender_id=tender_id,
                    details={"bid_deadline": iso_utc(deadline), "instance": ctx.instance},
                    actor=actor,
                )
                return Claimed()
            status = await session.scalar(select(Tender.status).where(Tender.id == tender_id))
        if status is not TenderStatus.opening:
            return Nothing(status)
        taken = await session.scalar(
            update(Opening)
            .where(
                Opening.tender_id == tender_id,
                Opening.completed_at.is_(None),
                # Held by nobody (waiting for bidders), by this instance, or by a lapsed lease.
                Opening.lease_owner.is_(None)
                | (Opening.lease_owner == ctx.instance)
                | (Opening.lease_expires_at <= now),
            )
            .values(lease_owner=ctx.instance, lease_expires_at=now + ctx.lease)
            .returning(Opening.tender_id)
            .execution_options(synchronize_session=False)
        )
        if taken is not None:
            return Claimed()
        until = await session.scalar(
            select(Opening.lease_expires_at).where(Opening.tender_id == tender_id)
        )
        return HeldElsewhere(until or now)


async def renew_lease(ctx: Context, tender_id: uuid.UUID) -> bool:
    """Extend this instance's lease; False when it no longer holds the opening."""
    async with transaction(ctx) as session:
        renewed = await session.scalar(
            update(Opening)
            .where(
                Opening.tender_id == tender_id,
                Opening.lease_owner == ctx.instance,
                Opening.completed_at.is_(None),
            )
            .values(lease_expires_at=ctx.clock() + ctx.lease)
            .returning(Opening.tender_id)
            .execution_options(synchronize_session=False)
        )
    return renewed is not None


async def keep_lease(ctx: Context, tender_id: uuid.UUID) -> None:
    """Renew the lease until cancelled; return when another instance has taken it."""
    interval = ctx.lease.total_seconds() / 3
    while True:
        await asyncio.sleep(interval)
        try:
            if not await renew_lease(ctx, tender_id):
                return
        except Exception:  # the database may answer again in time: the lease has slack
            logger.warning("tender %s: renewing the opening lease failed", tender_id, exc_info=True)


async def release(
    session: AsyncSession, ctx: Context, tender_id: uuid.UUID, *, resume_at: datetime
) -> None:
    """Let the opening go until `resume_at`; LeaseLost unless this instance still holds it
    (a stale instance must not drop another's lease)."""
    released = await session.execute(
        update(Opening)
        .where(Opening.tender_id == tender_id, Opening.lease_owner == ctx.instance)
        .values(lease_owner=None, lease_expires_at=None, resume_at=resume_at)
        .execution_options(synchronize_session=False)
    )
    if released.rowcount != 1:  # type: ignore[attr-defined]
        raise ev.LeaseLost(f"tender {tender_id}: taken over meanwhile")


async def resume_at(session: AsyncSession, tender_id: uuid.UUID, at: datetime | None) -> None:
    """When the opening, held by nobody, must be looked at again (None: not before it is run)."""
    await session.execute(
        update(Opening)
        .where(Opening.tender_id == tender_id)
        .values(resume_at=at)
        .execution_options(synchronize_session=False)
    )
