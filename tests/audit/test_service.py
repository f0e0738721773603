"""The chains themselves: numbering, links and the hash as specified, a rollback that leaves
nothing, concurrent appends that stay gapless, and every kind of tampering found by verify."""

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.audit import service as audit
from bidding.audit.models import AuditChain, AuditEntry
from bidding.auth.models import Role
from bidding.crypto.canonical import canonical_json
from bidding.db import create_session_factory, utcnow
from tests.factories import PASSWORD, create_user
from tests.tenders.test_bid_concurrency import published_tender, upload
from tests.tenders.test_bids import sealed

TENDER = uuid.UUID("7169926e-5b0e-4b5c-9a57-64d1f0c3a0b1")
CHAIN = audit.tender_chain(TENDER)


async def chain_of(session: AsyncSession, chain: str) -> list[AuditEntry]:
    rows = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.chain == chain)
        .order_by(AuditEntry.position)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def independent_hash(entry: AuditEntry) -> str:
    """The documented formula, written out again here so that a change to it is caught."""
    actor = None
    if entry.actor_user_id is not None:
        actor = {
            "user_id": str(entry.actor_user_id),
            "role": entry.actor_role,
            "organization_id": str(entry.actor_organization_id),
        }
    body = {
        "chain": entry.chain,
        "position": entry.position,
        "at": entry.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "action": entry.action,
        "tender_id": None if entry.tender_id is None else str(entry.tender_id),
        "details": entry.details,
    }
    return hashlib.sha256(bytes.fromhex(entry.prev_hash) + canonical_json(body)).hexdigest()


class TestRecord:
    async def test_each_chain_is_numbered_from_one_and_linked_by_the_documented_hash(
        self, session: AsyncSession
    ) -> None:
        other = uuid.uuid4()
        for number in range(3):
            await audit.record(session=session, action="auth.signed_in", details={"n": number})
            await audit.record(session=session, action="tender.edited", tender_id=TENDER)
        await audit.record(session=session, action="tender.created", tender_id=other)

        for chain, size in ((audit.PLATFORM_CHAIN, 3), (CHAIN, 3), (audit.tender_chain(other), 1)):
            entries = await chain_of(session, chain)
            assert [entry.position for entry in entries] == list(range(1, size + 1))
            links = [audit.GENESIS] + [entry.entry_hash for entry in entries[:-1]]
            assert [entry.prev_hash for entry in entries] == links
            assert [entry.entry_hash for entry in entries] == [
                independent_hash(entry) for entry in entries
            ]
            assert [entry.at for entry in entries] == sorted(entry.at for entry in entries)
            head = await session.get(AuditChain, chain, populate_existing=True)
            assert head is not None
            assert (head.size, head.head_hash) == (size, entries[-1].entry_hash)
        assert {entry.tender_id for entry in await chain_of(session, CHAIN)} == {TENDER}
        verification = await audit.verify(session=session)
        assert verification.broken == []

    async def test_the_actor_is_the_sessions_user_unless_a_service_names_one(
        self, session: AsyncSession
    ) -> None:
        officer = await create_user(session, role=Role.officer)
        admin = await create_user(session, role=Role.admin)
        unnamed = await audit.record(session=session, action="tender.published", tender_id=TENDER)
        audit.act_as(session, officer.actor)
        acting = await audit.record(session=session, action="tender.published", tender_id=TENDER)
        named = await audit.record(session=session, action="auth.signed_in", actor=admin.actor)
        nobody = await audit.record(session=session, action="opening.started", actor=None)

        assert (unnamed.actor_user_id, unnamed.actor_role) == (None, None)
        assert (acting.actor_user_id, acting.actor_role, acting.actor_organization_id) == (
            officer.id,
            "officer",
            officer.organization_id,
        )
        assert (named.actor_user_id, named.actor_role, named.actor_organization_id) == (
            admin.id,
            "admin",
            None,
        )
        assert nobody.actor_user_id is None
        assert (await audit.verify(session=session)).broken == []

    async def test_an_action_rolled_back_leaves_no_entry_and_no_gap(
        self, session: AsyncSession
    ) -> None:
        await audit.record(session=session, action="tender.created", tender_id=TENDER)
        savepoint = await session.begin_nested()
        await audit.record(session=session, action="tender.published", tender_id=TENDER)
        await savepoint.rollback()
        await audit.record(session=session, action="tender.cancelled", tender_id=TENDER)

        entries = await chain_of(session, CHAIN)
        assert [(e.position, e.action) for e in entries] == [
            (1, "tender.created"),
            (2, "tender.cancelled"),
        ]
        assert (await audit.verify(session=session)).broken == []

    async def test_details_that_have_no_canonical_json_are_refused_and_nothing_is_recorded(
        self, session: AsyncSession
    ) -> None:
        with pytest.raises(TypeError, match="float"):
            await audit.record(session=session, action="bid.submitted", details={"size": 1.5})
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
        assert count == 0


# --- tampering -----------------------------------------------------------------------------


@pytest.fixture
async def tamperable(session: AsyncSession, backend: str) -> AsyncSession:
    """Two chains, and the database's guard off, as an administrator with rights would have it
    (inside the test's transaction, so it is back on afterwards)."""
    for number in range(4):
        await audit.record(session=session, action="auth.signed_in", details={"n": number})
    for number in range(5):
        details = {"bid_id": str(uuid.uuid4()), "sha256": f"{number:064x}", "size": number}
        await audit.record(
            session=session, action="bid.submitted", tender_id=TENDER, details=details
        )
    if backend == "postgresql":
        await session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
    return session


def at(chain: str, position: int) -> Any:
    return (AuditEntry.chain == chain) & (AuditEntry.position == position)


async def _forge(session: AsyncSession, position: int, prev_hash: str, *, rehash: bool) -> None:
    forged = AuditEntry(
        chain=CHAIN,
        position=position,
        at=utcnow(),
        action="bid.withdrawn",
        tender_id=TENDER,
        details={"bid_id": str(uuid.uuid4())},
        prev_hash=prev_hash,
    )
    forged.entry_hash = audit.entry_hash(prev_hash, audit.content(forged)) if rehash else "f" * 64
    values = {column.name: getattr(forged, column.name) for column in AuditEntry.__table__.columns}
    await session.execute(insert(AuditEntry).values(**values))


async def _renumber(session: AsyncSession, *, from_position: int, by: int) -> None:
    later = (AuditEntry.chain == CHAIN) & (AuditEntry.position >= from_position)
    await session.execute(update(AuditEntry).where(later).values(position=-AuditEntry.position))
    await session.execute(
        update(AuditEntry)
        .where((AuditEntry.chain == CHAIN) & (AuditEntry.position < 0))
        .values(position=-AuditEntry.position + by)
    )


async def _hash_of(session: AsyncSession, position: int) -> str:
    found = await session.scalar(select(AuditEntry.entry_hash).where(at(CHAIN, position)))
    assert found is not None
    return found


async def edit_details(session: AsyncSession) -> None:
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 3)).values(details={"sha256": "0" * 64, "size": 2})
    )


async def edit_actor(session: AsyncSession) -> None:
    await session.execute(
        update(AuditEntry)
        .where(at(audit.PLATFORM_CHAIN, 2))
        .values(actor_user_id=uuid.uuid4(), actor_role="admin")
    )


async def edit_time(session: AsyncSession) -> None:
    moved = (await chain_of(session, CHAIN))[3].at - timedelta(hours=1)
    await session.execute(update(AuditEntry).where(at(CHAIN, 4)).values(at=moved))


async def delete_one(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 2)))


async def delete_the_last(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 5)))


async def delete_and_close_the_gap(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 2)))
    await _renumber(session, from_position=3, by=-1)
    await session.execute(update(AuditChain).where(AuditChain.chain == CHAIN).values(size=4))


async def swap_two(session: AsyncSession) -> None:
    await session.execute(update(AuditEntry).where(at(CHAIN, 2)).values(position=-1))
    await session.execute(update(AuditEntry).where(at(CHAIN, 3)).values(position=2))
    await session.execute(update(AuditEntry).where(at(CHAIN, -1)).values(position=3))


async def forge_at_the_end(session: AsyncSession) -> None:
    await _forge(session, 6, await _hash_of(session, 5), rehash=True)


async def forge_at_the_end_badly(session: AsyncSession) -> None:
    await _forge(session, 6, "e" * 64, rehash=False)


async def forge_in_the_middle(session: AsyncSession) -> None:
    prev = await _hash_of(session, 2)
    await _renumber(session, from_position=3, by=1)
    await _forge(session, 3, prev, rehash=True)


async def edit_and_rehash(session: AsyncSession) -> None:
    entry = (await chain_of(session, CHAIN))[2]
    entry.details = {"sha256": "0" * 64, "size": 2}
    new_hash = audit.entry_hash(entry.prev_hash, audit.content(entry))
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 3)).values(details=entry.details, entry_hash=new_hash)
    )
    session.expunge_all()


async def edit_and_rehash_the_last(session: AsyncSession) -> None:
    entry = (await chain_of(session, CHAIN))[4]
    entry.details = {"sha256": "0" * 64, "size": 4}
    new_hash = audit.entry_hash(entry.prev_hash, audit.content(entry))
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 5)).values(details=entry.details, entry_hash=new_hash)
    )
    session.expunge_all()


async def rewrite_from(session: AsyncSession, chain: str, position: int) -> str:
    """Change an entry and recompute it and every later one and the chain's head, as an
    administrator who knows the formula would: the chain is consistent again. The new head."""
    entries = await chain_of(session, chain)
    prev = audit.GENESIS if position == 1 else entries[position - 2].entry_hash
    for entry in entries[position - 1 :]:
        details = entry.details | ({"rewritten": True} if entry.position == position else {})
        new_hash = audit.entry_hash(prev, audit.content(entry) | {"details": details})
        await session.execute(
            update(AuditEntry)
            .where(at(chain, entry.position))
            .values(details=details, prev_hash=prev, entry_hash=new_hash)
        )
        prev = new_hash
    await session.execute(
        update(AuditChain).where(AuditChain.chain == chain).values(head_hash=prev)
    )
    session.expunge_all()
    return prev


async def drop_the_head(session: AsyncSession) -> None:
    await session.execute(delete(AuditChain).where(AuditChain.chain == CHAIN))


Tampering = Callable[[AsyncSession], Awaitable[None]]
TAMPERING: list[tuple[Tampering, str, int, str]] = [
    (edit_details, CHAIN, 3, "edited"),
    (edit_actor, audit.PLATFORM_CHAIN, 2, "edited"),
    (edit_time, CHAIN, 4, "edited"),
    (delete_one, CHAIN, 2, "missing"),
    (delete_the_last, CHAIN, 5, "missing"),
    (delete_and_close_the_gap, CHAIN, 2, "missing"),
    (swap_two, CHAIN, 2, "reordered"),
    (forge_at_the_end, CHAIN, 6, "inserted"),
    (forge_at_the_end_badly, CHAIN, 6, "inserted"),
    (forge_in_the_middle, CHAIN, 3, "inserted"),
    (edit_and_rehash, CHAIN, 3, "edited"),
    (edit_and_rehash_the_last, CHAIN, 5, "edited"),
    (drop_the_head, CHAIN, 5, "missing"),
]


class TestVerify:
    async def test_an_untouched_trail_verifies_with_each_chain_and_its_head(
        self, tamperable: AsyncSession
    ) -> None:
        verification = await audit.verify(session=tamperable, page_size=2)
        assert verification.broken == []
        assert [(head.chain, head.size) for head in verification.chains] == [
            (audit.PLATFORM_CHAIN, 4),
            (CHAIN, 5),
        ]
        assert verification.chains[1].head_hash == await _hash_of(tamperable, 5)

    @pytest.mark.parametrize(
        ("tamper", "chain", "position", "problem"),
        TAMPERING,
        ids=[tamper.__name__ for tamper, *_ in TAMPERING],
    )
    async def test_tampering_is_named_at_its_first_broken_link(
        self, tamperable: AsyncSession, tamper: Tampering, chain: str, position: int, problem: str
    ) -> None:
        await tamper(tamperable)
        tamperable.expunge_all()

        verification = await audit.verify(session=tamperable, page_size=2)

        assert len(verification.broken) == 1, verification.broken
        (broken,) = verification.broken
        assert (broken.chain, broken.position, broken.problem) == (chain, position, problem), broken
        intact = [head.chain for head in verification.chains]
        assert intact == [c for c in (audit.PLATFORM_CHAIN, CHAIN) if c != chain]

    async def test_every_broken_chain_is_named_the_platforms_first(
        self, tamperable: AsyncSession
    ) -> None:
        await edit_actor(tamperable)
        await delete_one(tamperable)
        broken = (await audit.verify(session=tamperable)).broken
        assert [(b.chain, b.position, b.problem) for b in broken] == [
            (audit.PLATFORM_CHAIN, 2, "edited"),
            (CHAIN, 2, "missing"),
        ]


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_entries SET details = '{}'",
            "DELETE FROM audit_entries",
            "TRUNCATE audit_entries",
        ],
    )
    async def test_postgresql_refuses_to_change_or_remove_entries(
        self, session: AsyncSession, backend: str, statement: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("SQLite has no roles: whoever holds the file holds the trail")
        await audit.record(session=session, action="auth.signed_in")
        savepoint = await session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement))
        await savepoint.rollback()
        assert len(await chain_of(session, audit.PLATFORM_CHAIN)) == 1


# --- concurrency ---------------------------------------------------------------------------


@pytest.fixture
async def client(committing_app: FastAPI) -> Any:
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class TestConcurrency:
    async def test_bids_racing_on_one_tender_and_on_others_keep_every_chain_gapless(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        tenders = [await published_tender(engine, bidders=8) for _ in range(3)]
        everyone_started = asyncio.Barrier(24)
        answers = await asyncio.gather(
            *(
                upload(client, tender_id, headers, sealed(), everyone_started)
                for tender_id, bidders in tenders
                for headers in bidders
            )
        )
        assert [answer.status_code for answer in answers] == [201] * 24

        async with create_session_factory(engine)() as session:
            verification = await audit.verify(session=session)
            assert verification.broken == []
            sizes = {head.chain: head.size for head in verification.chains}
            assert sizes == {audit.tender_chain(tender_id): 8 for tender_id, _ in tenders}
            for tender_id, _ in tenders:
                entries = await chain_of(session, audit.tender_chain(tender_id))
                logged = sorted(entry.details["log_position"] for entry in entries)
                assert logged == list(range(8)), "one entry per receipt, in the log's order"
                by_position = [entry.details["log_position"] for entry in entries]
                assert by_position == logged, "the chain follows the receipts' order"

    async def test_sign_ins_racing_keep_the_platform_chain_gapless(
        self, committing_app: FastAPI, engine: AsyncEngine
    ) -> None:
        async with create_session_factory(engine)() as session:
            users = [await create_user(session, role=Role.bidder) for _ in range(6)]
            await session.commit()

        async def sign_in(number: int, email: str, password: str) -> httpx.Response:
            # Each from an address of its own: the failed-sign-in throttle stays out of it.
            transport = httpx.ASGITransport(app=committing_app, client=(f"10.0.0.{number}", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.post(
                    "/api/v1/auth/token", data={"username": email, "password": password}
                )

        answers = await asyncio.gather(
            *(
                sign_in(number, user.email, password)
                for number, user in enumerate(users)
                for password in (PASSWORD, "wrong password!")
            )
        )
        assert sorted(answer.status_code for answer in answers) == [200] * 6 + [401] * 6

        async with create_session_factory(engine)() as session:
            verification = await audit.verify(session=session)
            assert verification.broken == []
            entries = await chain_of(session, audit.PLATFORM_CHAIN)
        assert [entry.position for entry in entries] == list(range(1, 13))
        actions = sorted(entry.action for entry in entries)
        assert actions == ["auth.sign_in_failed"] * 6 + ["auth.signed_in"] * 6
