"""One clock: the platform's (bidding.db.utcnow) decides deadlines, for acceptance and opening
alike, whatever the database's clock says; a database clock off by more than a second is
reported at start-up."""

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import bidding.db
from bidding.app import check_database_clock, create_app, database_clock_offset
from bidding.auth.models import Role
from bidding.crypto import age
from bidding.db import iso_utc, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import lease
from bidding.settings import Settings
from tests.factories import bearer, create_user
from tests.tenders.conftest import TENDERS, tender_body

_real_datetime = datetime


class AppClock:
    """The platform's one clock under the test's control: the real time shifted by `offset`,
    or a fixed `moment`. The database keeps its own, real, clock."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.moment: datetime | None = None

    def now(self) -> datetime:
        return self.moment or _real_datetime.now(UTC) + self.offset


@pytest.fixture
def app_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppClock]:
    clock = AppClock()

    class ShiftedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return clock.now().astimezone(tz)

    # utcnow() reads the module's `datetime`: every caller of the one clock follows it.
    monkeypatch.setattr(bidding.db, "datetime", ShiftedDatetime)
    yield clock


SKEW = timedelta(minutes=5)


class TestStartUpCheck:
    async def test_the_database_clock_is_read_as_aware_utc(self, engine: AsyncEngine) -> None:
        database, platform = await database_clock_offset(engine)
        assert database.tzinfo is not None and platform.tzinfo is not None
        assert abs(database - platform) < timedelta(seconds=1)

    @pytest.mark.parametrize("skew", [SKEW, -SKEW])
    async def test_a_clock_off_by_minutes_is_a_warning_with_both_times_and_the_difference(
        self,
        engine: AsyncEngine,
        app_clock: AppClock,
        caplog: pytest.LogCaptureFixture,
        skew: timedelta,
    ) -> None:
        app_clock.offset = skew
        with caplog.at_level(logging.WARNING, logger="bidding.app"):
            difference = await check_database_clock(engine)
        assert abs(difference + skew) < timedelta(seconds=1)
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        database, platform, apart = record.args  # type: ignore[misc]
        message = record.getMessage()
        assert database in message and platform in message and f"{apart:+.3f} s" in message
        between = datetime.fromisoformat(database) - datetime.fromisoformat(platform)
        assert abs(between + skew) < timedelta(seconds=1)
        assert apart == pytest.approx(between.total_seconds())

    async def test_clocks_within_a_second_say_nothing(
        self, engine: AsyncEngine, app_clock: AppClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        app_clock.offset = timedelta(milliseconds=300)
        with caplog.at_level(logging.WARNING, logger="bidding.app"):
            await check_database_clock(engine)
        assert caplog.records == []

    async def test_the_server_checks_at_start(
        self,
        engine: AsyncEngine,
        database_url: str,
        tmp_path: Path,
        app_clock: AppClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        app_clock.offset = SKEW
        app = create_app(Settings(data_dir=tmp_path, database_url=database_url, demo=False))
        with caplog.at_level(logging.WARNING, logger="bidding.app"):
            async with app.router.lifespan_context(app):
                pass
        assert any("database's clock" in r.getMessage() for r in caplog.records)


class TestDeadlineByOneClock:
    """The platform's clock is minutes off from the database's, either way: a bid a second
    before the deadline by the platform's clock is taken, a second after refused, and the
    opening does not start before that same moment and starts after it."""

    @pytest.mark.parametrize("skew", [SKEW, -SKEW])
    async def test_acceptance_and_opening_follow_the_platform_clock(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        session: AsyncSession,
        platform_keys: PlatformKeys,
        app_clock: AppClock,
        skew: timedelta,
    ) -> None:
        app_clock.offset = skew
        officer = await bearer(session, await create_user(session, role=Role.officer))
        bidder = await bearer(session, await create_user(session))
        deadline = utcnow().replace(microsecond=0) + timedelta(minutes=10)
        created = await client.post(
            TENDERS, json=tender_body(bid_deadline=deadline.isoformat()), headers=officer
        )
        tender = (
            await client.post(f"{TENDERS}/{created.json()['id']}/publish", headers=officer)
        ).json()
        recipient = age.Recipient.parse(tender["opening_recipient"])
        tender_id = uuid.UUID(tender["id"])
        ctx = lease.Context(
            session_factory=app.state.session_factory,
            keys=platform_keys,
            blobs=app.state.blobs,
            instance="clock-test",
        )

        async def submit() -> httpx.Response:
            form = json.dumps({"price": "1000000.00", "duration_days": 90}).encode()
            return await client.post(
                f"{TENDERS}/{tender_id}/bids",
                content=age.seal_bytes(form, [recipient]),
                headers={**bidder, "Content-Type": "application/octet-stream"},
            )

        app_clock.moment = deadline - timedelta(seconds=1)
        accepted = await submit()
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["body"]["received_at"] == iso_utc(app_clock.moment)
        assert await lease.claim(ctx, tender_id) == lease.NotDue(deadline)

        app_clock.moment = deadline + timedelta(seconds=1)
        refused = await submit()
        assert refused.status_code == 409
        assert refused.json()["type"] == "deadline_passed"
        assert await lease.claim(ctx, tender_id) == lease.Claimed()
        opening = (await client.get(f"{TENDERS}/{tender_id}/opening", headers=officer)).json()
        assert opening["started_at"] == iso_utc(app_clock.moment)
