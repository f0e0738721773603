"""Reading an opening: who may watch it, its events, record and results, and the sealed log."""

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from bidding.auth.models import Role, User
from bidding.crypto import merkle
from bidding.errors import Forbidden, Unauthorized
from bidding.opening import events as ev
from bidding.opening import payloads
from bidding.opening.exceptions import (
    LeafNotFound,
    LeavesNotPublished,
    LogNotSealed,
    NotScored,
    RecordNotPublished,
)
from bidding.opening.models import Opening, OpeningEvent
from bidding.tenders import service as tenders_service
from bidding.tenders.models import Bid, LogEntry, Tender, TenderStatus

FINISHED = (TenderStatus.opened, TenderStatus.failed)


async def is_participant(*, session: AsyncSession, tender: Tender, viewer: User | None) -> bool:
    """The tender's officers and supervisors, and the bidders that handed in a bid."""
    if viewer is None or viewer.organization_id is None:
        return False
    if viewer.role in (Role.officer, Role.supervisor):
        return viewer.organization_id == tender.organization_id
    if viewer.role is Role.bidder:
        bid = await session.scalar(
            select(Bid.id)
            .where(Bid.tender_id == tender.id, Bid.bidder_id == viewer.organization_id)
            .limit(1)
        )
        return bid is not None
    return False


async def check_watcher(*, session: AsyncSession, tender: Tender, viewer: User | None) -> None:
    """Refuse a viewer who may not watch the opening: participants, or anyone if it is public."""
    if tender.public_opening or await is_participant(session=session, tender=tender, viewer=viewer):
        return
    if viewer is None:
        raise Unauthorized("sign in to watch this opening: it is open to participants only")
    raise Forbidden("only the tender's officers, supervisors and bidders may watch this opening")


async def check_outcome_reader(
    *, session: AsyncSession, tender: Tender, viewer: User | None
) -> None:
    """The record and results: watchers during the opening, everyone once it has finished."""
    if tender.status not in FINISHED:
        await check_watcher(session=session, tender=tender, viewer=viewer)


async def watchable(
    *, session: AsyncSession, tender_id: uuid.UUID, viewer: User | None
) -> Tender | None:
    """The tender if the viewer may see it, in one query: its amendments are not loaded."""
    tender: Tender | None = await session.scalar(
        select(Tender)
        .where(Tender.id == tender_id, tenders_service.visible_to(viewer))
        .options(raiseload(Tender.amendments))
    )
    return tender


async def opening_of(*, session: AsyncSession, tender_id: uuid.UUID) -> Opening | None:
    """The tender's opening row, once the opening has started."""
    opening: Opening | None = await session.get(Opening, tender_id)
    return opening


async def first_event(
    *, session: AsyncSession, tender_id: uuid.UUID, type: str
) -> OpeningEvent | None:
    """The tender's first event of a type."""
    event: OpeningEvent | None = await session.scalar(
        select(OpeningEvent)
        .where(OpeningEvent.tender_id == tender_id, OpeningEvent.type == type)
        .order_by(OpeningEvent.seq)
        .limit(1)
    )
    return event


async def record(*, session: AsyncSession, tender: Tender) -> dict[str, Any]:
    """The signed opening record: {"record", "key_id", "signature", "confirmations"};
    Conflict until it is signed."""
    opening = await opening_of(session=session, tender_id=tender.id)
    if opening is None or opening.record is None:
        raise RecordNotPublished("the opening record is published when the opening ends")
    confirmed = await session.scalars(
        select(OpeningEvent)
        .where(OpeningEvent.tender_id == tender.id, OpeningEvent.type == ev.RECORD_CONFIRMED)
        .order_by(OpeningEvent.seq)
    )
    return {
        "record": json.loads(opening.record),
        "key_id": opening.record_key_id,
        "signature": opening.record_signature,
        # After the signature: each bidder's confirmation of it, as its event.
        "confirmations": [ev.envelope(event) for event in confirmed],
    }


async def results(*, session: AsyncSession, tender: Tender) -> dict[str, Any]:
    """The ranking once scores are computed, or why the opening failed; Conflict before."""
    failed = await first_event(session=session, tender_id=tender.id, type=ev.FAILED)
    if failed is not None:
        failure = ev.payload(failed, payloads.Failed)
        return {"status": "failed", "failure": failure.to_data(), "ranking": []}
    computed = await first_event(session=session, tender_id=tender.id, type=ev.SCORES_COMPUTED)
    if computed is None:
        raise NotScored("the bids have not been scored yet")
    scores = ev.payload(computed, payloads.ScoresComputed).to_data()
    drawn = await first_event(session=session, tender_id=tender.id, type=ev.COEFFICIENT_DRAWN)
    return {
        "status": tender.status.value,
        "method": scores["method"],
        "ranking": scores["ranking"],
        "working": scores["working"],
        "coefficient": None
        if drawn is None
        else ev.payload(drawn, payloads.CoefficientDrawn).to_data(),
    }


# --- the receipt log -----------------------------------------------------------------------


async def tree_head(*, session: AsyncSession, tender_id: uuid.UUID) -> payloads.LogSealed:
    """The signed tree head sealed at the deadline; Conflict before the log is sealed."""
    sealed = await first_event(session=session, tender_id=tender_id, type=ev.LOG_SEALED)
    if sealed is None:
        raise LogNotSealed("the log is sealed at the deadline, when the opening starts")
    return ev.payload(sealed, payloads.LogSealed)


async def _leaf_hashes(*, session: AsyncSession, tender_id: uuid.UUID, size: int) -> list[str]:
    rows = await session.scalars(
        select(LogEntry.leaf_hash)
        .where(LogEntry.tender_id == tender_id, LogEntry.position < size)
        .order_by(LogEntry.position)
    )
    return list(rows)


async def inclusion(
    *, session: AsyncSession, tender_id: uuid.UUID, leaf_hash: str
) -> dict[str, Any]:
    """The proof that a receipt's leaf is in the sealed log; NotFound when it is not."""
    head = (await tree_head(session=session, tender_id=tender_id)).tree_head
    size = head.tree_size
    leaves = await _leaf_hashes(session=session, tender_id=tender_id, size=size)
    try:
        index = leaves.index(leaf_hash)
    except ValueError:
        raise LeafNotFound("no receipt with this leaf hash is in the tender's sealed log") from None
    proof = merkle.inclusion_proof([bytes.fromhex(leaf) for leaf in leaves], index)
    return {
        "leaf_index": index,
        "tree_size": size,
        "root_hash": head.root_hash,
        "proof": [node.hex() for node in proof],
    }


async def leaves(
    *, session: AsyncSession, tender: Tender, start: int, limit: int
) -> dict[str, Any]:
    """The signed receipts of the sealed log, in order, once the opening has finished."""
    if tender.status not in FINISHED:
        raise LeavesNotPublished("the log's leaves are published when the opening ends")
    size = (await tree_head(session=session, tender_id=tender.id)).tree_head.tree_size
    entries = await session.scalars(
        select(LogEntry)
        .where(
            LogEntry.tender_id == tender.id,
            LogEntry.position >= start,
            LogEntry.position < size,
        )
        .order_by(LogEntry.position)
        .limit(limit)
    )
    return {
        "tree_size": size,
        "start": start,
        "leaves": [
            {
                "index": entry.position,
                "body": json.loads(entry.body),
                "leaf_hash": entry.leaf_hash,
                "key_id": entry.key_id,
                "signature": entry.signature,
            }
            for entry in entries
        ],
    }


# --- what the audit trail's anchors read of the openings -----------------------------------

# A tender's chain is anchored from its opening record on: the record is published in the
# transaction that gives the tender one of these statuses.
ANCHORED_TENDERS = (TenderStatus.opened, TenderStatus.failed)


async def recorded(session: AsyncSession, tender_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Of these tenders, those whose opening record is out (their chains may be anchored)."""
    found = await session.scalars(
        select(Tender.id).where(Tender.id.in_(tender_ids), Tender.status.in_(ANCHORED_TENDERS))
    )
    return set(found)


async def signed_records(
    session: AsyncSession, page_size: int
) -> AsyncIterator[tuple[uuid.UUID, str | None, str | None, str | None]]:
    """Each signed opening record: tender id, the record as stored, its key id and signature."""
    last: uuid.UUID | None = None
    while True:
        statement = select(
            Opening.tender_id, Opening.record, Opening.record_key_id, Opening.record_signature
        ).where(Opening.record.is_not(None))
        if last is not None:
            statement = statement.where(Opening.tender_id > last)
        rows = (await session.execute(statement.order_by(Opening.tender_id).limit(page_size))).all()
        for tender_id, text, key_id, signature in rows:
            yield tender_id, text, key_id, signature
        if len(rows) < page_size:
            return
        last = rows[-1][0]
