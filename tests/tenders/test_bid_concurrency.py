"""Concurrent uploads on real transactions, on SQLite and PostgreSQL: gapless log positions,
versions in receipt order, and one bid for parallel retries of the same upload."""

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from starlette.types import Message

from bidding.app import create_app
from bidding.auth.models import Role
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import receipt_problems
from bidding.db import create_session_factory, utcnow
from bidding.errors import Conflict
from bidding.keys import PlatformKeys
from bidding.opening import lease
from bidding.settings import Settings
from bidding.tenders import bids
from bidding.tenders.bids import Arrivals
from bidding.tenders.models import Bid, BidStatus, LogEntry, Tender, TenderStatus
from bidding.tenders.uploads import StagedUpload
from tests.factories import bearer, create_user
from tests.tenders.conftest import TENDERS, create_tender
from tests.tenders.test_bid_input import post_scope
from tests.tenders.test_bids import OCTETS, keys, sealed

BIDDERS = 12


@pytest.fixture
async def client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on real transactions: each request commits on its own."""
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def published_tender(
    engine: AsyncEngine, *, bidders: int, **columns: Any
) -> tuple[uuid.UUID, list[dict[str, str]]]:
    """A committed, published tender and the headers of bidders of distinct organizations."""
    async with create_session_factory(engine)() as session:
        officer = await create_user(session, role=Role.officer)
        tender = await create_tender(
            session, officer=officer, status=TenderStatus.published, **columns
        )
        headers = [
            await bearer(session, await create_user(session, role=Role.bidder))
            for _ in range(bidders)
        ]
        await session.commit()
        return tender.id, headers


async def overlapping(body: bytes, everyone_started: asyncio.Barrier) -> AsyncIterator[bytes]:
    """An upload that finishes only once every upload of the group has begun."""
    yield body[:64]
    await asyncio.wait_for(everyone_started.wait(), timeout=20)
    for start in range(64, len(body), 4096):
        await asyncio.sleep(0)
        yield body[start : start + 4096]


async def upload(
    client: httpx.AsyncClient,
    tender_id: uuid.UUID,
    headers: dict[str, str],
    body: bytes,
    everyone_started: asyncio.Barrier,
) -> httpx.Response:
    return await client.post(
        f"{TENDERS}/{tender_id}/bids",
        content=overlapping(body, everyone_started),
        headers={**OCTETS, **headers},
    )


class LogLock:
    """Another writer in the way of the tender's log: on PostgreSQL it holds the tender row,
    on SQLite the database's write lock (there, writers queue for the whole database)."""

    def __init__(self, engine: AsyncEngine, tender_id: uuid.UUID) -> None:
        self.engine = engine
        self.tender_id = tender_id
        self.holder: AsyncConnection | None = None

    async def hold(self) -> None:
        self.holder = await self.engine.connect()
        # On SQLite any statement begins the IMMEDIATE transaction that takes the lock.
        await self.holder.execute(
            select(Tender.id).where(Tender.id == self.tender_id).with_for_update()
        )

    async def release(self) -> None:
        assert self.holder is not None
        await self.holder.rollback()
        await self.holder.close()

    async def until_waiting(self, count: int) -> None:
        """Until `count` transactions queue behind the lock (PostgreSQL; a pause on SQLite)."""
        if self.engine.dialect.name != "postgresql":
            await asyncio.sleep(0.3)
            return
        async with self.engine.connect() as observer:
            for _ in range(500):
                waiting = await observer.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                await observer.rollback()
                if waiting == count:
                    return
                await asyncio.sleep(0.02)
        raise AssertionError(f"{count} transactions never queued for the tender row")


@asynccontextmanager
async def tender_row_held(engine: AsyncEngine, tender_id: uuid.UUID) -> AsyncIterator[LogLock]:
    """On PostgreSQL, the tender row held by another transaction until the block ends.

    A no-op on SQLite: holding its write lock would stop the requests before they read
    their bodies, and its writers queue for the whole database anyway.
    """
    lock = LogLock(engine, tender_id)
    if engine.dialect.name != "postgresql":
        yield lock
        return
    await lock.hold()
    try:
        yield lock
    finally:
        await lock.release()


async def stored_log(
    engine: AsyncEngine, tender_id: uuid.UUID
) -> tuple[Tender, list[LogEntry], list[Bid]]:
    async with create_session_factory(engine)() as session:
        tender = await session.get(Tender, tender_id)
        assert tender is not None
        entries = await session.scalars(
            select(LogEntry).where(LogEntry.tender_id == tender_id).order_by(LogEntry.position)
        )
        bids = await session.scalars(
            select(Bid).where(Bid.tender_id == tender_id).order_by(Bid.bidder_id, Bid.version)
        )
        return tender, list(entries), list(bids)


def files_under(settings: Settings, folder: str) -> list[str]:
    root = settings.data_dir / folder
    return sorted(p.name for p in root.rglob("*") if p.is_file())


class TestManyBidders:
    async def test_concurrent_uploads_get_distinct_gapless_positions_matching_their_receipts(
        self, client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
    ) -> None:
        tender_id, bidders = await published_tender(engine, bidders=BIDDERS)
        bodies = [sealed(f'{{"price": "{100 + i}.00"}}'.encode() * 500) for i in range(BIDDERS)]
        everyone_started = asyncio.Barrier(BIDDERS)
        responses = await asyncio.gather(
            *(
                upload(client, tender_id, headers, body, everyone_started)
                for headers, body in zip(bidders, bodies, strict=True)
            )
        )
        assert [r.status_code for r in responses] == [201] * BIDDERS, [r.text for r in responses]
        receipts = [r.json() for r in responses]

        tender, entries, bids = await stored_log(engine, tender_id)
        assert [entry.position for entry in entries] == list(range(BIDDERS))
        assert tender.log_size == BIDDERS
        assert len(bids) == BIDDERS
        platform = await keys(client)
        by_bid = {str(entry.bid_id): entry for entry in entries}
        for receipt, body in zip(receipts, bodies, strict=True):
            assert receipt_problems(receipt, platform) == []
            assert receipt["body"]["sha256"] == hashlib.sha256(body).hexdigest()
            entry = by_bid[receipt["body"]["bid_id"]]
            assert entry.body == canonical_json(receipt["body"]).decode()
            assert entry.leaf_hash == receipt["leaf_hash"]
            assert (entry.key_id, entry.signature) == (receipt["key_id"], receipt["signature"])
        assert sorted(files_under(settings, "blobs")) == sorted(
            hashlib.sha256(body).hexdigest() for body in bodies
        )
        assert files_under(settings, "staging") == []

    async def test_receipt_times_follow_log_positions(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        tender_id, bidders = await published_tender(engine, bidders=BIDDERS)
        everyone_started = asyncio.Barrier(BIDDERS)
        responses = await asyncio.gather(
            *(upload(client, tender_id, h, sealed(), everyone_started) for h in bidders)
        )
        assert [r.status_code for r in responses] == [201] * BIDDERS
        _, entries, _ = await stored_log(engine, tender_id)
        times = [json.loads(entry.body)["received_at"] for entry in entries]
        assert times == sorted(times)


@pytest.fixture
async def other_instance(
    committing_app: FastAPI, settings: Settings, engine: AsyncEngine, platform_keys: PlatformKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second instance of the platform on the same database.

    Within one instance the bids for a tender reach the log one at a time, in the order they
    arrived; only uploads to two instances meet at the tender row itself.
    """
    app = create_app(settings, manage_state=False)
    app.state.session_factory = create_session_factory(engine)
    app.state.keys = platform_keys
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class TestOneBidder:
    async def test_two_simultaneous_submissions_are_both_receipted_and_the_later_counts(
        self,
        client: httpx.AsyncClient,
        other_instance: httpx.AsyncClient,
        engine: AsyncEngine,
        settings: Settings,
    ) -> None:
        tender_id, (headers,) = await published_tender(engine, bidders=1)
        bodies = [sealed(b'{"price": "1.00"}'), sealed(b'{"price": "2.00"}')]
        everyone_started = asyncio.Barrier(2)
        async with tender_row_held(engine, tender_id) as lock:
            uploads = [
                asyncio.create_task(upload(instance, tender_id, headers, body, everyone_started))
                for instance, body in zip((client, other_instance), bodies, strict=True)
            ]
            await lock.until_waiting(2)
        responses = await asyncio.gather(*uploads)
        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
        first, later = sorted((r.json() for r in responses), key=lambda r: r["body"]["version"])
        assert (first["body"]["version"], later["body"]["version"]) == (1, 2)

        _, entries, bids = await stored_log(engine, tender_id)
        assert [json.loads(e.body) for e in entries] == [first["body"], later["body"]]
        assert [(b.version, b.status) for b in bids] == [
            (1, BidStatus.superseded),
            (2, BidStatus.active),
        ]
        mine = (await client.get(f"{TENDERS}/{tender_id}/bids/mine", headers=headers)).json()
        assert mine["bid"]["version"] == 2
        assert mine["bid"]["sha256"] == later["body"]["sha256"]
        assert mine["receipts"] == [first, later]
        assert sorted(files_under(settings, "blobs")) == sorted(
            hashlib.sha256(body).hexdigest() for body in bodies
        )
        assert files_under(settings, "staging") == []

    async def test_parallel_retries_with_one_idempotency_key_make_one_bid(
        self,
        client: httpx.AsyncClient,
        other_instance: httpx.AsyncClient,
        engine: AsyncEngine,
        settings: Settings,
    ) -> None:
        tender_id, (headers,) = await published_tender(engine, bidders=1)
        body = sealed()
        retry = {**headers, "Idempotency-Key": "upload-7f3a"}
        everyone_started = asyncio.Barrier(2)
        # On PostgreSQL both retries, sent to two instances, are past the replay check and
        # queued for the tender row before either commits: the loser meets the unique key and
        # answers as a replay.
        async with tender_row_held(engine, tender_id) as lock:
            uploads = [
                asyncio.create_task(upload(instance, tender_id, retry, body, everyone_started))
                for instance in (client, other_instance)
            ]
            await lock.until_waiting(2)
        responses = await asyncio.gather(*uploads)
        assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
        assert responses[0].json() == responses[1].json()

        tender, entries, bids = await stored_log(engine, tender_id)
        assert len(bids) == 1 and bids[0].status is BidStatus.active
        assert [e.position for e in entries] == [0]
        assert tender.log_size == 1
        assert files_under(settings, "blobs") == [hashlib.sha256(body).hexdigest()]
        assert files_under(settings, "staging") == []
        # The log goes on without a gap after the retry that lost the race.
        later = await client.post(
            f"{TENDERS}/{tender_id}/bids", content=sealed(), headers={**OCTETS, **headers}
        )
        assert later.json()["body"]["version"] == 2
        tender, entries, _ = await stored_log(engine, tender_id)
        assert [e.position for e in entries] == [0, 1]
        assert tender.log_size == 2


class TestDeadline:
    """A bid is in time when its last byte arrives before the deadline, however long it then
    waits for the log (README, "Sealed bids")."""

    async def test_a_bid_that_waits_for_the_log_past_the_deadline_is_accepted(
        self, client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
    ) -> None:
        deadline = utcnow() + timedelta(seconds=1.5)
        tender_id, (headers,) = await published_tender(engine, bidders=1, bid_deadline=deadline)
        body = sealed()
        lock = LogLock(engine, tender_id)
        body_sent = asyncio.Event()

        async def body_then_a_competing_writer() -> AsyncIterator[bytes]:
            yield body[:64]
            await lock.hold()
            yield body[64:]
            body_sent.set()

        submission = asyncio.create_task(
            client.post(
                f"{TENDERS}/{tender_id}/bids",
                content=body_then_a_competing_writer(),
                headers={**OCTETS, **headers},
            )
        )
        try:
            await asyncio.wait_for(body_sent.wait(), timeout=10)
            await lock.until_waiting(1)
            assert utcnow() < deadline, "the bid must queue for the log before the deadline"
            await asyncio.sleep((deadline - utcnow()).total_seconds() + 0.1)
        finally:
            await lock.release()
        response = await submission
        assert response.status_code == 201, response.text
        received_at = datetime.fromisoformat(response.json()["body"]["received_at"])
        assert received_at < deadline, "the receipt names when the last byte arrived"
        _, entries, bids = await stored_log(engine, tender_id)
        assert [e.leaf_hash for e in entries] == [response.json()["leaf_hash"]]
        assert [b.received_at for b in bids] == [received_at]

    async def test_a_rush_at_the_deadline_is_logged_in_arrival_order_before_the_opening(
        self,
        committing_app: FastAPI,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        platform_keys: PlatformKeys,
    ) -> None:
        deadline = utcnow() + timedelta(seconds=4)
        tender_id, headers = await published_tender(engine, bidders=BIDDERS, bid_deadline=deadline)
        arrivals: Arrivals = committing_app.state.arrivals
        lock = LogLock(engine, tender_id)
        first_parts = asyncio.Semaphore(0)
        locked = asyncio.Event()

        async def held_back(body: bytes) -> AsyncIterator[bytes]:
            yield body[:64]
            first_parts.release()
            await locked.wait()
            yield body[64:]

        uploads = [
            asyncio.create_task(
                client.post(
                    f"{TENDERS}/{tender_id}/bids",
                    content=held_back(sealed()),
                    headers={**OCTETS, **bidder},
                )
            )
            for bidder in headers
        ]
        context = lease.Context(
            session_factory=create_session_factory(engine),
            keys=platform_keys,
            blobs=committing_app.state.blobs,
            arrivals=arrivals,
            instance="rush",
        )
        try:
            for _ in headers:
                await asyncio.wait_for(first_parts.acquire(), timeout=20)
            await lock.hold()
            locked.set()
            # Every body is complete, and every bid queues for the log behind the writer.
            for _ in range(500):
                if arrivals.waiting(tender_id) == BIDDERS:
                    break
                await asyncio.sleep(0.02)
            assert arrivals.waiting(tender_id) == BIDDERS
            assert utcnow() < deadline, "the bids must have arrived before the deadline"
            await asyncio.sleep((deadline - utcnow()).total_seconds() + 0.2)
            opening = asyncio.create_task(lease.claim(context, tender_id))
            await asyncio.sleep(0.3)
            assert not opening.done(), "the opening waits for the bids that arrived in time"
        finally:
            await lock.release()
        responses = await asyncio.gather(*uploads)
        assert await asyncio.wait_for(opening, timeout=30) == lease.Claimed()

        assert [r.status_code for r in responses] == [201] * BIDDERS, [r.text for r in responses]
        tender, entries, _ = await stored_log(engine, tender_id)
        assert tender.status is TenderStatus.opening
        assert len(entries) == tender.log_size == BIDDERS
        times = [datetime.fromisoformat(json.loads(e.body)["received_at"]) for e in entries]
        assert times == sorted(times), "receipt times follow log positions"
        assert all(at < deadline for at in times)
        # Once the opening has begun, a bid is late.
        late = await client.post(
            f"{TENDERS}/{tender_id}/bids", content=sealed(), headers={**OCTETS, **headers[0]}
        )
        assert (late.status_code, late.json()["type"]) == (409, "deadline_passed")


class TestCommit:
    async def test_the_receipt_is_sent_only_once_the_bid_is_committed(
        self, committing_app: FastAPI, engine: AsyncEngine, database_url: str
    ) -> None:
        tender_id, (headers,) = await published_tender(engine, bidders=1)
        # A plain engine: on SQLite it reads the last commit instead of queueing for the lock.
        observer = create_async_engine(database_url)
        committed_when_answered: list[int] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                async with observer.connect() as connection:
                    count = await connection.scalar(
                        select(func.count()).select_from(Bid).where(Bid.tender_id == tender_id)
                    )
                    committed_when_answered.append(count or 0)

        body = sealed()
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            return pending.pop() if pending else {"type": "http.disconnect"}

        fields = {**OCTETS, **headers, "Content-Length": str(len(body))}
        scope = post_scope(f"{TENDERS}/{tender_id}/bids", fields)
        try:
            await committing_app(scope, receive, send)
        finally:
            await observer.dispose()
        _, entries, bids = await stored_log(engine, tender_id)
        assert len(bids) == len(entries) == 1
        assert committed_when_answered == [1]


class TestReceiptTimes:
    async def test_a_bid_logged_after_a_later_arrival_takes_that_time_and_stays_in_time(
        self, session: AsyncSession, platform_keys: PlatformKeys, tmp_path: Path
    ) -> None:
        # Two instances each log the bid that arrived there: the one that arrived first
        # reaches the log second.
        officer = await create_user(session, role=Role.officer)
        deadline = (utcnow() + timedelta(minutes=1)).replace(microsecond=0)
        tender = await create_tender(
            session, officer=officer, status=TenderStatus.published, bid_deadline=deadline
        )
        first, second = [await create_user(session, role=Role.bidder) for _ in range(2)]
        earlier, later = deadline - timedelta(seconds=2), deadline - timedelta(seconds=1)
        receipts = []
        for bidder, arrived_at in ((second, later), (first, earlier)):
            body = sealed()
            upload = StagedUpload(
                path=tmp_path / "unused", sha256=hashlib.sha256(body).hexdigest(), size=len(body)
            )
            receipt, created = await bids.submit(
                session=session,
                tender_id=tender.id,
                bidder=bidder,
                upload=upload,
                arrived_at=arrived_at,
                idempotency_key=None,
                key=platform_keys.signing,
            )
            assert created
            receipts.append(receipt)
        times = [datetime.fromisoformat(r["body"]["received_at"]) for r in receipts]
        assert times == [later, later], "the log's times never go backwards"
        # Still in time: an arrival after the deadline is refused, whatever came before.
        with pytest.raises(Conflict) as refused:
            await bids.submit(
                session=session,
                tender_id=tender.id,
                bidder=first,
                upload=upload,
                arrived_at=deadline,
                idempotency_key=None,
                key=platform_keys.signing,
            )
        assert refused.value.type == "deadline_passed"
