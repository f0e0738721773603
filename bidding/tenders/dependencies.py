"""Dependencies that load a tender for the caller, or refuse as if it did not exist."""

import uuid
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select

from bidding.auth.dependencies import Officer, OptionalUser
from bidding.db import Session
from bidding.errors import Forbidden, NotFound
from bidding.tenders import service as tenders_service
from bidding.tenders.models import Tender


async def valid_tender_id(
    tender_id: uuid.UUID,
    session: Session,
    viewer: OptionalUser,
) -> Tender:
    """The tender the caller may read; 404 also for drafts of other organizations."""
    tender = await tenders_service.get(session=session, tender_id=tender_id, viewer=viewer)
    if tender is None:
        # The same answer for "absent" and "not yours": a draft's existence is not public.
        raise NotFound(f"no tender {tender_id}")
    return tender


async def managed_tender(
    officer: Officer, tender: Annotated[Tender, Depends(valid_tender_id)]
) -> Tender:
    """The tender, if the caller is an officer of the organization that runs it."""
    # The role is checked first, so other roles learn nothing about which tenders exist.
    if tender.organization_id != officer.organization_id:
        raise Forbidden("only officers of the tender's organization can manage it")
    return tender


async def visible_tender_id(
    tender_id: uuid.UUID, session: Session, viewer: OptionalUser
) -> uuid.UUID:
    """The id of a tender the caller may read, loading nothing else; 404 as valid_tender_id."""
    found: uuid.UUID | None = await session.scalar(
        select(Tender.id).where(Tender.id == tender_id, tenders_service.visible_to(viewer))
    )
    if found is None:
        raise NotFound(f"no tender {tender_id}")
    return found


VisibleTender = Annotated[Tender, Depends(valid_tender_id)]
# For the bid endpoints, on the deadline rush's hot path: the claim re-checks the status.
VisibleTenderId = Annotated[uuid.UUID, Depends(visible_tender_id)]
ManagedTender = Annotated[Tender, Depends(managed_tender)]
