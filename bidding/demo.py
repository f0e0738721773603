"""Demo data for a first look: clearly labelled accounts and a tender whose deadline is near."""

import asyncio
import json
import logging
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.auth import bidder_keys
from bidding.auth import service as auth_service
from bidding.auth.models import Role, User
from bidding.auth.uscc import check_character
from bidding.crypto import age
from bidding.crypto.custody import load_or_create_secret_text
from bidding.db import utcnow
from bidding.errors import DomainError
from bidding.keys import PlatformKeys
from bidding.settings import Settings
from bidding.tenders import bids as bids_service
from bidding.tenders import service as tenders_service
from bidding.tenders import uploads
from bidding.tenders.blobs import BlobStore
from bidding.tenders.models import OpeningMode, Tender, TenderStatus
from bidding.tenders.schemas import TenderCreate

logger = logging.getLogger(__name__)

# Under example.com (RFC 2606), which takes no mail: nobody mistakes these for real people.
DEMO_DOMAIN = "demo.example.com"
DEADLINE_IN = timedelta(minutes=5)
# The bidder-mode tender closes a little after the first, so the two openings can be watched.
BIDDER_MODE_LATER = timedelta(minutes=2)


@dataclass(frozen=True)
class DemoAccount:
    """A demo sign-in, shown once when it is created."""

    email: str
    password: str
    role: Role
    organization: str


def _code(first17: str) -> str:
    return first17 + check_character(first17)


_BUYER = ("演示采购中心 Demo Procurement Centre", _code("12330100MB0000000"))
_BIDDERS = [
    ("演示建设有限公司 Demo Construction Ltd", _code("91330100MA0000001")),
    ("示例工程集团 Example Engineering Group", _code("91330100MA0000002")),
    ("样板路桥股份 Sample Roads & Bridges", _code("91330100MA0000003")),
    ("测试市政工程 Test Municipal Works", _code("91330100MA0000004")),
]


async def seed(
    *, session: AsyncSession, keys: PlatformKeys, settings: Settings
) -> list[DemoAccount]:
    """On an empty database, create the demo accounts and a published tender; else nothing."""
    if await session.scalar(select(func.count()).select_from(User)):
        return []
    accounts: list[DemoAccount] = []

    async def account(local: str, role: Role, organization: tuple[str, str]) -> User:
        password = secrets.token_urlsafe(12)
        user = await auth_service.create_user(
            session=session,
            email=f"{local}@{DEMO_DOMAIN}",
            password=password,
            display_name=f"Demo {role.value} ({local})",
            role=role,
            organization_name=organization[0],
            organization_code=organization[1],
            via="demo",
        )
        accounts.append(DemoAccount(user.email, password, role, organization[0]))
        return user

    officer = await account("officer", Role.officer, _BUYER)
    await account("supervisor", Role.supervisor, _BUYER)
    for number, company in enumerate(_BIDDERS, start=1):
        await account(f"bidder{number}", Role.bidder, company)

    period = _period(settings)
    deadline = utcnow() + max(DEADLINE_IN, period * 2)
    for draft in (_platform_tender(deadline), _bidder_mode_tender(deadline + BIDDER_MODE_LATER)):
        tender = await tenders_service.create(
            session=session,
            tender_create=draft,
            officer=officer,
            horizon=timedelta(days=settings.max_deadline_days),
        )
        await tenders_service.publish(
            session=session, tender=tender, master=keys.master, min_bidding_period=period
        )
    return accounts


_BID_FIELDS = [
    {"name": "price", "label": "报价 Price", "type": "decimal", "required": True},
    {
        "name": "duration_days",
        "label": "工期（天） Duration (days)",
        "type": "integer",
        "required": True,
        "min": "30",
        "max": "365",
    },
]


def _platform_tender(deadline: datetime) -> TenderCreate:
    return TenderCreate.model_validate(
        {
            "reference": f"DEMO-{deadline:%Y%m%d-%H%M%S}",
            "title": "演示：市政道路维修工程 Demo: municipal road repairs",
            "description": (
                "A demonstration tender: bids are sealed on the bidder's machine to the "
                "tender's published recipient (age1…), so nobody can read them before the deadline."
            ),
            "buyer_name": _BUYER[0],
            "ceiling_price": "1500000.00",
            "floor_price": "900000.00",
            "bid_deadline": deadline.isoformat(),
            "scoring": {
                "method": "benchmark",
                "coefficient_choices": ["0.01", "0.02", "0.03"],
                "trim_threshold": 5,
                "deduct_above": "1",
                "deduct_below": "0.5",
            },
            "bid_fields": _BID_FIELDS,
            "public_opening": True,
        }
    )


def _bidder_mode_tender(deadline: datetime) -> TenderCreate:
    return TenderCreate.model_validate(
        {
            "reference": f"DEMO-B-{deadline:%Y%m%d-%H%M%S}",
            "title": "演示：在线解密 · 校舍修缮 Demo: school repairs, opened by the bidders",
            "description": (
                "A demonstration of online decryption (在线解密): each bid is sealed to its "
                "bidder's own key, and to the tender's as a backup (双解密). In the decryption "
                "window each bidder reveals its bid's file key (bidding reveal); what is still "
                "sealed when the window closes is opened with the backup key."
            ),
            "buyer_name": _BUYER[0],
            "ceiling_price": "800000.00",
            "floor_price": "500000.00",
            "bid_deadline": deadline.isoformat(),
            "opening_mode": "bidder",
            "backup_decryption": True,
            "decryption_window_minutes": 2,
            "scoring": {"method": "comprehensive", "price_weight": "60"},
            "bid_fields": _BID_FIELDS,
            "public_opening": True,
        }
    )


def _period(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.min_bidding_period_seconds)


# --- demo bidders --------------------------------------------------------------------------

# Seconds before the deadline at which each demo bidder hands in its bid.
BID_LEADS = (150, 100, 60, 25)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _bid_form(rng: random.Random, tender: Tender) -> bytes:
    floor = Decimal(tender.floor_price or "0")
    ceiling = Decimal(tender.ceiling_price)
    cents = rng.randrange(int(floor * 100) + 1, int(ceiling * 100 * Decimal("0.97")))
    form = {"price": f"{Decimal(cents) / 100:.2f}", "duration_days": rng.randrange(90, 240)}
    return json.dumps(form, sort_keys=True).encode("utf-8")


async def run_bidders(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    keys: PlatformKeys,
    blobs: BlobStore,
    settings: Settings,
    leads: Sequence[float] = BID_LEADS,
) -> None:
    """Let the demo bidders seal and hand in bids shortly before each demo tender's deadline.

    They go through the same upload checks, service and blob store as a real upload. For the
    bidder-mode tender each seals to its organization's own key (kept in the data dir, so that
    `bidding reveal` can be tried with it) and to the tender's as the backup.
    """
    async with session_factory() as session:
        tenders = (
            await session.scalars(
                select(Tender)
                .where(
                    Tender.reference.startswith("DEMO-"), Tender.status == TenderStatus.published
                )
                .order_by(Tender.bid_deadline)
            )
        ).all()
        bidders = (
            await session.scalars(
                select(User)
                .where(User.email.like(f"bidder%@{DEMO_DOMAIN}"), User.role == Role.bidder)
                .order_by(User.email)
            )
        ).all()
    # One timeline for every tender, in time order: the bids go in one after another.
    plan = sorted(
        (tender.bid_deadline - timedelta(seconds=lead), number, str(tender.id), tender, bidder)
        for tender in tenders
        if tender.opening_recipient is not None
        for number, (bidder, lead) in enumerate(zip(bidders, leads, strict=False))
    )
    for at, _number, _tender_id, tender, bidder in plan:
        await asyncio.sleep(max(0.0, (at - utcnow()).total_seconds()))
        if utcnow() >= tender.bid_deadline:
            continue  # too late for this one (a restart near the deadline)
        await _bid(
            tender,
            bidder,
            session_factory=session_factory,
            keys=keys,
            blobs=blobs,
            settings=settings,
        )


def demo_identity_path(settings: Settings, bidder: User) -> Path:
    """Where a demo bidder organization's identity file is kept (mode 0600)."""
    return settings.data_dir / "demo-keys" / f"{bidder.email.partition('@')[0]}.key"


async def _own_recipient(
    bidder: User, *, session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> age.Recipient:
    path = demo_identity_path(settings, bidder)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = load_or_create_secret_text(path, generate=lambda: str(age.Identity.generate()))
    recipient = age.parse_identities(text)[0].recipient
    async with session_factory() as session, session.begin():
        await bidder_keys.register(session=session, bidder=bidder, recipient=str(recipient))
    return recipient


async def _bid(
    tender: Tender,
    bidder: User,
    *,
    session_factory: async_sessionmaker[AsyncSession],
    keys: PlatformKeys,
    blobs: BlobStore,
    settings: Settings,
) -> None:
    assert tender.opening_recipient is not None
    recipients = [age.Recipient.parse(tender.opening_recipient)]
    if tender.opening_mode is OpeningMode.bidder:
        own = await _own_recipient(bidder, session_factory=session_factory, settings=settings)
        recipients = [own, *recipients] if tender.backup_decryption else [own]
    rng = random.Random(f"{tender.id}{bidder.id}")  # noqa: S311 - demo prices, not secrets
    sealed = age.seal_bytes(_bid_form(rng, tender), recipients)
    upload = await uploads.receive(
        _chunks(sealed), staging=settings.data_dir / "staging", max_bytes=settings.max_bid_bytes
    )
    try:
        async with session_factory() as session, session.begin():
            await bids_service.submit(
                session=session,
                tender_id=tender.id,
                bidder=bidder,
                upload=upload,
                arrived_at=utcnow(),
                idempotency_key=f"demo-{tender.id}-{bidder.id}",
                key=keys.signing,
            )
            await asyncio.to_thread(blobs.put, upload.path, upload.sha256)
        logger.info("demo bidder %s handed in a sealed bid", bidder.email)
    except DomainError as exc:
        logger.warning("demo bidder %s could not bid: %s", bidder.email, exc.detail)
    finally:
        upload.path.unlink(missing_ok=True)
