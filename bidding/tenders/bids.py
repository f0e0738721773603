"""Sealed bids: submission, replacement, withdrawal, and their signed receipts in the log.

A bid is in time when its last byte arrived before the deadline, however long it then waits
for the log (README, "Sealed bids"). The moment of arrival is read once the upload is
complete, and the bid takes its turn in this process's queue of arrivals for the tender
(`Arrivals`), so that bids reach the log in the order they arrived and their receipt times
follow log positions. Every accepted submission or withdrawal then claims the next position
of the log with one conditional UPDATE of the tender row; the row lock keeps positions
gapless under concurrent submissions, and makes the opening, which must update the same row,
wait for the bid to commit or fail. The opening also waits for this process's queue to
empty before it starts (`Arrivals.drained`). The audit entry comes last, under the same lock,
so the tender's audit chain adds no wait of its own.
"""

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.auth.models import User
from bidding.crypto import age
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import make_receipt
from bidding.crypto.signing import SigningKey
from bidding.db import iso_utc, utcnow
from bidding.errors import Conflict, Forbidden
from bidding.tenders.blobs import BlobStore
from bidding.tenders.exceptions import (
    DeadlinePassed,
    IdempotencyKeyReused,
    NoBidToWithdraw,
    TenderNotOpen,
)
from bidding.tenders.models import Bid, BidStatus, LogEntry, Tender, TenderStatus
from bidding.tenders.uploads import StagedUpload

Receipt = dict[str, Any]

logger = logging.getLogger(__name__)

# The longest an opening waits for the bids that arrived before it: far beyond any wait for
# the log's lock, short enough that a stuck request cannot hold an opening up for long.
ARRIVALS_WAIT = timedelta(minutes=5)


class Arrivals:
    """This process's bids and withdrawals that have arrived but are not yet logged, per
    tender, in order of arrival.

    An upload enters its `turn` once its last byte is in: the moment of arrival is read
    then, and the turn comes when every arrival before it for the same tender has committed
    or failed. The opening waits for the queue to empty (`drained`) and reads its clock at
    that moment, so a bid that arrived before the deadline is never shut out by its wait
    for the log's lock, and one that arrives later is late.
    """

    def __init__(self) -> None:
        self._queues: dict[uuid.UUID, collections.deque[asyncio.Event]] = {}
        self._emptied: dict[uuid.UUID, asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def turn(self, tender_id: uuid.UUID) -> AsyncIterator[datetime]:
        """Arrive now, wait for the turn, and hold it; yields the moment of arrival."""
        # Nothing is awaited between reading the clock and joining the queue: the queue's
        # order is the order of arrival.
        arrived_at = utcnow()
        mine = asyncio.Event()
        queue = self._queues.setdefault(tender_id, collections.deque())
        if not queue:
            mine.set()
        queue.append(mine)
        try:
            await mine.wait()
            yield arrived_at
        finally:
            self._leave(tender_id, mine)

    def _leave(self, tender_id: uuid.UUID, mine: asyncio.Event) -> None:
        queue = self._queues[tender_id]
        was_first = queue[0] is mine
        queue.remove(mine)
        if not queue:
            del self._queues[tender_id]
            emptied = self._emptied.pop(tender_id, None)
            if emptied is not None:
                emptied.set()
        elif was_first:
            queue[0].set()

    def waiting(self, tender_id: uuid.UUID) -> int:
        """How many arrivals for the tender wait for their turn or hold it."""
        return len(self._queues.get(tender_id, ()))

    async def drained(self, tender_id: uuid.UUID, *, timeout: timedelta = ARRIVALS_WAIT) -> None:
        """Return once no arrival for the tender is queued, or after `timeout` (logged).

        The caller reads its clock right after: nothing is awaited between the last look at
        the queue and the return.
        """
        try:
            async with asyncio.timeout(timeout.total_seconds()):
                while tender_id in self._queues:
                    await self._emptied.setdefault(tender_id, asyncio.Event()).wait()
        except TimeoutError:
            logger.warning(
                "tender %s: %d bids that arrived in time were still not logged after %s",
                tender_id,
                self.waiting(tender_id),
                timeout,
            )


def receipt_of(entry: LogEntry) -> Receipt:
    """The receipt exactly as signed."""
    return {
        "body": json.loads(entry.body),
        "leaf_hash": entry.leaf_hash,
        "key_id": entry.key_id,
        "signature": entry.signature,
    }


def bidder_of(user: User) -> uuid.UUID:
    """The organization a bidder bids for."""
    if user.organization_id is None:
        raise Forbidden("a bidder account must belong to an organization to bid")
    return user.organization_id


def _deadline_passed() -> Conflict:
    return DeadlinePassed(
        "the bid deadline has passed: a bid is in time when its last byte arrives before "
        "the deadline",
    )


async def _claim_position(
    *, session: AsyncSession, tender_id: uuid.UUID, arrived_at: datetime
) -> tuple[int, datetime]:
    """The next log position and the receipt time, if the tender took bids when this one
    arrived.

    The deadline is judged by the moment of arrival, not by when the row lock was granted:
    a bid that waited for the lock past the deadline is in. The receipt time is the moment
    of arrival, unless the entry before it in the log has a later one (another instance's
    bid that arrived later but reached the log first): times never go backwards along the
    log, and stay before the deadline. Raises Conflict (the caller's transaction or
    savepoint must then roll the claim back).
    """
    claimed = (
        await session.execute(
            update(Tender)
            .where(Tender.id == tender_id, Tender.status == TenderStatus.published)
            # updated_at is kept as it is: a visible change at each bid would tell everyone
            # that, and when, somebody bid.
            .values(log_size=Tender.log_size + 1, updated_at=Tender.updated_at)
            .returning(Tender.log_size, Tender.bid_deadline)
        )
    ).first()
    if claimed is None:
        tender = await session.get(Tender, tender_id, populate_existing=True)
        # An upload still arriving when the opening began at the deadline is late, as the
        # README promises, whatever status the opening has put the tender in since.
        if (
            tender
            and tender.status is not TenderStatus.cancelled
            and arrived_at >= tender.bid_deadline
        ):
            raise _deadline_passed()
        status = tender.status.value if tender else "unknown"
        raise TenderNotOpen(f"the tender is {status}: it does not take bids")
    size, deadline = claimed
    if arrived_at >= deadline:
        raise _deadline_passed()
    position = size - 1
    # To the millisecond, as the receipt writes it: the row and the receipt say the same.
    at = arrived_at.replace(microsecond=arrived_at.microsecond // 1000 * 1000)
    if position > 0:
        before = await session.scalar(
            select(LogEntry.body).where(
                LogEntry.tender_id == tender_id, LogEntry.position == position - 1
            )
        )
        if before is not None:
            at = max(at, datetime.fromisoformat(json.loads(before)["received_at"]))
    return position, at


async def _append(
    *,
    session: AsyncSession,
    bid: Bid,
    kind: str,
    position: int,
    at: datetime,
    key: SigningKey,
    header_sha256: str | None = None,
) -> Receipt:
    body: dict[str, Any] = {
        "kind": kind,
        "tender_id": str(bid.tender_id),
        "bidder_id": str(bid.bidder_id),
        "bid_id": str(bid.id),
        "version": bid.version,
        "sha256": bid.sha256,
        "size": bid.size,
        "received_at": iso_utc(at),
    }
    if header_sha256 is not None:
        # A bid's receipt pins its age header: `bidding reveal` computes a file key only for
        # the header its own receipt names, never for one a platform serves in its place.
        body["header_sha256"] = header_sha256
    receipt = make_receipt(body, key)
    session.add(
        LogEntry(
            tender_id=bid.tender_id,
            position=position,
            bid_id=bid.id,
            bidder_id=bid.bidder_id,
            body=canonical_json(body).decode("utf-8"),
            leaf_hash=receipt["leaf_hash"],
            key_id=receipt["key_id"],
            signature=receipt["signature"],
        )
    )
    return receipt


async def current_bid(
    *, session: AsyncSession, tender_id: uuid.UUID, bidder_id: uuid.UUID
) -> Bid | None:
    """The bidder's bid that counts now, if any."""
    bid: Bid | None = await session.scalar(
        select(Bid).where(
            Bid.tender_id == tender_id,
            Bid.bidder_id == bidder_id,
            Bid.status == BidStatus.active,
        )
    )
    return bid


async def _replayed(
    *, session: AsyncSession, tender_id: uuid.UUID, bidder_id: uuid.UUID, key: str, sha256: str
) -> Receipt | None:
    """The first receipt of an upload retried with the same Idempotency-Key."""
    row = (
        await session.execute(
            select(Bid, LogEntry)
            .join(LogEntry, LogEntry.bid_id == Bid.id)
            .where(
                Bid.tender_id == tender_id,
                Bid.bidder_id == bidder_id,
                Bid.idempotency_key == key,
            )
            .order_by(LogEntry.position)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    bid, entry = row
    if bid.sha256 != sha256:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different file; use a new key for a new bid",
        )
    return receipt_of(entry)


async def submit(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    bidder: User,
    upload: StagedUpload,
    arrived_at: datetime,
    idempotency_key: str | None,
    key: SigningKey,
) -> tuple[Receipt, bool]:
    """Record a new version of the bidder's bid, whose last byte arrived at `arrived_at`;
    (receipt, True), or the first receipt and False when the upload repeats an
    Idempotency-Key."""
    bidder_id = bidder_of(bidder)
    if idempotency_key is not None:
        replayed = await _replayed(
            session=session,
            tender_id=tender_id,
            bidder_id=bidder_id,
            key=idempotency_key,
            sha256=upload.sha256,
        )
        if replayed is not None:
            return replayed, False
    # A savepoint only where a parallel retry can collide on the Idempotency-Key.
    guard = session.begin_nested() if idempotency_key is not None else contextlib.nullcontext()
    try:
        async with guard:
            position, now = await _claim_position(
                session=session, tender_id=tender_id, arrived_at=arrived_at
            )
            latest = await session.scalar(
                select(func.max(Bid.version)).where(
                    Bid.tender_id == tender_id, Bid.bidder_id == bidder_id
                )
            )
            if latest is not None:
                await session.execute(
                    update(Bid)
                    .where(
                        Bid.tender_id == tender_id,
                        Bid.bidder_id == bidder_id,
                        Bid.status == BidStatus.active,
                    )
                    .values(status=BidStatus.superseded)
                )
            bid = Bid(
                id=uuid.uuid4(),
                tender_id=tender_id,
                bidder_id=bidder_id,
                submitted_by_id=bidder.id,
                version=(latest or 0) + 1,
                sha256=upload.sha256,
                size=upload.size,
                received_at=now,
                status=BidStatus.active,
                idempotency_key=idempotency_key,
            )
            session.add(bid)
            receipt = await _append(
                session=session,
                bid=bid,
                kind="bid",
                position=position,
                at=now,
                key=key,
                header_sha256=upload.header_sha256,
            )
            await session.flush()
    except IntegrityError:
        # The same Idempotency-Key raced in from a parallel retry and won: answer as a
        # replay. Its log position was rolled back with the savepoint, so no gap remains.
        if idempotency_key is None:
            raise
        replayed = await _replayed(
            session=session,
            tender_id=tender_id,
            bidder_id=bidder_id,
            key=idempotency_key,
            sha256=upload.sha256,
        )
        if replayed is None:
            raise
        return replayed, False
    await audit.record(
        session=session,
        action="bid.submitted",
        tender_id=tender_id,
        details={
            "bid_id": str(bid.id),
            "bidder_id": str(bidder_id),
            "version": bid.version,
            "sha256": bid.sha256,
            "size": bid.size,
            "log_position": position,
        },
        actor=bidder.actor,
    )
    return receipt, True


async def withdraw(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    bidder: User,
    arrived_at: datetime,
    key: SigningKey,
) -> Receipt:
    """End the bidder's bid before the deadline (judged at `arrived_at`, when the request
    came); the withdrawal is receipted and logged."""
    bidder_id = bidder_of(bidder)
    # Claimed first: the bid is read under the row lock, so a submission racing this
    # withdrawal is either withdrawn too or comes after it. A refusal below rolls the
    # request back, claim included.
    position, now = await _claim_position(
        session=session, tender_id=tender_id, arrived_at=arrived_at
    )
    bid = await current_bid(session=session, tender_id=tender_id, bidder_id=bidder_id)
    if bid is None:
        raise NoBidToWithdraw("there is no bid to withdraw")
    bid.status = BidStatus.withdrawn
    receipt = await _append(
        session=session, bid=bid, kind="withdrawal", position=position, at=now, key=key
    )
    await audit.record(
        session=session,
        action="bid.withdrawn",
        tender_id=tender_id,
        details={
            "bid_id": str(bid.id),
            "bidder_id": str(bidder_id),
            "version": bid.version,
            "log_position": position,
        },
        actor=bidder.actor,
    )
    return receipt


async def mine(
    *, session: AsyncSession, tender_id: uuid.UUID, bidder: User
) -> tuple[Bid | None, list[Receipt]]:
    """The bidder's current bid and every receipt it was given for this tender, in order."""
    bidder_id = bidder_of(bidder)
    entries = await session.scalars(
        select(LogEntry)
        .where(LogEntry.tender_id == tender_id, LogEntry.bidder_id == bidder_id)
        .order_by(LogEntry.position)
    )
    bid = await current_bid(session=session, tender_id=tender_id, bidder_id=bidder_id)
    return bid, [receipt_of(entry) for entry in entries]


def sealed_header(blobs: BlobStore, digest: str) -> bytes:
    """The age header at the start of a stored bid (what a bidder needs for its file key)."""
    with blobs.open(digest) as stored:
        data = stored.read(age.MAX_HEADER_BYTES + 1)
    length = age.header_length(data)
    if length is None:
        raise age.HeaderError("the stored bid has no complete header")
    return data[:length]
