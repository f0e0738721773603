"""Dependencies that load a tender for the caller, or refuse as if it did not exist; and what
the tenders' endpoints use of what the platform runs: the blob store, the queue of arrivals,
whoever follows the deadlines."""

import uuid
from typing import Annotated, Protocol

from fastapi import Depends
from fastapi.requests import HTTPConnection
from sqlalchemy import select

from bidding.auth.dependencies import Officer, OptionalUser
from bidding.db import Session
from bidding.errors import Forbidden, NotFound
from bidding.tenders import service as tenders_service
from bidding.tenders.bids import Arrivals
from bidding.tenders.blobs import BlobStore
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


def blob_store(connection: HTTPConnection) -> BlobStore:
    """Dependency: where documents and sealed bids are kept."""
    blobs: BlobStore = connection.app.state.blobs
    return blobs


def arrivals(connection: HTTPConnection) -> Arrivals:
    """Dependency: the queue that gives each tender's arrivals their turn and their time."""
    queue: Arrivals = connection.app.state.arrivals
    return queue


class DeadlineWatcher(Protocol):
    """Whoever acts at a tender's deadline (the opening's scheduler): told, after the commit,
    that a tender's deadline may have changed (published, amended, cancelled)."""

    async def deadline_changed(self, tender_id: uuid.UUID) -> None:
        """Follow the tender's deadline as the database now has it."""


def deadline_watcher(connection: HTTPConnection) -> DeadlineWatcher | None:
    """Dependency: this instance's deadline watcher, when it runs one."""
    watcher: DeadlineWatcher | None = getattr(connection.app.state, "deadline_watcher", None)
    return watcher


Blobs = Annotated[BlobStore, Depends(blob_store)]
BidArrivals = Annotated[Arrivals, Depends(arrivals)]
Deadlines = Annotated[DeadlineWatcher | None, Depends(deadline_watcher)]
