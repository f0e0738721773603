"""The chains themselves: numbering, links and the hash as specified, a rollback that leaves
nothing, concurrent appends that stay gapless, and every kind of tampering found by verify."""

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.audit import service as audit
from bidding.audit.models import AuditChain, AuditEntry
from bidding.auth.models import Role
from bidding.crypto.canonical import canonical_json
from bidding.db import create_session_factory
from tests.factories import PASSWORD, create_user
from tests.support.bids import published_tender, sealed, upload
from tests.support.tampering import (
    CHAIN,
    TENDER,
    Tampering,
    _hash_of,
    chain_of,
    delete_and_close_the_gap,
    delete_one,
    delete_the_last,
    drop_the_head,
    edit_actor,
    edit_and_rehash,
    edit_and_rehash_the_last,
    edit_details,
    edit_time,
    forge_at_the_end,
    forge_at_the_end_badly,
    forge_in_the_middle,
    swap_two,
)


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
