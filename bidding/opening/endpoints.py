"""Opening HTTP endpoints: state, events, record, results, and the sealed receipt log."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bidding.auth.dependencies import OptionalUser
from bidding.db import Session, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import service as opening_service
from bidding.tenders.dependencies import VisibleTender

router = APIRouter(prefix="/tenders", tags=["opening"])

Responses = dict[int | str, dict[str, Any]]
_WATCH: Responses = {
    401: {"description": "not signed in, and the opening is not public"},
    403: {"description": "not a participant of the tender"},
    404: {"description": "no such tender"},
}
_NOT_YET: Responses = {409: {"description": "not available yet at this stage of the opening"}}
_LOG: Responses = {404: {"description": "no such tender"}, **_NOT_YET}

MAX_EVENTS_PAGE = 1000
MAX_LEAVES_PAGE = 1000


@router.get("/{tender_id}/opening", responses=_WATCH)
async def read_opening(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """Where the opening stands: status, when it started and ended, the latest event's seq."""
    await opening_service.check_watcher(session=session, tender=tender, viewer=viewer)
    opening = await opening_service.opening_of(session=session, tender_id=tender.id)
    return {
        "tender_id": str(tender.id),
        "status": tender.status.value,
        "bid_deadline": iso_utc(tender.bid_deadline),
        "started_at": None if opening is None else iso_utc(opening.started_at),
        "completed_at": (
            None if opening is None or opening.completed_at is None
            else iso_utc(opening.completed_at)
        ),
        "last_seq": 0 if opening is None else opening.last_seq,
        "server_time": iso_utc(utcnow()),
    }  # fmt: skip


@router.get("/{tender_id}/opening/events", responses=_WATCH)
async def list_events(
    tender: VisibleTender,
    viewer: OptionalUser,
    session: Session,
    after: Annotated[int, Query(ge=0, description="return the events after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 500,
) -> dict[str, Any]:
    """The opening's events after a seq, in order: {seq, type, at, data}, as the live room."""
    await opening_service.check_watcher(session=session, tender=tender, viewer=viewer)
    page = await ev.after(session=session, tender_id=tender.id, seq=after, limit=limit + 1)
    more = len(page) > limit
    events = [ev.envelope(event) for event in page[:limit]]
    return {
        "events": events,
        "has_more": more,
        "next_after": events[-1]["seq"] if events else after,
    }


@router.get("/{tender_id}/opening/record", responses=_WATCH | _NOT_YET)
async def read_record(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """The signed opening record: canonical JSON of everything the opening decided."""
    await opening_service.check_outcome_reader(session=session, tender=tender, viewer=viewer)
    return await opening_service.record(session=session, tender=tender)


@router.get("/{tender_id}/results", responses=_WATCH | _NOT_YET)
async def read_results(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """The ranking with prices and scores, or why the opening failed."""
    await opening_service.check_outcome_reader(session=session, tender=tender, viewer=viewer)
    return await opening_service.results(session=session, tender=tender)


@router.get("/{tender_id}/log/head", responses=_LOG)
async def read_tree_head(tender: VisibleTender, session: Session) -> dict[str, Any]:
    """The receipt log's tree head, signed when the log was sealed at the deadline."""
    return await opening_service.tree_head(session=session, tender_id=tender.id)


@router.get("/{tender_id}/log/proof", responses=_LOG)
async def read_inclusion_proof(
    tender: VisibleTender,
    session: Session,
    leaf_hash: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="from the receipt")],
) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of a receipt's leaf under the sealed tree head."""
    return await opening_service.inclusion(
        session=session, tender_id=tender.id, leaf_hash=leaf_hash
    )


@router.get("/{tender_id}/log/leaves", responses=_LOG)
async def read_leaves(
    tender: VisibleTender,
    session: Session,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LEAVES_PAGE)] = MAX_LEAVES_PAGE,
) -> dict[str, Any]:
    """Every signed receipt of the sealed log, once the opening has ended: recompute the root."""
    return await opening_service.leaves(session=session, tender=tender, start=start, limit=limit)
