"""The audit trail over HTTP: a chain, page by page, for those who may read it; and the
anchors, signed heads of the chains, for everyone."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import anchors as audit_anchors
from bidding.audit import service as audit
from bidding.audit.exceptions import AuditSealed
from bidding.audit.schemas import AnchorPage, AuditAnchorRead, AuditEntryRead, AuditPage
from bidding.auth.dependencies import CurrentUser
from bidding.auth.models import Role, User
from bidding.db import Session
from bidding.errors import Forbidden, NotFound
from bidding.tenders import service as tenders_service
from bidding.tenders.models import Tender, TenderStatus

router = APIRouter(prefix="/audit", tags=["audit"])

MAX_PAGE = 1000


async def readable_chain(
    *, session: AsyncSession, viewer: User, tender_id: uuid.UUID | None
) -> str:
    """The chain the viewer asks for, if they may read it: the platform's for administrators;
    a tender's for administrators and its own officers and supervisors, once bids are public."""
    if tender_id is None:
        if viewer.role is not Role.admin:
            raise Forbidden("the platform's audit trail is for administrators")
        return audit.PLATFORM_CHAIN
    tender: Tender | None
    if viewer.role is Role.admin:
        tender = await session.get(Tender, tender_id)
    else:
        tender = await tenders_service.get(session=session, tender_id=tender_id, viewer=viewer)
    if tender is None:
        raise NotFound(f"no tender {tender_id}")
    own = viewer.role in (Role.officer, Role.supervisor) and (
        viewer.organization_id == tender.organization_id
    )
    if viewer.role is not Role.admin and not own:
        raise Forbidden(
            "a tender's audit trail is for administrators and its officers and supervisors"
        )
    if tender.published_at is not None and tender.status in (
        TenderStatus.published,
        TenderStatus.cancelled,
    ):
        # Its bids are in it: who bid, when, how large. Nobody may learn that before the
        # opening lists them, and a tender cancelled before then never does.
        raise AuditSealed(
            "a published tender's audit trail is readable from its opening on: before, it "
            "would tell who bid",
        )
    return audit.tender_chain(tender.id)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in"},
    403: {"description": "not an administrator, nor an officer or supervisor of the tender"},
    404: {"description": "no such tender"},
    409: {"description": "the tender's bids are not public yet"},
}


@router.get("", responses=_RESPONSES)
async def read_audit_trail(
    viewer: CurrentUser,
    session: Session,
    tender_id: Annotated[
        uuid.UUID | None, Query(description="the tender's chain; without it, the platform's")
    ] = None,
    # Positions are 64-bit: a larger one would reach the database and fail there (a 500).
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="the entries after this position")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> AuditPage:
    """One chain of the audit trail in order: accounts and administration (the platform's, for
    administrators), or a tender's (for administrators and the tender's officers and
    supervisors, from its opening on). Each entry carries its hashes: recompute them to check
    the chain, as `bidding audit verify` does."""
    chain = await readable_chain(session=session, viewer=viewer, tender_id=tender_id)
    page = await audit.after(session=session, chain=chain, position=after, limit=limit + 1)
    entries = [AuditEntryRead.model_validate(audit.envelope(entry)) for entry in page[:limit]]
    return AuditPage(
        chain=chain,
        entries=entries,
        has_more=len(page) > limit,
        next_after=entries[-1].position if entries else after,
    )


@router.get("/anchors", responses={404: {"description": "no such tender"}})
async def read_anchors(
    session: Session,
    tender_id: Annotated[
        uuid.UUID | None, Query(description="a tender's chain only; without it, every chain")
    ] = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="the anchors after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> AnchorPage:
    """The chains' heads signed by the platform, in the order they were signed, for anyone
    to keep: a chain rewritten later contradicts them (`bidding audit verify --anchors`).
    The platform's chain is anchored every hour it moved; a tender's only from its opening
    record on (the record itself carries the chain's head then), since before, the growth
    of its chain would tell that somebody bid."""
    chain = None
    if tender_id is not None:
        if await tenders_service.get(session=session, tender_id=tender_id, viewer=None) is None:
            raise NotFound(f"no tender {tender_id}")
        chain = audit.tender_chain(tender_id)
    page = await audit_anchors.after(session=session, position=after, limit=limit + 1, chain=chain)
    anchors = [AuditAnchorRead.model_validate(anchor.to_dict()) for anchor in page[:limit]]
    return AnchorPage(
        anchors=anchors,
        has_more=len(page) > limit,
        next_after=anchors[-1].id if anchors else after,
    )
