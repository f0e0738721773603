"""The opening scheduler in process: it opens tenders at their deadlines, follows amendments
and cancellations, catches up on overdue tenders and takes over abandoned openings.

Each test runs a real OpeningScheduler (APScheduler on the test's event loop) over committed
transactions, on SQLite and PostgreSQL, with a short lease so that nothing waits for long.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bidding.db import create_session_factory, iso_utc, utcnow
from bidding.opening import lease
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler
from bidding.tenders.models import Tender, TenderStatus
from tests.support.scene import Scene
from tests.tenders.conftest import TENDERS, tender_body

LEASE = timedelta(seconds=1.5)
# Longer than any test: a job exists only because start() or a hook made it, unless a test
# asks for frequent syncs on purpose.
NO_PERIODIC_SYNC = timedelta(seconds=600)
TIMEOUT = 30.0  # seconds; generous for a loaded machine, never waited for when things work
PRICES = ("1000000.00", "950000.00", "1100000.00")

MakeScheduler = Callable[..., OpeningScheduler]


@pytest.fixture
async def make_scheduler(scene: Scene) -> AsyncIterator[MakeScheduler]:
    """Schedulers over the scene's database, all stopped after the test."""
    made: list[OpeningScheduler] = []

    def make(
        instance: str = "scheduler",
        *,
        sync_every: timedelta = NO_PERIODIC_SYNC,
        **changes: Any,
    ) -> OpeningScheduler:
        context = scene.context(instance, **({"lease": LEASE} | changes))
        scheduler = OpeningScheduler(context, sync_every=sync_every)
        made.append(scheduler)
        return scheduler

    try:
        yield make
    finally:
        for scheduler in made:
            await scheduler.stop()


# --- helpers -------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_millisecond(moment: datetime) -> datetime:
    """The moment as event times show it: truncated to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = TIMEOUT
) -> Any:
    """Poll check() until it returns something truthy; fail saying what did not happen."""
    give_up = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < give_up, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


async def finished_events(scene: Scene, tender: dict[str, Any]) -> list[dict[str, Any]]:
    """The opening's events once it has ended (completed or failed)."""
    last: list[dict[str, Any]] = []

    async def ended() -> list[dict[str, Any]] | None:
        nonlocal last
        last = await scene.events(tender)
        ends = {"opening.completed", "opening.failed"}
        return last if any(event["type"] in ends for event in last) else None

    try:
        events: list[dict[str, Any]] = await eventually(ended, "the opening to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; events so far: {types(last)}") from None
    return events


def assert_whole_opening(events: list[dict[str, Any]], receipts: list[dict[str, Any]]) -> None:
    """One opening, start to end: gapless seq, each step once, each bid once."""
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert types(events) == [
        "opening.started",
        "log.sealed",
        "bids.listed",
        *["bid.decrypted"] * len(receipts),
        "scores.computed",
        "record.published",
        "opening.completed",
    ]
    opened = [event["data"]["bid_id"] for event in events if event["type"] == "bid.decrypted"]
    assert sorted(opened) == sorted(receipt["body"]["bid_id"] for receipt in receipts)


async def tender_with_bids(scene: Scene) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A published tender (deadline days away) with three valid bids."""
    tender = await scene.tender()
    receipts = [
        await scene.bid(tender, {"price": price, "duration_days": 100 + index})
        for index, price in enumerate(PRICES)
    ]
    return tender, receipts


async def set_deadline(scene: Scene, tender: dict[str, Any], deadline: datetime) -> None:
    """Move the deadline in the database, as another instance's write would."""
    async with scene.engine.begin() as connection:
        await connection.execute(
            update(Tender)
            .where(Tender.id == uuid.UUID(tender["id"]))
            .values(bid_deadline=deadline, updated_at=utcnow())
        )


async def opening_row(scene: Scene, tender: dict[str, Any]) -> Opening:
    async with create_session_factory(scene.engine)() as session:
        opening = await session.get(Opening, uuid.UUID(tender["id"]))
    assert opening is not None
    return opening


async def status_of(scene: Scene, tender: dict[str, Any]) -> TenderStatus:
    async with create_session_factory(scene.engine)() as session:
        status = await session.scalar(
            select(Tender.status).where(Tender.id == uuid.UUID(tender["id"]))
        )
    assert status is not None
    return status


# --- tests ---------------------------------------------------------------------------------


class TestDeadlines:
    async def test_a_tender_opens_by_itself_at_its_deadline(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender, receipts = await tender_with_bids(scene)
        deadline = utcnow() + timedelta(seconds=1.5)
        await set_deadline(scene, tender, deadline)
        scheduler = make_scheduler()

        await scheduler.start()

        tender_id = uuid.UUID(tender["id"])
        assert scheduler.scheduled_at(tender_id) == deadline
        events = await finished_events(scene, tender)
        assert_whole_opening(events, receipts)
        started = events[0]
        assert started["data"]["bid_deadline"] == iso_utc(deadline)
        # Never before the deadline, and promptly after it.
        started_at = parse_time(started["at"])
        assert to_millisecond(deadline) <= started_at < deadline + timedelta(seconds=1)
        assert await status_of(scene, tender) is TenderStatus.opened
        assert scheduler.scheduled_at(tender_id) is None

    async def test_an_overdue_tender_opens_as_soon_as_the_scheduler_starts(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        # The deadline passed while no scheduler ran (the service was down).
        tender, receipts = await tender_with_bids(scene)
        await scene.pass_deadline(tender)
        scheduler = make_scheduler()

        began = utcnow()
        await scheduler.start()

        events = await finished_events(scene, tender)
        assert_whole_opening(events, receipts)
        # Opened by start() itself: the periodic sync would only come minutes later.
        assert parse_time(events[0]["at"]) - to_millisecond(began) < timedelta(seconds=10)
        assert await status_of(scene, tender) is TenderStatus.opened

    async def test_drafts_and_finished_tenders_get_no_job(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender, _receipts = await tender_with_bids(scene)
        await scene.pass_deadline(tender)
        first = make_scheduler("first")
        await first.start()
        await finished_events(scene, tender)
        assert scene.officer is not None
        draft = await scene.client.post(TENDERS, json=tender_body(), headers=scene.officer.headers)
        assert draft.status_code == 201, draft.text

        second = make_scheduler("second")
        await second.start()

        assert second.scheduled_at(uuid.UUID(tender["id"])) is None
        assert second.scheduled_at(uuid.UUID(draft.json()["id"])) is None


class TestChanges:
    async def test_publishing_amending_and_cancelling_move_and_drop_the_job(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        scheduler = make_scheduler()
        await scheduler.start()
        scene.app.state.deadline_watcher = scheduler  # as the app's lifespan does

        tender = await scene.tender()  # created, then published: the hook schedules it
        tender_id = uuid.UUID(tender["id"])
        deadline = parse_time(tender["bid_deadline"])
        assert scheduler.scheduled_at(tender_id) == deadline
        assert scene.officer is not None
        headers = scene.officer.headers

        later = deadline + timedelta(days=2, microseconds=1234)
        amended = await scene.client.patch(
            f"{TENDERS}/{tender['id']}",
            json={"bid_deadline": later.isoformat(), "reason": "More time for site visits"},
            headers=headers,
        )
        assert amended.status_code == 200, amended.text
        assert scheduler.scheduled_at(tender_id) == later

        described = await scene.client.patch(
            f"{TENDERS}/{tender['id']}",
            json={"description": "Section 3, 4.4 km.", "reason": "Length corrected"},
            headers=headers,
        )
        assert described.status_code == 200, described.text
        assert scheduler.scheduled_at(tender_id) == later

        earlier = await scene.client.patch(
            f"{TENDERS}/{tender['id']}",
            json={"bid_deadline": deadline.isoformat()},
            headers=headers,
        )
        assert earlier.status_code == 422, earlier.text
        assert scheduler.scheduled_at(tender_id) == later

        cancelled = await scene.client.post(
            f"{TENDERS}/{tender['id']}/cancel",
            json={"reason": "The budget was withdrawn"},
            headers=headers,
        )
        assert cancelled.status_code == 200, cancelled.text
        assert scheduler.scheduled_at(tender_id) is None

        # A full sync agrees with the hooks.
        await scheduler.sync()
        assert scheduler.scheduled_at(tender_id) is None

    async def test_changes_made_by_another_instance_are_followed_on_the_next_sync(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender = await scene.tender()
        tender_id = uuid.UUID(tender["id"])
        deadline = parse_time(tender["bid_deadline"])
        scheduler = make_scheduler(sync_every=timedelta(seconds=0.2))
        await scheduler.start()
        assert scheduler.scheduled_at(tender_id) == deadline

        later = deadline + timedelta(hours=5)
        await set_deadline(scene, tender, later)

        async def moved() -> bool:
            return scheduler.scheduled_at(tender_id) == later

        await eventually(moved, "the job to follow the deadline moved elsewhere")

        async with scene.engine.begin() as connection:
            await connection.execute(
                update(Tender)
                .where(Tender.id == tender_id)
                .values(status=TenderStatus.cancelled, updated_at=utcnow())
            )

        async def dropped() -> bool:
            return scheduler.scheduled_at(tender_id) is None

        await eventually(dropped, "the job of a tender cancelled elsewhere to go")


class TestLeases:
    async def test_an_abandoned_opening_is_taken_over_once_its_lease_expires(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender, receipts = await tender_with_bids(scene)
        await scene.pass_deadline(tender)
        tender_id = uuid.UUID(tender["id"])
        # Another instance claims the opening and dies before its next step.
        crashed = scene.context("crashed-instance", lease=timedelta(seconds=1))
        assert isinstance(await lease.claim(crashed, tender_id), lease.Claimed)
        expires = (await opening_row(scene, tender)).lease_expires_at
        assert expires is not None
        scheduler = make_scheduler("survivor")

        await scheduler.start()

        at = scheduler.scheduled_at(tender_id)
        assert at is not None
        assert at >= expires
        events = await finished_events(scene, tender)
        assert_whole_opening(events, receipts)  # one opening.started: the crashed one's
        assert parse_time(events[1]["at"]) >= to_millisecond(expires)
        opening = await opening_row(scene, tender)
        assert opening.lease_owner == "survivor"
        assert opening.completed_at is not None
        assert await status_of(scene, tender) is TenderStatus.opened

    async def test_a_lease_still_held_is_not_taken(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender, _receipts = await tender_with_bids(scene)
        await scene.pass_deadline(tender)
        tender_id = uuid.UUID(tender["id"])
        holder = scene.context("holder", lease=timedelta(seconds=60))
        assert isinstance(await lease.claim(holder, tender_id), lease.Claimed)
        expires = (await opening_row(scene, tender)).lease_expires_at
        assert expires is not None
        scheduler = make_scheduler("other")

        await scheduler.start()

        at = scheduler.scheduled_at(tender_id)
        assert at is not None
        assert at >= expires
        # Firing early changes nothing: the holder's lease stands and is waited for.
        assert isinstance(await lease.claim(scheduler.ctx, tender_id), lease.HeldElsewhere)
        assert (await opening_row(scene, tender)).lease_owner == "holder"
        assert types(await scene.events(tender)) == ["opening.started"]

    async def test_an_opening_started_elsewhere_replaces_a_later_deadline_job(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        # The deadline was set earlier outside the API (an operator's fix, a restore) and
        # another instance began the opening: the old job must not delay a takeover.
        tender, _receipts = await tender_with_bids(scene)
        tender_id = uuid.UUID(tender["id"])
        scheduler = make_scheduler("other")
        await scheduler.start()
        far = scheduler.scheduled_at(tender_id)
        assert far is not None and far > utcnow() + timedelta(days=1)
        await scene.pass_deadline(tender)
        holder = scene.context("holder", lease=LEASE)
        assert isinstance(await lease.claim(holder, tender_id), lease.Claimed)

        await scheduler.sync()

        expires = (await opening_row(scene, tender)).lease_expires_at
        at = scheduler.scheduled_at(tender_id)
        assert expires is not None and at is not None
        assert expires <= at < expires + timedelta(seconds=1)

    async def test_two_schedulers_open_a_tender_once(
        self, scene: Scene, make_scheduler: MakeScheduler
    ) -> None:
        tender, receipts = await tender_with_bids(scene)
        tender_id = uuid.UUID(tender["id"])
        await set_deadline(scene, tender, utcnow() + timedelta(seconds=1))
        schedulers = [make_scheduler("first"), make_scheduler("second")]
        for scheduler in schedulers:
            await scheduler.start()

        events = await finished_events(scene, tender)

        assert_whole_opening(events, receipts)
        assert (await opening_row(scene, tender)).lease_owner in {"first", "second"}

        async def no_jobs_left() -> bool:
            return all(scheduler.scheduled_at(tender_id) is None for scheduler in schedulers)

        # The loser waited for the winner's lease, then found the opening finished.
        await eventually(no_jobs_left, "both schedulers to forget the opened tender")
        assert types(await scene.events(tender)) == types(events)
