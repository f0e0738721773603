"""Early-opening attempts: before the deadline an officer, a supervisor and
an admin try every way into the bids the API has, and an insider calls the opening itself
(`bidding.opening.pipeline`) and the scheduler directly. All are refused; no bid is read from
the blob store, the tender's opening key is never unwrapped, the tender stays published with
no opening event, and every bid is still sealed and active. A call of the opening is recorded
in the tender's audit trail as `opening.refused_early`, with who asked and from where.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import func, select

from bidding.audit import service as audit
from bidding.auth.models import Organization, Role
from bidding.db import create_session_factory, utcnow
from bidding.opening import events as ev
from bidding.opening import lease, pipeline
from bidding.opening import secrets as opening_secrets
from bidding.opening.models import Opening, OpeningEvent
from bidding.opening.scheduler import OpeningScheduler
from bidding.settings import Settings
from bidding.tenders.blobs import BlobStore
from bidding.tenders.models import Bid, BidStatus, TenderStatus
from tests.factories import bearer, create_user
from tests.reliability.attacks import assert_error_shape, generous_settings
from tests.support.scene import Party, Scene
from tests.tenders.conftest import TENDERS

Event = dict[str, Any]
PRICES = ("1000000.00", "950000.00", "1100000.00")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return generous_settings(tmp_path, database_url)


class WatchedBlobs:
    """The real store, recording every bid that is opened for reading."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.opened: list[str] = []

    def put(self, staged: Path, digest: str) -> None:
        self.store.put(staged, digest)

    def exists(self, digest: str) -> bool:
        return self.store.exists(digest)

    def open(self, digest: str) -> BinaryIO:
        self.opened.append(digest)
        return self.store.open(digest)


@pytest.fixture
def unwrapped(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[uuid.UUID]]:
    """The tenders whose opening identity was unwrapped from the master key, in order."""
    calls: list[uuid.UUID] = []
    real = opening_secrets.opening_identity

    def watched(**kwargs: Any) -> Any:
        calls.append(kwargs["tender"].id)
        return real(**kwargs)

    monkeypatch.setattr(opening_secrets, "opening_identity", watched)
    yield calls


@pytest.fixture
async def sealed(scene: Scene) -> tuple[Event, list[Event], WatchedBlobs]:
    """A published tender with three sealed bids, its deadline an hour away; the app's blob
    store records every read."""
    tender = await scene.tender(bid_deadline=(utcnow() + timedelta(hours=1)).isoformat())
    receipts = [await scene.bid(tender, {"price": p, "duration_days": 90}) for p in PRICES]
    watched = WatchedBlobs(scene.app.state.blobs)
    scene.app.state.blobs = watched
    return tender, receipts, watched


async def party(scene: Scene, role: str) -> Party:
    """The tender's officer, a supervisor of its organization, or an admin of the platform."""
    assert scene.officer is not None
    if role == "officer":
        return scene.officer
    async with create_session_factory(scene.engine)() as session:
        organization = None
        if role == "supervisor":
            organization = await session.get(Organization, scene.officer.user.organization_id)
        user = await create_user(session, role=Role(role), organization=organization)
        headers = await bearer(session, user)
        await session.commit()
    return Party(user, headers)


def _deadline(tender: Event) -> datetime:
    return datetime.fromisoformat(tender["bid_deadline"].replace("Z", "+00:00"))


async def assert_still_sealed(
    scene: Scene,
    tender: Event,
    watched: WatchedBlobs,
    unwrapped: list[uuid.UUID],
    *,
    events: tuple[str, ...] = (),
) -> None:
    """Nothing was opened: no bid read, no key unwrapped, no opening event, every bid active."""
    tender_id = uuid.UUID(tender["id"])
    assert watched.opened == [], "a sealed bid was read before the deadline"
    assert unwrapped == [], "the opening key was unwrapped before the deadline"
    async with create_session_factory(scene.engine)() as session:
        written = list(
            await session.scalars(
                select(OpeningEvent.type)
                .where(OpeningEvent.tender_id == tender_id)
                .order_by(OpeningEvent.seq)
            )
        )
        opening = await session.get(Opening, tender_id)
        statuses = list(await session.scalars(select(Bid.status).where(Bid.tender_id == tender_id)))
    assert written == list(events)
    assert opening is None or (opening.started_at is None and opening.lease_owner is None)
    assert statuses == [BidStatus.active] * len(PRICES)
    assert scene.officer is not None
    read = await scene.client.get(f"{TENDERS}/{tender['id']}", headers=scene.officer.headers)
    assert read.json()["status"] == TenderStatus.published.value
    assert read.json()["bid_deadline"] == tender["bid_deadline"]


class TestThroughTheApi:
    @pytest.mark.parametrize("role", ["officer", "supervisor", "admin"])
    async def test_every_way_in_is_refused_before_the_deadline(
        self,
        scene: Scene,
        sealed: tuple[Event, list[Event], WatchedBlobs],
        unwrapped: list[uuid.UUID],
        role: str,
    ) -> None:
        tender, receipts, watched = sealed
        who = await party(scene, role)
        base = f"{TENDERS}/{tender['id']}"
        now = utcnow()
        attempts: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
            # Moving the deadline to now, or into the past, would open it at once.
            ("PATCH", base, {"bid_deadline": now.isoformat(), "reason": "open now"}, None),
            ("PATCH", base, {"bid_deadline": (now - timedelta(days=1)).isoformat()}, None),
            ("PATCH", base, {"bid_deadline": (now + timedelta(minutes=1)).isoformat()}, None),
            ("POST", f"{base}/publish", None, None),
            ("POST", f"{base}/opening/reveal", {"file_key": "AAAAAAAAAAAAAAAAAAAAAA=="}, None),
            ("POST", f"{base}/opening/objections", {"text": "open it now"}, None),
            ("POST", f"{base}/opening/record/confirm", None, None),
            ("GET", f"{base}/results", None, None),
            ("GET", f"{base}/opening/record", None, None),
            ("GET", f"{base}/log/head", None, None),
            ("GET", f"{base}/log/leaves", None, None),
            ("GET", f"{base}/log/proof", None, {"leaf_hash": receipts[0]["leaf_hash"]}),
            ("GET", f"{base}/bids/mine", None, None),
            ("GET", f"{base}/bids/mine/header", None, None),
        ]
        for method, path, body, params in attempts:
            response = await scene.client.request(
                method, path, json=body, params=params, headers=who.headers
            )
            assert_error_shape(response, 403, 404, 409, 422, case=(role, method, path, body))
        await assert_still_sealed(scene, tender, watched, unwrapped)

    async def test_the_scheduler_told_of_the_tender_waits_for_its_deadline(
        self,
        scene: Scene,
        sealed: tuple[Event, list[Event], WatchedBlobs],
        unwrapped: list[uuid.UUID],
    ) -> None:
        tender, _receipts, watched = sealed
        openings = OpeningScheduler(
            scene.context(blobs=watched), sync_every=timedelta(seconds=3600)
        )
        await openings.start()
        try:
            await openings.deadline_changed(uuid.UUID(tender["id"]))
            deadline = _deadline(tender)
            scheduled = openings.scheduled_at(uuid.UUID(tender["id"]))
            assert scheduled is not None
            assert abs(scheduled.astimezone(UTC) - deadline) < timedelta(milliseconds=1)
        finally:
            await openings.stop()
        await assert_still_sealed(scene, tender, watched, unwrapped)


class TestDirectCalls:
    async def test_the_opening_function_refuses_before_the_deadline_and_audits_it(
        self,
        scene: Scene,
        sealed: tuple[Event, list[Event], WatchedBlobs],
        unwrapped: list[uuid.UUID],
    ) -> None:
        tender, _receipts, watched = sealed
        tender_id = uuid.UUID(tender["id"])
        officer = (await party(scene, "officer")).user
        admin = (await party(scene, "admin")).user
        attempts = [("test-instance", None), ("an-insider's-process", officer.actor)]
        attempts += [("an-insider's-process", admin.actor)]
        for instance, actor in attempts:
            ctx = scene.context(instance=instance, blobs=watched)
            outcome = await pipeline.run(ctx, tender_id, actor=actor)
            assert isinstance(outcome, lease.NotDue), outcome
            assert outcome.deadline == _deadline(tender)
        await assert_still_sealed(scene, tender, watched, unwrapped)
        # Each attempt is in the tender's audit trail, by whom and from which process, and
        # the trail still verifies.
        async with create_session_factory(scene.engine)() as session:
            trail = await audit.after(session=session, chain=audit.tender_chain(tender_id))
            verified = await audit.verify(session=session)
        refused = [
            (e.actor_user_id, e.details["instance"])
            for e in trail
            if e.action.startswith("opening")
        ]
        assert refused == [(None if a is None else a.id, i) for i, a in attempts]
        assert {e.action for e in trail if e.action.startswith("opening")} == {
            "opening.refused_early"
        }
        assert verified.broken == []

    @pytest.mark.parametrize("room_exists", [False, True])
    async def test_the_steps_without_the_claim_write_nothing_and_open_nothing(
        self,
        scene: Scene,
        sealed: tuple[Event, list[Event], WatchedBlobs],
        unwrapped: list[uuid.UUID],
        room_exists: bool,
    ) -> None:
        # An insider skipping the claim and running the steps themselves: every step writes
        # its event under the lease, which only the claim at the deadline gives. The lease is
        # missing whether the opening's row is absent or made by a check-in in the room.
        tender, _receipts, watched = sealed
        events: tuple[str, ...] = ()
        if room_exists:
            assert scene.officer is not None
            checked_in = await scene.client.post(
                f"{TENDERS}/{tender['id']}/opening/check-in", headers=scene.officer.headers
            )
            assert checked_in.status_code == 200, checked_in.text
            events = (ev.CHECKED_IN,)
        steps = pipeline._Opening(scene.context(blobs=watched), uuid.UUID(tender["id"]))
        with pytest.raises(ev.LeaseLost):
            await steps.run()
        await assert_still_sealed(scene, tender, watched, unwrapped, events=events)

    async def test_a_clock_of_the_caller_one_millisecond_early_is_still_early(
        self,
        scene: Scene,
        sealed: tuple[Event, list[Event], WatchedBlobs],
        unwrapped: list[uuid.UUID],
    ) -> None:
        tender, _receipts, watched = sealed
        deadline = _deadline(tender)
        almost = scene.context(blobs=watched, clock=lambda: deadline - timedelta(milliseconds=1))
        assert isinstance(await pipeline.run(almost, uuid.UUID(tender["id"])), lease.NotDue)
        await assert_still_sealed(scene, tender, watched, unwrapped)


async def test_the_refused_attempts_leave_the_tender_to_open_at_its_deadline(
    scene: Scene, sealed: tuple[Event, list[Event], WatchedBlobs]
) -> None:
    # After all the refusals the tender still opens, once, at its deadline.
    tender, receipts, watched = sealed
    assert isinstance(await scene.open(tender, blobs=watched), lease.NotDue)
    await scene.pass_deadline(tender)
    assert isinstance(await scene.open(tender, blobs=watched), lease.Claimed)
    assert set(watched.opened) == {r["body"]["sha256"] for r in receipts}
    events = await scene.events(tender)
    assert [e["type"] for e in events].count(ev.STARTED) == 1
    assert events[-1]["type"] == ev.COMPLETED
    async with create_session_factory(scene.engine)() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OpeningEvent)
            .where(OpeningEvent.tender_id == uuid.UUID(tender["id"]))
        )
    assert count == len(events)
