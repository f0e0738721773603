"""Anchors: the chains' heads signed by the platform at intervals, once per head however many
instances race, published to everyone (a tender's only from its opening record on), carried
by the opening record, and checked against the chains, so that a chain recomputed by the
database's administrator no longer verifies."""

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.audit import anchors as audit_anchors
from bidding.audit import service as audit
from bidding.audit.models import AuditAnchor, AuditChain, AuditEntry
from bidding.auth.models import Role
from bidding.crypto.canonical import canonical_json
from bidding.crypto.signing import verify_document
from bidding.db import create_engine, create_session_factory, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import lease
from bidding.opening import service as opening_service
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler
from bidding.tenders.models import TenderStatus
from tests.factories import create_organization, create_user
from tests.support.scene import Scene
from tests.support.tampering import chain_of, rewrite_from
from tests.tenders.conftest import create_tender

ANCHORS = "/api/v1/audit/anchors"
PLATFORM = audit.PLATFORM_CHAIN


@dataclass
class Trails:
    """Committed chains of every kind: the platform's and tenders' at each stage."""

    engine: AsyncEngine
    keys: PlatformKeys
    opened: uuid.UUID
    published: uuid.UUID
    cancelled: uuid.UUID
    draft: uuid.UUID

    async def anchor(self) -> list[audit_anchors.Anchor]:
        return await audit_anchors.anchor_moved_chains(
            session_factory=create_session_factory(self.engine),
            signing=self.keys.signing,
            recorded=opening_service.recorded,
        )

    async def record(self, action: str, tender_id: uuid.UUID | None = None) -> None:
        async with create_session_factory(self.engine)() as session:
            await audit.record(session=session, action=action, tender_id=tender_id)
            await session.commit()

    async def heads(self) -> dict[str, tuple[int, str]]:
        async with create_session_factory(self.engine)() as session:
            rows = await session.scalars(select(AuditChain))
            return {row.chain: (row.size, row.head_hash) for row in rows}

    async def stored(self) -> list[tuple[str, int]]:
        async with create_session_factory(self.engine)() as session:
            rows = await session.execute(
                select(AuditAnchor.chain, AuditAnchor.size).order_by(AuditAnchor.id)
            )
            return [(chain, size) for chain, size in rows]


@pytest.fixture
async def trails(
    committing_app: FastAPI, engine: AsyncEngine, platform_keys: PlatformKeys
) -> Trails:
    """Three platform entries; an opened tender with four entries, a published one with
    three bids, one cancelled after bids came, and a draft."""
    async with create_session_factory(engine)() as session:
        officer = await create_user(
            session, role=Role.officer, organization=await create_organization(session)
        )
        tenders = {}
        for status in ("opened", "published", "cancelled", "draft"):
            published_at = None if status == "draft" else utcnow()
            tender = await create_tender(
                session, officer=officer, status=TenderStatus(status), published_at=published_at
            )
            tenders[status] = tender.id
            await audit.record(session=session, action="tender.created", tender_id=tender.id)
            if status != "draft":
                for _ in range(3):
                    await audit.record(session=session, action="bid.submitted", tender_id=tender.id)
        await audit.record(session=session, action="opening.completed", tender_id=tenders["opened"])
        for number in range(3):
            await audit.record(session=session, action="auth.signed_in", details={"n": number})
        await session.commit()
    return Trails(engine, platform_keys, **tenders)


def signature_holds(anchor: audit_anchors.Anchor, keys: PlatformKeys) -> bool:
    public = keys.signing.public_key
    return verify_document(
        anchor.body(),
        key_id=anchor.key_id,
        signature=anchor.signature,
        keys={public.key_id: public},
    )


class TestAnchoring:
    async def test_moved_chains_are_signed_once_and_a_tenders_only_once_its_record_is_out(
        self, trails: Trails
    ) -> None:
        opened = audit.tender_chain(trails.opened)
        heads = await trails.heads()

        made = await trails.anchor()

        assert [(anchor.chain, anchor.size) for anchor in made] == [(PLATFORM, 3), (opened, 5)]
        for anchor in made:
            assert anchor.head == heads[anchor.chain][1]
            assert anchor.body() == {
                "kind": "audit_anchor",
                "chain": anchor.chain,
                "size": anchor.size,
                "head": anchor.head,
                "anchored_at": anchor.anchored_at,
            }
            assert signature_holds(anchor, trails.keys)
        # The published, cancelled and draft tenders' chains have entries, and no anchor.
        assert await trails.stored() == [(PLATFORM, 3), (opened, 5)]

        assert await trails.anchor() == [], "nothing moved: nothing signed"

        await trails.record("auth.signed_out")
        await trails.record("opening.record_confirmed", trails.opened)
        await trails.record("bid.submitted", trails.published)
        later = await trails.anchor()
        assert [(anchor.chain, anchor.size) for anchor in later] == [(PLATFORM, 4), (opened, 6)]

    async def test_two_instances_racing_make_one_anchor_per_head_each_signed_once(
        self, trails: Trails, database_url: str
    ) -> None:
        signings: list[str] = []
        start = threading.Barrier(2, timeout=60)

        def slow_clock() -> datetime:
            # Called with the chain's head locked, just before signing: the other instance
            # has every chance to come in meanwhile.
            signings.append(threading.current_thread().name)
            time.sleep(0.3)
            return utcnow()

        def instance() -> list[audit_anchors.Anchor]:
            async def run() -> list[audit_anchors.Anchor]:
                engine = create_engine(database_url)
                try:
                    start.wait()
                    return await audit_anchors.anchor_moved_chains(
                        session_factory=create_session_factory(engine),
                        signing=trails.keys.signing,
                        recorded=opening_service.recorded,
                        clock=slow_clock,
                    )
                finally:
                    await engine.dispose()

            return asyncio.run(run())

        results: dict[str, list[audit_anchors.Anchor]] = {}
        threads = [
            threading.Thread(
                target=lambda name=name: results.__setitem__(name, instance()), name=name
            )
            for name in ("a", "b")
        ]
        await asyncio.to_thread(lambda: [thread.start() for thread in threads])
        await asyncio.to_thread(lambda: [thread.join(120) for thread in threads])

        opened = audit.tender_chain(trails.opened)
        assert sorted(await trails.stored()) == [(PLATFORM, 3), (opened, 5)]
        made = results["a"] + results["b"]
        assert sorted((anchor.chain, anchor.size) for anchor in made) == [
            (PLATFORM, 3),
            (opened, 5),
        ]
        assert len(signings) == 2, "each head was signed by one instance only"

    async def test_the_scheduler_anchors_at_its_interval(
        self, trails: Trails, committing_app: FastAPI
    ) -> None:
        ctx = lease.Context(
            session_factory=create_session_factory(trails.engine),
            keys=trails.keys,
            blobs=committing_app.state.blobs,
            instance="test-instance",
        )
        scheduler = OpeningScheduler(
            ctx, sync_every=timedelta(minutes=10), anchor_every=timedelta(seconds=0.2)
        )
        await scheduler.start()
        try:
            for _ in range(300):  # up to a minute on a loaded machine
                if len(await trails.stored()) == 2:
                    break
                await asyncio.sleep(0.2)
            await trails.record("auth.signed_out")
            for _ in range(300):
                if len(await trails.stored()) == 3:
                    break
                await asyncio.sleep(0.2)
        finally:
            await scheduler.stop()
        opened = audit.tender_chain(trails.opened)
        assert await trails.stored() == [(PLATFORM, 3), (opened, 5), (PLATFORM, 4)]


@pytest.fixture
async def anyone(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that has not signed in."""
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class TestPublished:
    async def test_anyone_pages_through_the_anchors_and_checks_each_signature(
        self, trails: Trails, anyone: httpx.AsyncClient, committing_app: FastAPI
    ) -> None:
        await trails.anchor()
        await trails.record("auth.signed_out")
        await trails.anchor()

        first = await anyone.get(ANCHORS, params={"limit": 2})
        rest = await anyone.get(ANCHORS, params={"after": first.json()["next_after"]})

        assert first.status_code == 200, first.text
        assert first.json()["has_more"] is True and rest.json()["has_more"] is False
        served = first.json()["anchors"] + rest.json()["anchors"]
        opened = audit.tender_chain(trails.opened)
        assert [(a["chain"], a["size"]) for a in served] == [
            (PLATFORM, 3),
            (opened, 5),
            (PLATFORM, 4),
        ]
        keys = (await anyone.get("/api/v1/keys")).json()["keys"]
        assert [key["key_id"] for key in keys] == [a["key_id"] for a in served][:1]
        for anchor in audit_anchors.parse_published({"anchors": served}):
            assert signature_holds(anchor, trails.keys)
        assert (await anyone.get(ANCHORS, params={"after": served[-1]["id"]})).json() == {
            "anchors": [],
            "has_more": False,
            "next_after": served[-1]["id"],
        }

    async def test_a_tenders_anchors_come_with_its_record_never_before_the_opening(
        self, trails: Trails, anyone: httpx.AsyncClient
    ) -> None:
        await trails.anchor()

        def of(tender_id: uuid.UUID) -> Any:
            return anyone.get(ANCHORS, params={"tender_id": str(tender_id)})

        opened = (await of(trails.opened)).json()["anchors"]
        assert [(a["chain"], a["size"]) for a in opened] == [(audit.tender_chain(trails.opened), 5)]
        # Its chain counts three bids, but nothing about it is signed or served.
        published = await of(trails.published)
        assert (published.status_code, published.json()["anchors"]) == (200, [])
        cancelled = await of(trails.cancelled)
        assert (cancelled.status_code, cancelled.json()["anchors"]) == (200, [])
        everything = (await anyone.get(ANCHORS)).json()["anchors"]
        sealed = {audit.tender_chain(trails.published), audit.tender_chain(trails.cancelled)}
        assert not sealed & {anchor["chain"] for anchor in everything}
        for hidden in (trails.draft, uuid.uuid4()):
            answer = await of(hidden)
            assert (answer.status_code, answer.json()["type"]) == (404, "not_found")

    @pytest.mark.parametrize(
        "params",
        [
            {"after": "-1"},
            {"after": str(2**31)},
            {"after": "1e3"},
            {"limit": "0"},
            {"limit": "1001"},
            {"tender_id": "not-a-uuid"},
        ],
    )
    async def test_bad_paging_is_refused_in_the_error_shape(
        self, anyone: httpx.AsyncClient, params: dict[str, str]
    ) -> None:
        answer = await anyone.get(ANCHORS, params=params)
        assert answer.status_code == 422
        assert set(answer.json()) >= {"type", "detail"}


class TestRecord:
    async def test_the_signed_opening_record_carries_its_chains_head(
        self, scene: Scene, engine: AsyncEngine
    ) -> None:
        tender = await scene.tender()
        for price in ("1000000.00", "1100000.00", "1200000.00"):
            await scene.bid(tender, {"price": price, "duration_days": 100})
        await scene.pass_deadline(tender)
        await scene.open(tender)
        chain = audit.tender_chain(uuid.UUID(tender["id"]))

        signed = (await scene.get(tender, "/opening/record")).json()
        async with create_session_factory(engine)() as session:
            entries = await chain_of(session, chain)

        stated = signed["record"]["audit"]
        assert stated["chain"] == chain
        size = stated["size"]
        assert stated["head"] == entries[size - 1].entry_hash
        # The record's own entry is the one after it: it is anchored by the next anchor.
        assert [entry.action for entry in entries[size - 1 :]] == [
            "opening.started",
            "opening.completed",
        ]
        public = scene.keys.signing.public_key
        keys = {public.key_id: public}
        assert verify_document(
            signed["record"], key_id=signed["key_id"], signature=signed["signature"], keys=keys
        )
        moved = signed["record"] | {"audit": stated | {"head": "0" * 64}}
        assert not verify_document(
            moved, key_id=signed["key_id"], signature=signed["signature"], keys=keys
        )


# --- checking ------------------------------------------------------------------------------


async def tamper(engine: AsyncEngine, *statements: Any) -> None:
    """Run statements as the database's administrator, the trail's guard off."""
    async with create_session_factory(engine)() as session:
        postgresql = engine.dialect.name == "postgresql"
        if postgresql:
            await session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        for statement in statements:
            if callable(statement):
                await statement(session)
            else:
                await session.execute(statement)
        if postgresql:
            await session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        await session.commit()


async def checked(
    engine: AsyncEngine, keys: PlatformKeys, outside: list[audit_anchors.Anchor] | None = None
) -> tuple[audit.Verification, audit_anchors.AnchorCheck]:
    public = keys.signing.public_key
    async with create_session_factory(engine)() as session:
        verification = await audit.verify(session=session)
        signed = await audit_anchors.check(
            session=session,
            verification=verification,
            keys={public.key_id: public},
            records=opening_service.signed_records,
            outside=outside or [],
            page_size=2,
        )
    return verification, signed


class TestCheck:
    async def test_an_intact_trail_bears_out_every_anchor(self, trails: Trails) -> None:
        await trails.anchor()
        await trails.record("auth.signed_out")
        await trails.anchor()
        await trails.record("auth.signed_out")

        verification, signed = await checked(trails.engine, trails.keys)

        assert verification.broken == [] and signed.contradictions == []
        assert signed.anchored == {PLATFORM: 4, audit.tender_chain(trails.opened): 5}
        assert signed.checked == 3

    @pytest.mark.parametrize("which", ["platform", "tender"])
    async def test_a_chain_recomputed_by_the_administrator_contradicts_its_anchor(
        self, trails: Trails, which: str
    ) -> None:
        chain = PLATFORM if which == "platform" else audit.tender_chain(trails.opened)
        (anchor,) = [anchor for anchor in await trails.anchor() if anchor.chain == chain]

        await tamper(trails.engine, lambda session: rewrite_from(session, chain, 2))

        verification, signed = await checked(trails.engine, trails.keys)
        assert verification.broken == [], "recomputed, the chain itself verifies"
        (contradiction,) = signed.contradictions
        assert (contradiction.chain, contradiction.size) == (chain, anchor.size)
        assert f"anchor {anchor.id} of {anchor.anchored_at} signed {anchor.head}" in str(
            contradiction
        )

    async def test_an_anchor_edited_to_match_fails_its_signature(self, trails: Trails) -> None:
        await trails.anchor()

        async def rewrite_both(session: AsyncSession) -> None:
            new_head = await rewrite_from(session, PLATFORM, 2)
            await session.execute(
                update(AuditAnchor).where(AuditAnchor.chain == PLATFORM).values(head_hash=new_head)
            )

        await tamper(trails.engine, rewrite_both)

        _, signed = await checked(trails.engine, trails.keys)
        (contradiction,) = signed.contradictions
        assert (contradiction.chain, contradiction.size) == (PLATFORM, 3)
        assert "does not carry the platform's signature" in contradiction.detail

    async def test_a_copy_kept_outside_shows_a_rewrite_whose_anchors_were_removed(
        self, trails: Trails
    ) -> None:
        kept = await trails.anchor()

        async def rewrite_and_remove(session: AsyncSession) -> None:
            await rewrite_from(session, PLATFORM, 1)
            await session.execute(AuditAnchor.__table__.delete())

        await tamper(trails.engine, rewrite_and_remove)

        _, inside = await checked(trails.engine, trails.keys)
        assert inside.contradictions == [], "the database alone no longer tells"
        _, signed = await checked(trails.engine, trails.keys, kept)
        found = [(c.chain, c.size, c.detail) for c in signed.contradictions]
        assert [(chain, size) for chain, size, _ in found] == [
            (PLATFORM, 3),
            (PLATFORM, 3),
            (audit.tender_chain(trails.opened), 5),
        ]
        assert "the chain was rewritten" in found[0][2]
        assert "not among the database's anchors: it was removed" in found[1][2]
        assert "not among the database's anchors: it was removed" in found[2][2]

    async def test_an_outside_copy_not_signed_by_the_platform_is_named(
        self, trails: Trails
    ) -> None:
        (platform, _) = await trails.anchor()
        forged = audit_anchors.Anchor(
            **(platform.to_dict() | {"id": None, "size": 2, "head": "a" * 64})
        )
        other_key = audit_anchors.Anchor(**(platform.to_dict() | {"key_id": "0123456789abcdef"}))

        _, signed = await checked(trails.engine, trails.keys, [forged, other_key])

        assert [str(c) for c in signed.contradictions] == [
            f"chain platform, anchored size 2: the outside copy of the anchor of "
            f"{platform.anchored_at} does not carry the platform's signature: it was altered",
            f"chain platform, anchored size 3: the outside copy of the anchor of "
            f"{platform.anchored_at} is signed by key 0123456789abcdef, which is not the "
            "platform's",
        ]

    async def test_a_tender_chain_recomputed_contradicts_its_signed_record(
        self, scene: Scene, engine: AsyncEngine
    ) -> None:
        tender = await scene.tender()
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100})
        await scene.pass_deadline(tender)
        await scene.open(tender)
        chain = audit.tender_chain(uuid.UUID(tender["id"]))
        record = (await scene.get(tender, "/opening/record")).json()["record"]

        _, before = await checked(engine, scene.keys)
        assert before.contradictions == [] and before.anchored == {chain: record["audit"]["size"]}

        await tamper(engine, lambda session: rewrite_from(session, chain, 2))

        verification, signed = await checked(engine, scene.keys)
        assert verification.broken == []
        (contradiction,) = signed.contradictions
        assert (contradiction.chain, contradiction.size) == (chain, record["audit"]["size"])
        assert f"the signed opening record signed {record['audit']['head']}" in str(contradiction)

    async def test_a_record_edited_to_match_fails_its_signature(
        self, scene: Scene, engine: AsyncEngine
    ) -> None:
        tender = await scene.tender()
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100})
        await scene.pass_deadline(tender)
        await scene.open(tender)
        tender_id = uuid.UUID(tender["id"])
        chain = audit.tender_chain(tender_id)
        record = (await scene.get(tender, "/opening/record")).json()["record"]

        async def rewrite_both(session: AsyncSession) -> None:
            await rewrite_from(session, chain, 2)
            (size, head) = (
                await session.execute(
                    select(AuditEntry.position, AuditEntry.entry_hash).where(
                        AuditEntry.chain == chain,
                        AuditEntry.position == record["audit"]["size"],
                    )
                )
            ).one()
            edited = record | {"audit": {"chain": chain, "size": size, "head": head}}
            await session.execute(
                update(Opening)
                .where(Opening.tender_id == tender_id)
                .values(record=canonical_json(edited).decode())
            )

        await tamper(engine, rewrite_both)

        _, signed = await checked(engine, scene.keys)
        (contradiction,) = signed.contradictions
        assert str(contradiction) == (
            f"chain {chain}, anchored size {record['audit']['size']}: the opening record does "
            "not carry the platform's signature: it was altered"
        )


def write_key(data_dir: Path, keys: PlatformKeys) -> None:
    """The platform's signing key file, as `bidding serve` keeps it in its data folder."""
    folder = data_dir / "keys"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "signing.key"
    path.write_text(base64.b64encode(keys.signing.private_bytes()).decode() + "\n")
    path.chmod(0o600)
