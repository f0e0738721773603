"""A session that ends closes the live-room connections it opened (4401): at its expiry, at
once on a sign-out on this instance, and within BIDDING_SESSION_CHECK_SECONDS on a sign-out
elsewhere (the token's row, revoked by another instance). Anonymous watchers of public
openings are not touched. Real WebSocket clients against uvicorn, as in test_live_room.py."""

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection

from bidding.app import create_app
from bidding.auth.models import User
from bidding.db import create_session_factory, utcnow
from bidding.settings import Settings
from tests.support.live import (
    auth_message,
    closing,
    receive,
    revoke,
    stored_token,
    watch,
    welcome,
    with_bids,
)
from tests.support.scene import LiveServer, Scene

ENDED = (4401, "the session ended: signed out")
REVOKED = (4401, "the session was revoked: sign in again")
EXPIRED = (4401, "the session expired: sign in again")


async def admitted(
    live_server: LiveServer, tender: dict[str, object], token: str
) -> ClientConnection:
    ws = await watch(live_server.room(tender))
    await ws.send(auth_message(token))
    await welcome(ws)
    return ws


async def closed_within(ws: ClientConnection, seconds: float) -> tuple[int | None, str, float]:
    """How the server closed the connection, and after how long; fails past `seconds`."""
    started = time.monotonic()
    code, reason, _ = await asyncio.wait_for(closing(ws), seconds)
    return code, reason, time.monotonic() - started


async def still_open(ws: ClientConnection, ticks: int = 3) -> None:
    """Ticks keep coming (every 0.5 s): the connection is served."""
    for _ in range(ticks):
        while (await receive(ws))["type"] != "tick":
            pass


class TestWithARareCheck:
    """The row is checked only every 60 s: what closes the connection here is the timer from
    the token's expiry, or this instance's own sign-out."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"session_check_seconds": 60})

    async def test_a_session_that_expires_closes_its_connection_at_its_expiry(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene)
        assert scene.officer is not None
        lifetime = 8.0  # admission takes well under this, even on a loaded machine
        token = await stored_token(
            scene, scene.officer.user, expires_in=timedelta(seconds=lifetime)
        )
        expires_at = utcnow() + timedelta(seconds=lifetime)
        ws = await admitted(live_server, tender, token)
        code, reason, _ = await closed_within(ws, lifetime + 20)
        assert (code, reason) == EXPIRED
        # Not before the expiry, and not a check's interval after it.
        late = (utcnow() - expires_at).total_seconds()
        assert -0.5 <= late < 10

    async def test_signing_out_on_this_instance_closes_at_once(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene)
        assert scene.officer is not None
        officer = scene.officer.user
        token = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        other = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        ws = await admitted(live_server, tender, token)
        on_phone = await admitted(live_server, tender, other)

        signed_out = await scene.client.post(
            "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        assert signed_out.status_code == 204
        code, reason, took = await closed_within(ws, 30)
        assert (code, reason) == ENDED
        assert took < 10  # the check would have taken 60 s
        # The same user's other session keeps its connection.
        await still_open(on_phone)
        await on_phone.close()

    async def test_a_cookie_session_signed_out_closes_its_connection_too(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()
        bidder = await scene.bidder()
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100}, party=bidder)
        token = await stored_token(scene, bidder.user, expires_in=timedelta(hours=1))
        cookie = {"Cookie": f"bidding_session={token}"}
        async with watch(
            live_server.room(tender), additional_headers=cookie, origin=live_server.url
        ) as ws:
            await welcome(ws)
            signed_out = await scene.client.post(
                "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            assert signed_out.status_code == 204
            code, reason, took = await closed_within(ws, 30)
        assert (code, reason) == ENDED and took < 10


class TestWithAFrequentCheck:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"session_check_seconds": 0.5})

    @pytest.mark.parametrize("how", ["signed out elsewhere", "user deactivated"])
    async def test_a_session_ended_on_another_instance_closes_within_the_interval(
        self, scene: Scene, live_server: LiveServer, settings: Settings, how: str
    ) -> None:
        tender, _ = await with_bids(scene)
        assert scene.officer is not None
        officer = scene.officer.user
        token = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        ws = await admitted(live_server, tender, token)
        await still_open(ws, ticks=1)
        if how == "signed out elsewhere":
            # Another instance of the platform on the same database: no word reaches this one.
            other = create_app(settings, manage_state=False)
            other.state.session_factory = create_session_factory(scene.engine)
            other.state.keys = scene.keys
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as http:
                signed_out = await http.post(
                    "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
                )
            assert signed_out.status_code == 204
        else:
            async with create_session_factory(scene.engine)() as session:
                await session.execute(
                    update(User).where(User.id == officer.id).values(is_active=False)
                )
                await session.commit()
        code, reason, took = await closed_within(ws, 30)
        assert (code, reason) == REVOKED
        assert took < 10

    async def test_watchers_of_a_public_opening_are_not_touched(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        assert scene.officer is not None
        token = await stored_token(scene, scene.officer.user, expires_in=timedelta(seconds=3))
        cookie = {"Cookie": f"bidding_session={token}"}
        async with (
            watch(live_server.room(tender)) as anonymous,
            watch(
                live_server.room(tender), additional_headers=cookie, origin=live_server.url
            ) as signed_in,
        ):
            await welcome(anonymous)
            await welcome(signed_in)
            await revoke(scene, token)
            await asyncio.sleep(3.5)  # past the expiry and several checks
            await still_open(anonymous)
            await still_open(signed_in)
