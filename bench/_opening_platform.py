"""The platform of bench/opening.py: a real database, a published tender and its sealed bids.

Built in-process through the same code a server runs: the migrations, the tender service
(create + publish with the platform's master key), and for every bid the upload checks, the
bid service and the blob store, as bidding/demo.py's bidders hand theirs in (not over HTTP).
The accounts alone are written directly: the service would spend an Argon2 hash on each of
up to a thousand bidders, and nobody signs in here.
"""

import contextlib
import io
import json
import secrets
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rush import add_accounts, postgres_database
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bidding import migrations
from bidding.auth.models import User
from bidding.auth.passwords import hash_password
from bidding.crypto import age
from bidding.db import create_engine, create_session_factory, utcnow
from bidding.keys import PlatformKeys, load_platform_keys
from bidding.opening import secrets as opening_secrets
from bidding.opening.models import Opening, OpeningEvent
from bidding.rules.terms import Terms
from bidding.settings import Settings
from bidding.tenders import bids as bids_service
from bidding.tenders import service as tenders_service
from bidding.tenders import uploads
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.models import Tender, TenderStatus
from bidding.tenders.schemas import TenderCreate

CEILING = Decimal("1000000.00")
DOCUMENT_NAME = "documents/technical-proposal.bin"


@dataclass(frozen=True)
class SealedBid:
    """A bid as its receipt names it, and where its sealed file lies."""

    sha256: str
    size: int
    path: Path


@dataclass
class Platform:
    """Everything an opening of the bench's tender needs, and the bids it will open."""

    backend: str
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    keys: PlatformKeys
    blobs: FilesystemBlobStore
    tender_id: uuid.UUID
    identity: age.Identity
    terms: Terms
    bids: list[SealedBid]
    plaintext_bytes: int
    setup_seconds: float

    @property
    def sealed_bytes(self) -> int:
        return sum(bid.size for bid in self.bids)


def bid_plaintext(price: Decimal, size: int) -> bytes:
    """A valid bid of exactly `size` bytes: a ZIP of bid.json and a random stored document."""

    def archive(document: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as out:
            out.writestr("bid.json", json.dumps({"price": f"{price:.2f}"}))
            out.writestr(DOCUMENT_NAME, document)
        return buffer.getvalue()

    # Stored entries: the archive's overhead does not depend on the document's size.
    padding = size - len(archive(b""))
    if padding < 0:
        raise ValueError(f"a bid form takes more than {size} bytes")
    plaintext = archive(secrets.token_bytes(padding))
    assert len(plaintext) == size
    return plaintext


async def _accounts(
    session_factory: async_sessionmaker[AsyncSession], bidders: int
) -> tuple[User, list[User]]:
    """An officer and `bidders` bidders, each of its own organization."""
    password_hash = hash_password(secrets.token_urlsafe(16))
    async with session_factory() as session, session.begin():
        users = await add_accounts(
            session, bidders=bidders, label="Opening", password_hash=password_hash
        )
    return users[0], users[1:]


async def _publish(
    session_factory: async_sessionmaker[AsyncSession], keys: PlatformKeys, officer: User
) -> Tender:
    """A tender published through the service, taking bids until its deadline is moved."""
    draft = TenderCreate.model_validate(
        {
            "reference": f"OPEN-{secrets.token_hex(4)}",
            "title": "Opening bench: many large bids at one deadline",
            "buyer_name": "Opening Bench Buyer",
            "ceiling_price": str(CEILING),
            "bid_deadline": (utcnow() + timedelta(days=1)).isoformat(),
            "scoring": {"method": "lowest_price"},
        }
    )
    async with session_factory() as session, session.begin():
        tender = await tenders_service.create(
            session=session,
            tender_create=draft,
            officer=officer,
            horizon=timedelta(days=Settings().max_deadline_days),
        )
        return await tenders_service.publish(
            session=session, tender=tender, master=keys.master, min_bidding_period=timedelta(0)
        )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _hand_in(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    keys: PlatformKeys,
    blobs: FilesystemBlobStore,
    settings: Settings,
    tender: Tender,
    bidders: list[User],
    size: int,
) -> list[SealedBid]:
    """Each bidder seals a bid to the tender and hands it in, as the demo bidders do."""
    assert tender.opening_recipient is not None
    recipient = age.Recipient.parse(tender.opening_recipient)
    staging = settings.data_dir / "staging"
    handed_in = []
    for number, bidder in enumerate(bidders):
        price = CEILING - Decimal(number + 1) * 37
        sealed = age.seal_bytes(bid_plaintext(price, size), [recipient])
        upload = await uploads.receive(
            _chunks(sealed), staging=staging, max_bytes=settings.max_bid_bytes
        )
        try:
            async with session_factory() as session, session.begin():
                await bids_service.submit(
                    session=session,
                    tender_id=tender.id,
                    bidder=bidder,
                    upload=upload,
                    arrived_at=utcnow(),
                    idempotency_key=None,
                    key=keys.signing,
                )
            blobs.put(upload.path, upload.sha256)
        finally:
            upload.path.unlink(missing_ok=True)
        handed_in.append(SealedBid(upload.sha256, upload.size, blobs.path(upload.sha256)))
    return handed_in


@contextlib.asynccontextmanager
async def platform(
    folder: Path, *, backend: str, postgres: str, bids: int, size: int
) -> AsyncIterator[Platform]:
    """A fresh platform in `folder` (and a fresh PostgreSQL database), torn down afterwards."""
    start = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        database_url = None
        if backend == "postgresql":
            database_url = await stack.enter_async_context(postgres_database(postgres))
        settings = Settings(data_dir=folder / "data", database_url=database_url, demo=False)
        settings.data_dir.mkdir()
        engine = create_engine(settings.resolved_database_url)
        stack.push_async_callback(engine.dispose)
        await migrations.upgrade(engine)
        session_factory = create_session_factory(engine)
        keys = load_platform_keys(settings)
        blobs = FilesystemBlobStore(settings.data_dir / "blobs")
        officer, bidders = await _accounts(session_factory, bids)
        tender = await _publish(session_factory, keys, officer)
        handed_in = await _hand_in(
            session_factory=session_factory,
            keys=keys,
            blobs=blobs,
            settings=settings,
            tender=tender,
            bidders=bidders,
            size=size,
        )
        yield Platform(
            backend=backend,
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            keys=keys,
            blobs=blobs,
            tender_id=tender.id,
            identity=opening_secrets.opening_identity(master=keys.master, tender=tender),
            terms=tender.terms,
            bids=handed_in,
            plaintext_bytes=size,
            setup_seconds=time.perf_counter() - start,
        )


async def arm(platform: Platform, *, lead: timedelta) -> datetime:
    """Make the tender published again with its deadline `lead` from now; the deadline stored.

    Undoes a previous opening (its row and events), so every opening of the bench opens the
    same bids from the same files. The bench's own shortcut: no service moves a deadline back
    or reopens a tender.
    """
    tender_id = platform.tender_id
    async with platform.session_factory() as session, session.begin():
        await session.execute(delete(OpeningEvent).where(OpeningEvent.tender_id == tender_id))
        await session.execute(delete(Opening).where(Opening.tender_id == tender_id))
        await session.execute(
            update(Tender)
            .where(Tender.id == tender_id)
            .values(status=TenderStatus.published, bid_deadline=utcnow() + lead)
        )
        deadline = await session.scalar(select(Tender.bid_deadline).where(Tender.id == tender_id))
    assert deadline is not None
    return deadline
