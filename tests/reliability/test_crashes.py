"""Openings that survive their servers: `bidding serve` killed with
SIGKILL in the middle of scoring and in the middle of signing the record, three instances
racing for many tenders at one deadline, and the only server down while a deadline passes.

A kill during decryption is tests/opening/test_processes.py (TestKilledMidDecryption, and the
takeover by a second instance); this module reuses its machinery. To land a kill inside a
step, the first server runs with BIDDING_FAULT_PAUSE (bidding/opening/faults.py), which holds
the step's transaction open, its event written but not committed, until the test has killed
the process; the server started after it runs without it. Every test starts its own servers
on a fresh database and kills them all when it ends.
"""

import asyncio
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bidding.crypto.canonical import canonical_json
from bidding.crypto.signing import VerifyKey, verify_document
from bidding.db import create_engine, create_session_factory, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import faults
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler
from bidding.tenders import bids
from bidding.tenders.models import Tender, TenderStatus
from tests.support.cluster import (
    LEAD_SMALL,
    TIMEOUT,
    Cluster,
    Database,
    Event,
    Headers,
    Server,
    Watcher,
    assert_outcome,
    assert_whole_opening,
    bring_deadline_forward,
    ended,
    eventually,
    json_bid,
    make_cast,
    millisecond,
    owner_pid,
    parse_time,
    publish,
    stored,
    submit,
)
from tests.support.scene import (
    FakeClock,
    Scene,
)
from tests.tenders.conftest import TENDERS

BIDS = 3
PAUSE_SECONDS = 120  # far longer than the test: the process is killed in the pause
# How long the only server stays down after the deadline it missed (in real time; the ten
# minutes of the in-process test are on a fake clock).
DOWN_AFTER_DEADLINE = 2.0


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


async def paused(server: Server, point: str, cluster: Cluster) -> None:
    """Wait until the server says that its opening is held at the point."""
    line = f"fault injection: pausing {PAUSE_SECONDS} s at {point} "

    async def holding() -> bool:
        assert server.process.poll() is None, f"the server died:\n{server.log_tail()}"
        return line in server.log.read_text(errors="replace")

    try:
        await eventually(holding, f"the opening to reach {point}", TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs_tail()}") from None


async def platform_keys(server: Server) -> dict[str, VerifyKey]:
    listed = (await server.http.get("/api/v1/keys")).json()["keys"]
    return {key["key_id"]: VerifyKey.from_dict(key) for key in listed}


async def assert_record_binds(
    server: Server, tender: Event, officer: Headers, events: list[Event]
) -> dict[str, Any]:
    """The published record is signed by the platform, announced by its event, and binds
    exactly the events that came before it."""
    answer = (
        await server.http.get(f"{TENDERS}/{tender['id']}/opening/record", headers=officer)
    ).json()
    record = answer["record"]
    assert verify_document(
        record,
        key_id=answer["key_id"],
        signature=answer["signature"],
        keys=await platform_keys(server),
    )
    (published,) = [event for event in events if event["type"] == ev.RECORD_PUBLISHED]
    assert published["data"]["sha256"] == hashlib.sha256(canonical_json(record)).hexdigest()
    assert published["data"]["signature"] == answer["signature"]
    before = events[: published["seq"] - 1]
    assert record["events"] == {
        "count": len(before),
        "sha256": hashlib.sha256(canonical_json(before)).hexdigest(),
    }
    return record


# --- kill -9 in the middle of a step -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.process
class TestKilledMidStep:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
    @pytest.mark.parametrize(
        ("step", "done_before"),
        [
            (ev.SCORES_COMPUTED, [ev.STARTED, ev.LOG_SEALED, ev.BIDS_LISTED]
             + [ev.BID_DECRYPTED] * BIDS),
            (ev.RECORD_PUBLISHED, [ev.STARTED, ev.LOG_SEALED, ev.BIDS_LISTED]
             + [ev.BID_DECRYPTED] * BIDS + [ev.SCORES_COMPUTED]),
        ],
        ids=["scoring", "record-signing"],
    )  # fmt: skip
    async def test_a_restarted_server_finishes_the_opening_with_each_event_once(
        self, database: Database, cluster: Cluster, step: str, done_before: list[str]
    ) -> None:
        cast = await make_cast(database, BIDS)
        (first,) = await cluster.start(**{faults.PAUSE_ENV: f"{step}:{PAUSE_SECONDS}"})
        tender = await publish(first.http, cast.officer, utcnow() + timedelta(hours=1))
        receipts = [
            await submit(first.http, tender, bidder, json_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        await bring_deadline_forward(database, tender)
        await paused(first, step, cluster)

        first.kill()

        before, opening = await stored(database, tender)
        # Of the step under way nothing was kept: neither its event nor its seq.
        assert types(before) == done_before
        assert opening.last_seq == len(before)
        assert opening.record is None and opening.completed_at is None
        assert owner_pid(opening) == first.pid
        assert opening.lease_expires_at is not None
        (second,) = await cluster.start()
        watcher = Watcher(tender, cast.officer)
        events = await watcher.until(second, ended, "the opening to end", cluster)

        assert_whole_opening(events, receipts)
        assert events[: len(before)] == before, "what was written before the kill stands"
        resumed_at = parse_time(events[len(before)]["at"])
        assert resumed_at >= millisecond(opening.lease_expires_at)
        _, finished = await stored(database, tender)
        assert owner_pid(finished) == second.pid
        await assert_outcome(second, tender, cast.officer, BIDS)
        record = await assert_record_binds(second, tender, cast.officer, events)
        assert parse_time(record["times"]["published_at"]) >= resumed_at


# --- racing instances ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.process
class TestManyInstances:
    @pytest.mark.parametrize("database", ["postgresql"], indirect=True)
    async def test_three_instances_open_each_of_many_tenders_at_one_deadline_once(
        self, database: Database, cluster: Cluster
    ) -> None:
        # Two instances and one tender at a time: tests/opening/test_processes.py.
        tenders_count = 6
        cast = await make_cast(database, BIDS)
        servers = await cluster.start(3)
        tenders, receipts = [], []
        for index in range(tenders_count):
            server = servers[index % len(servers)]
            tender = await publish(server.http, cast.officer, utcnow() + timedelta(hours=1))
            tenders.append(tender)
            receipts.append(
                [
                    await submit(server.http, tender, bidder, json_bid(number))
                    for number, bidder in enumerate(cast.bidders)
                ]
            )
        # One deadline for all, far enough ahead for every instance's sync (every 0.5 s) to
        # schedule each tender: at that moment all three fire for all six.
        deadline = utcnow() + timedelta(seconds=2)
        engine = create_engine(database.url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(Tender)
                    .where(Tender.id.in_([uuid.UUID(t["id"]) for t in tenders]))
                    .values(bid_deadline=deadline, updated_at=utcnow())
                )
        finally:
            await engine.dispose()

        owners = set()
        for index, tender in enumerate(tenders):
            watcher = Watcher(tender, cast.officer)
            reader = servers[(index + 1) % len(servers)]
            events = await watcher.until(reader, ended, "the opening", cluster)
            assert_whole_opening(events, receipts[index])  # one opening.started, no step twice
            assert parse_time(events[0]["at"]) >= millisecond(deadline)
            _, opening = await stored(database, tender)
            owners.add(owner_pid(opening))
            await assert_outcome(reader, tender, cast.officer, BIDS)
        assert owners <= {server.pid for server in servers}
        assert all(server.process.poll() is None for server in servers)


# --- down across the deadline --------------------------------------------------------------


async def untouched(database: Database, tender: Event) -> bool:
    """Whether the tender is still published, without an opening or an event."""
    engine = create_engine(database.url)
    try:
        async with create_session_factory(engine)() as session:
            tender_id = uuid.UUID(tender["id"])
            status = await session.scalar(select(Tender.status).where(Tender.id == tender_id))
            opening = await session.get(Opening, tender_id)
            events = await ev.after(session=session, tender_id=tender_id)
    finally:
        await engine.dispose()
    return status is TenderStatus.published and opening is None and events == []


class TestDownAcrossTheDeadline:
    @pytest.mark.slow
    @pytest.mark.process
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
    async def test_the_opening_runs_as_soon_as_the_server_is_back(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, BIDS)
        (server,) = await cluster.start()
        tender = await publish(server.http, cast.officer, utcnow() + LEAD_SMALL)
        deadline = datetime.fromisoformat(tender["bid_deadline"])
        receipts = [
            await submit(server.http, tender, bidder, json_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        assert utcnow() < deadline, "stopped before the deadline"
        server.process.terminate()  # stopped, as for maintenance
        server.process.wait(timeout=30)
        assert "Application shutdown complete" in server.log_tail(), server.log_tail()
        await asyncio.sleep((deadline - utcnow()).total_seconds() + DOWN_AFTER_DEADLINE)
        assert await untouched(database, tender), "nobody opened it meanwhile"

        # Only start-up can find the overdue tender: the next periodic sync is far off.
        began = utcnow()
        (back,) = await cluster.start(BIDDING_SCHEDULER_SYNC_SECONDS="600")
        watcher = Watcher(tender, cast.officer)
        events = await watcher.until(back, ended, "the opening to end", cluster)

        assert_whole_opening(events, receipts)
        started = events[0]
        assert started["data"]["bid_deadline"] == iso_utc(deadline)
        assert millisecond(began) <= parse_time(started["at"]) < began + timedelta(seconds=15)
        await assert_outcome(back, tender, cast.officer, BIDS)

    async def test_a_tender_ten_minutes_overdue_opens_when_the_scheduler_starts(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The bids came in on a clock set 11 minutes back, the deadline passed 10 minutes ago,
        # and no scheduler ran in between: none may drop the opening as a misfire.
        now = utcnow()
        deadline = now - timedelta(minutes=10)
        tender = await scene.tender()
        monkeypatch.setattr(bids, "utcnow", FakeClock(deadline - timedelta(minutes=1)))
        receipts = [
            await scene.bid(tender, {"price": price, "duration_days": 100})
            for price in ("1000000.00", "950000.00", "1100000.00")
        ]
        monkeypatch.undo()
        async with scene.engine.begin() as connection:
            await connection.execute(
                update(Tender)
                .where(Tender.id == uuid.UUID(tender["id"]))
                .values(bid_deadline=deadline)
            )
        scheduler = OpeningScheduler(scene.context("back"), sync_every=timedelta(minutes=10))
        try:
            await scheduler.start()

            async def ended_events() -> list[Event] | None:
                events = await scene.events(tender)
                return events if events and events[-1]["type"] == ev.COMPLETED else None

            events = await eventually(ended_events, "the overdue opening", TIMEOUT)
        finally:
            await scheduler.stop()
        assert_whole_opening(events, receipts)
        assert parse_time(events[0]["at"]) >= millisecond(now)
        assert parse_time(events[0]["at"]) - deadline > timedelta(minutes=10)
