"""Tender HTTP endpoints: create, edit or amend, publish, cancel, list and read."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.dependencies import Officer, OptionalUser
from bidding.db import get_session, utcnow
from bidding.keys import PlatformKeys, get_platform_keys
from bidding.settings import Settings, get_settings
from bidding.tenders import service as tenders_service
from bidding.tenders.dependencies import ManagedTender, VisibleTender
from bidding.tenders.models import Tender, TenderStatus
from bidding.tenders.schemas import (
    TenderCancel,
    TenderCreate,
    TenderPage,
    TenderRead,
    TenderUpdate,
)

router = APIRouter(prefix="/tenders", tags=["tenders"])

Session = Annotated[AsyncSession, Depends(get_session)]


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


@router.post("", status_code=201, responses=_OFFICER | {409: {"description": "reference taken"}})
async def create_tender(
    tender_create: TenderCreate,
    session: Session,
    officer: Officer,
    request: Request,
    response: Response,
) -> TenderRead:
    """Create a draft in the officer's organization."""
    tender = await tenders_service.create(
        session=session, tender_create=tender_create, officer=officer
    )
    response.headers["Location"] = str(request.url_for("read_tender", tender_id=tender.id))
    return await _read_one(session, tender)


@router.get("")
async def list_tenders(
    session: Session,
    viewer: OptionalUser,
    status: TenderStatus | None = None,
    q: Annotated[
        str | None, Query(max_length=200, description="words in the title or reference")
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
    tender_update: TenderUpdate, tender: ManagedTender, officer: Officer, session: Session
) -> TenderRead:
    """Edit a draft, or amend a published tender (description, a later deadline)."""
    tender = await tenders_service.update_tender(
        session=session, tender=tender, tender_update=tender_update, officer=officer
    )
    return await _read_one(session, tender)


@router.post("/{tender_id}/publish", responses=_MANAGE)
async def publish_tender(
    tender: ManagedTender,
    session: Session,
    keys: Annotated[PlatformKeys, Depends(get_platform_keys)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> TenderRead:
    """Publish a draft: bids can be sealed to its opening recipient from now on."""
    tender = await tenders_service.publish(
        session=session,
        tender=tender,
        master=keys.master,
        min_bidding_period=timedelta(seconds=settings.min_bidding_period_seconds),
    )
    return await _read_one(session, tender)


@router.post("/{tender_id}/cancel", responses=_MANAGE)
async def cancel_tender(
    tender_cancel: TenderCancel, tender: ManagedTender, session: Session
) -> TenderRead:
    """Cancel a draft, or a published tender before its deadline, giving the reason."""
    tender = await tenders_service.cancel(
        session=session, tender=tender, reason=tender_cancel.reason
    )
    return await _read_one(session, tender)
