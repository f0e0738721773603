"""Sealed bids: submission, replacement, withdrawal, and their signed receipts in the log.

Every accepted submission or withdrawal claims the next position of the tender's log with
one conditional UPDATE of the tender row; the deadline is then checked against the server's
clock, read once the row lock is held. The lock keeps positions gapless and in time order
under concurrent submissions, and makes the opening, which must update the same row, wait
for the bid to commit or fail. The audit entry comes last, under the same lock, so the
tender's audit chain adds no wait of its own.
"""

import contextlib
import json
import uuid
from datetime import datetime
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
from bidding.tenders.models import Bid, BidStatus, LogEntry, Tender, TenderStatus
from bidding.tenders.uploads import StagedUpload

Receipt = dict[str, Any]


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
    return Conflict(
        "the bid deadline has passed: bids are decided by the server's clock when they "
        "are committed",
        type="deadline_passed",
    )


async def _claim_position(*, session: AsyncSession, tender_id: uuid.UUID) -> tuple[int, datetime]:
    """The next log position and the time of the claim, if the tender takes bids now.

    The clock is read after the row lock is granted, not before: a bid that waited for the
    lock past the deadline is refused, and times follow log positions. Raises Conflict (the
    caller's transaction or savepoint must then roll the claim back).
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
    now = utcnow()
    if claimed is None:
        tender = await session.get(Tender, tender_id, populate_existing=True)
        # An upload still arriving when the opening began at the deadline is late, as the
        # README promises, whatever status the opening has put the tender in since.
        if tender and tender.status is not TenderStatus.cancelled and now >= tender.bid_deadline:
            raise _deadline_passed()
        status = tender.status.value if tender else "unknown"
        raise Conflict(f"the tender is {status}: it does not take bids", type="tender_not_open")
    size, deadline = claimed
    if now >= deadline:
        raise _deadline_passed()
    return size - 1, now


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
        raise Conflict(
            "this Idempotency-Key was used for a different file; use a new key for a new bid",
            type="idempotency_key_reused",
        )
    return receipt_of(entry)


async def submit(
    *,
    session: AsyncSession,
    tender_id: uuid.UUID,
    bidder: User,
    upload: StagedUpload,
    idempotency_key: str | None,
    key: SigningKey,
) -> tuple[Receipt, bool]:
    """Record a new version of the bidder's bid; (receipt, True), or the first receipt
    and False when the upload repeats an Idempotency-Key."""
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
            position, now = await _claim_position(session=session, tender_id=tender_id)
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
        actor=bidder,
    )
    return receipt, True


async def withdraw(
    *, session: AsyncSession, tender_id: uuid.UUID, bidder: User, key: SigningKey
) -> Receipt:
    """End the bidder's bid before the deadline; the withdrawal is receipted and logged."""
    bidder_id = bidder_of(bidder)
    # Claimed first: the bid is read under the row lock, so a submission racing this
    # withdrawal is either withdrawn too or comes after it. A refusal below rolls the
    # request back, claim included.
    position, now = await _claim_position(session=session, tender_id=tender_id)
    bid = await current_bid(session=session, tender_id=tender_id, bidder_id=bidder_id)
    if bid is None:
        raise Conflict("there is no bid to withdraw", type="no_bid")
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
        actor=bidder,
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
