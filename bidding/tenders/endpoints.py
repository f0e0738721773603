"""Tender HTTP endpoints: create, edit or amend, publish, cancel, list and read."""

import base64
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect

from bidding import security
from bidding.auth.dependencies import Bidder, Officer, OptionalUser
from bidding.crypto import age
from bidding.db import Session, iso_utc, utcnow
from bidding.errors import (
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from bidding.keys import Keys
from bidding.settings import AppSettings
from bidding.tenders import bids as bids_service
from bidding.tenders import service as tenders_service
from bidding.tenders import uploads
from bidding.tenders.dependencies import (
    BidArrivals,
    Blobs,
    Deadlines,
    ManagedTender,
    VisibleTender,
    VisibleTenderId,
)
from bidding.tenders.exceptions import BadLength, BidUnreadable, NoBid, UploadInterrupted
from bidding.tenders.models import Tender, TenderStatus
from bidding.tenders.schemas import (
    DocumentRead,
    TenderCancel,
    TenderCreate,
    TenderPage,
    TenderRead,
    TenderUpdate,
)

router = APIRouter(prefix="/tenders", tags=["tenders"])


_NOT_COLUMNS = {"organization", "server_time"}


async def _read_all(session: AsyncSession, tenders: Sequence[Tender]) -> list[TenderRead]:
    """Response bodies for tenders, with their organizations and the server's clock."""
    organizations = await tenders_service.organizations(
        session=session, ids={tender.organization_id for tender in tenders}
    )
    now = utcnow()
    names = TenderRead.model_fields.keys() - _NOT_COLUMNS
    return [
        TenderRead.model_validate(
            {name: getattr(tender, name) for name in names}
            | {"organization": organizations[tender.organization_id], "server_time": now}
        )
        for tender in tenders
    ]


async def _read_one(session: AsyncSession, tender: Tender) -> TenderRead:
    (body,) = await _read_all(session, [tender])
    return body


# Documented refusals; every one answers {"type", "detail"} (see bidding.errors).
Responses = dict[int | str, dict[str, Any]]
_OFFICER: Responses = {
    401: {"description": "not signed in"},
    403: {"description": "not an officer"},
}
_FOUND: Responses = {404: {"description": "no such tender, or a draft of another organization"}}
_MANAGE = (
    _OFFICER
    | _FOUND
    | {
        403: {"description": "not an officer of the tender's organization"},
        409: {"description": "the tender's status or deadline does not allow it"},
    }
)


def _reschedule(deadlines: Deadlines, background: BackgroundTasks, tender: Tender) -> None:
    """After the commit, have this instance's scheduler follow the tender's new deadline.

    Other instances notice on their next sync with the database.
    """
    if deadlines is not None:
        background.add_task(deadlines.deadline_changed, tender.id)


@router.post("", status_code=201, responses=_OFFICER | {409: {"description": "reference taken"}})
async def create_tender(
    tender_create: TenderCreate,
    session: Session,
    officer: Officer,
    request: Request,
    response: Response,
    settings: AppSettings,
) -> TenderRead:
    """Create a draft in the officer's organization."""
    tender = await tenders_service.create(
        session=session,
        tender_create=tender_create,
        officer=officer,
        horizon=timedelta(days=settings.max_deadline_days),
    )
    response.headers["Location"] = str(request.url_for("read_tender", tender_id=tender.id))
    return await _read_one(session, tender)


@router.get("")
async def list_tenders(
    session: Session,
    viewer: OptionalUser,
    status: TenderStatus | None = None,
    q: Annotated[
        str | None,
        # No NUL: PostgreSQL cannot compare with it (a 500) and SQLite's LIKE stopped at it.
        Query(max_length=200, pattern=r"^[^\x00]*$", description="words in the title or reference"),
    ] = None,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="only the tenders this organization runs")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TenderPage:
    """The tenders the caller may see, soonest deadline first."""
    tenders, total = await tenders_service.search(
        session=session,
        viewer=viewer,
        status=status,
        text=q.strip() if q else None,
        organization_id=organization_id,
        page=page,
        page_size=page_size,
    )
    items = await _read_all(session, tenders)
    return TenderPage(items=items, total=total, page=page, page_size=page_size)


@router.get("/{tender_id}", responses=_FOUND)
async def read_tender(tender: VisibleTender, session: Session) -> TenderRead:
    """One tender, with its amendments and the server's clock for a countdown."""
    return await _read_one(session, tender)


@router.patch("/{tender_id}", responses=_MANAGE)
async def update_tender(
    tender_update: TenderUpdate,
    tender: ManagedTender,
    officer: Officer,
    session: Session,
    background: BackgroundTasks,
    deadlines: Deadlines,
    settings: AppSettings,
) -> TenderRead:
    """Edit a draft, or amend a published tender (description, a later deadline)."""
    tender = await tenders_service.update_tender(
        session=session,
        tender=tender,
        tender_update=tender_update,
        officer=officer,
        horizon=timedelta(days=settings.max_deadline_days),
    )
    _reschedule(deadlines, background, tender)
    return await _read_one(session, tender)


@router.post("/{tender_id}/publish", responses=_MANAGE)
async def publish_tender(
    tender: ManagedTender,
    session: Session,
    keys: Keys,
    settings: AppSettings,
    background: BackgroundTasks,
    deadlines: Deadlines,
) -> TenderRead:
    """Publish a draft: bids can be sealed to its opening recipient from now on."""
    tender = await tenders_service.publish(
        session=session,
        tender=tender,
        master=keys.master,
        min_bidding_period=timedelta(seconds=settings.min_bidding_period_seconds),
    )
    _reschedule(deadlines, background, tender)
    return await _read_one(session, tender)


@router.post("/{tender_id}/cancel", responses=_MANAGE)
async def cancel_tender(
    tender_cancel: TenderCancel,
    tender: ManagedTender,
    session: Session,
    background: BackgroundTasks,
    deadlines: Deadlines,
) -> TenderRead:
    """Cancel a draft, or a published tender before its deadline, giving the reason."""
    tender = await tenders_service.cancel(
        session=session, tender=tender, reason=tender_cancel.reason
    )
    _reschedule(deadlines, background, tender)
    return await _read_one(session, tender)


# --- documents -----------------------------------------------------------------------------

_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself; its Content-Type is kept and served back.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_READ_BLOCK = 64 * 1024


@router.post(
    "/{tender_id}/documents",
    status_code=201,
    openapi_extra=_DOCUMENT_BODY,
    responses=_MANAGE | {413: {"description": "too large"}},
)
async def add_document(
    request: Request,
    tender: ManagedTender,
    officer: Officer,
    session: Session,
    settings: AppSettings,
    blobs: Blobs,
    name: Annotated[str, Query(max_length=1000, description="the file name bidders will see")],
    reason: Annotated[
        str,
        # No NUL: PostgreSQL cannot store it in the amendment (it was a 500).
        Query(max_length=2000, pattern=r"^[^\x00]*$", description="why it is added, if published"),
    ] = "",
) -> DocumentRead:
    """Attach a document to a draft, or to a published tender before its deadline (recorded
    as an amendment). Documents are public with the tender."""
    clean = tenders_service.document_name(name)
    tenders_service.check_document_allowed(tender)
    security.lift_body_limit(request)  # max_document_bytes is enforced while streaming
    _declared_length(request, settings.max_document_bytes, what="a document")
    # No database connection is held while the body streams in.
    await session.commit()
    try:
        upload = await uploads.receive(
            request.stream(),
            staging=settings.data_dir / "staging",
            max_bytes=settings.max_document_bytes,
            sealed=False,
            what="a document",
            idle_seconds=settings.upload_idle_seconds,
        )
    except ClientDisconnect:
        raise UploadInterrupted("the upload was interrupted") from None
    try:
        document = await tenders_service.add_document(
            session=session,
            tender=tender,
            officer=officer,
            name=clean,
            content_type=tenders_service.document_type(request.headers.get("content-type")),
            sha256=upload.sha256,
            size=upload.size,
            reason=reason.strip(),
        )
        await anyio.to_thread.run_sync(blobs.put, upload.path, upload.sha256)
    finally:
        upload.path.unlink(missing_ok=True)
    return DocumentRead.model_validate(document)


def _attachment(name: str) -> str:
    """A Content-Disposition that keeps a Chinese file name (RFC 6266 filename*)."""
    plain = (c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    fallback = "".join(plain)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/{tender_id}/documents/{document_id}",
    response_class=StreamingResponse,
    # Served with the media type it was uploaded as (a PDF as application/pdf), so any.
    responses=_FOUND
    | {200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def read_document(
    tender: VisibleTender, document_id: uuid.UUID, blobs: Blobs
) -> StreamingResponse:
    """Download a tender document; check it against the sha256 in the tender."""
    document = next((d for d in tender.documents if d.id == document_id), None)
    if document is None:
        raise NotFound(f"no document {document_id}")
    file = await anyio.to_thread.run_sync(blobs.open, document.sha256)

    def blocks() -> Iterator[bytes]:
        with file:
            while block := file.read(_READ_BLOCK):
                yield block

    return StreamingResponse(
        blocks(),
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size),
            "Content-Disposition": _attachment(document.name),
            "ETag": f'"{document.sha256}"',
            "X-Content-Type-Options": "nosniff",
            # Opened in a tab by mistake, a document still runs nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.delete("/{tender_id}/documents/{document_id}", status_code=204, responses=_MANAGE)
async def remove_document(tender: ManagedTender, document_id: uuid.UUID, session: Session) -> None:
    """Take a document off a draft."""
    await tenders_service.remove_document(session=session, tender=tender, document_id=document_id)


# --- sealed bids ---------------------------------------------------------------------------

_BID_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The sealed bid: an age v1 file encrypted to the tender's recipient.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying an upload with the same key returns the first receipt.",
    ),
]


def _declared_length(request: Request, limit: int, *, what: str = "a sealed bid") -> None:
    """Refuse a body whose declared length is already too large, before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return  # chunked: the limit is enforced while reading
    if not (declared.isascii() and declared.isdigit()):
        raise BadLength("Content-Length must be a non-negative integer")
    if int(declared) > limit:
        raise PayloadTooLarge(f"{what} may be at most {limit} bytes", limit=limit)


@router.post(
    "/{tender_id}/bids",
    status_code=201,
    openapi_extra=_BID_BODY,
    responses={
        200: {"description": "an upload retried with its Idempotency-Key"},
        **_FOUND,
        429: {"description": "too many uploads for this tender; see Retry-After"},
    },
)
async def submit_bid(
    request: Request,
    response: Response,
    tender_id: VisibleTenderId,
    bidder: Bidder,
    session: Session,
    keys: Keys,
    settings: AppSettings,
    limits: security.Limits,
    blobs: Blobs,
    arrivals: BidArrivals,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Hand in a sealed bid; it replaces the bidder's earlier one. Returns the signed receipt.

    The deadline is decided by the server's clock when the last byte of the upload arrives:
    an upload that starts before the deadline and ends after it is refused, one that ends
    before it is accepted however long it then waits for the log.
    """
    uploader = bidder.organization_id or bidder.id
    security.limit_submission(limits, uploader=uploader, tender_id=tender_id)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/octet-stream":
        raise UnsupportedMediaType("send the sealed file as application/octet-stream")
    security.lift_body_limit(request)  # max_bid_bytes is enforced while streaming
    _declared_length(request, settings.max_bid_bytes)
    # No database connection or lock is held while the body streams in, however slowly.
    await session.commit()
    try:
        upload = await uploads.receive(
            request.stream(),
            staging=settings.data_dir / "staging",
            max_bytes=settings.max_bid_bytes,
            idle_seconds=settings.upload_idle_seconds,
        )
    except ClientDisconnect:
        raise UploadInterrupted("the upload was interrupted") from None
    try:
        async with arrivals.turn(tender_id) as arrived_at:
            receipt, created = await bids_service.submit(
                session=session,
                tender_id=tender_id,
                bidder=bidder,
                upload=upload,
                arrived_at=arrived_at,
                idempotency_key=idempotency_key,
                key=keys.signing,
            )
            if created:
                # Stored before the commit: a receipt never names a blob that is not there.
                await anyio.to_thread.run_sync(blobs.put, upload.path, upload.sha256)
            # Committed within the turn: the next arrival, and the opening, come after it.
            await session.commit()
    finally:
        upload.path.unlink(missing_ok=True)
    if not created:
        response.status_code = 200
    return receipt


@router.delete("/{tender_id}/bids/mine", responses=_FOUND)
async def withdraw_bid(
    tender_id: VisibleTenderId,
    bidder: Bidder,
    session: Session,
    keys: Keys,
    arrivals: BidArrivals,
) -> dict[str, Any]:
    """Withdraw the bidder's bid before the deadline; returns the signed withdrawal receipt."""
    async with arrivals.turn(tender_id) as arrived_at:
        receipt = await bids_service.withdraw(
            session=session,
            tender_id=tender_id,
            bidder=bidder,
            arrived_at=arrived_at,
            key=keys.signing,
        )
        await session.commit()
    return receipt


@router.get("/{tender_id}/bids/mine", responses=_FOUND)
async def my_bid(tender_id: VisibleTenderId, bidder: Bidder, session: Session) -> dict[str, Any]:
    """The bidder's current bid, if any, and every receipt it was given for this tender."""
    bid, receipts = await bids_service.mine(session=session, tender_id=tender_id, bidder=bidder)
    current = None
    if bid is not None:
        current = {
            "id": str(bid.id),
            "version": bid.version,
            "sha256": bid.sha256,
            "size": bid.size,
            "received_at": iso_utc(bid.received_at),
            "status": bid.status.value,
        }
    return {"bid": current, "receipts": receipts}


@router.get("/{tender_id}/bids/mine/header", responses=_FOUND)
async def my_sealed_header(
    tender_id: VisibleTenderId, bidder: Bidder, session: Session, blobs: Blobs
) -> dict[str, Any]:
    """The age header of the bidder's current bid, base64: with its own identity the bidder
    computes the bid's file key and reveals it in the decryption window (bidder mode)."""
    bid, _receipts = await bids_service.mine(session=session, tender_id=tender_id, bidder=bidder)
    if bid is None:
        raise NoBid("you have no bid for this tender")
    try:
        header = await anyio.to_thread.run_sync(bids_service.sealed_header, blobs, bid.sha256)
    except (age.HeaderError, FileNotFoundError):
        # A stored bid the upload checks of today would refuse (a header over the limit, from
        # before they did), or a blob gone from the store: said plainly, not a 500.
        raise BidUnreadable(
            "the stored bid has no header that can be read; hand in the bid again while the "
            "tender takes bids, or ask the platform's operator",
        ) from None
    return {"bid_id": str(bid.id), "header": base64.b64encode(header).decode("ascii")}
