"""Who gets into a private opening's live room, over a real WebSocket: no
token, an expired or revoked one, a valid one of someone who is no participant of this tender
(another tender's bidder, another organization's officer, an admin), a token where the room
does not look for one, and a session cookie sent along by another site's page. Each is closed
before the welcome, with 4401 (not signed in), 4403 (not a participant) or 4404 (no such
tender), and hears no event.
"""

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bidding.auth.models import Organization, Role
from bidding.db import create_session_factory
from bidding.opening.endpoints import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from bidding.settings import Settings
from tests.factories import bearer, create_user, credit_code
from tests.reliability.attacks import generous_settings
from tests.support.live import (
    auth_message,
    closing,
    refused,
    revoke,
    stored_token,
    token_of,
    watch,
    welcome,
)
from tests.support.scene import LiveServer, Party, Scene
from tests.tenders.conftest import TENDERS, tender_body

Event = dict[str, Any]

UNAUTHENTICATED = (CLOSE_UNAUTHENTICATED, "the first message must be the auth message")
BAD_TOKEN = (CLOSE_UNAUTHENTICATED, "the token is invalid, expired or revoked")
FORBIDDEN = (CLOSE_FORBIDDEN, "only the tender's participants may watch its opening")
PING = '{"type": "ping"}'
PRICES = ("1000000.00", "950000.00", "1100000.00")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return generous_settings(tmp_path, database_url)


async def user(scene: Scene, role: Role, *, organization: bool = True) -> Party:
    async with create_session_factory(scene.engine)() as session:
        org = None
        if organization and role is not Role.admin:
            org = Organization(name=f"{role.value} elsewhere", code=credit_code())
            session.add(org)
            await session.flush()
        person = await create_user(session, role=role, organization=org)
        headers = await bearer(session, person)
        await session.commit()
    return Party(person, headers)


@pytest.fixture
async def tenders(scene: Scene) -> tuple[Event, Event, Party]:
    """A private opening with bids (this tender) and another with a bidder of its own."""
    this = await scene.tender()
    for price in PRICES:
        await scene.bid(this, {"price": price, "duration_days": 30})
    other = await scene.tender()
    elsewhere = await scene.bidder("Other Tender's Bidder Ltd")
    await scene.bid(other, {"price": PRICES[0], "duration_days": 30}, party=elsewhere)
    return this, other, elsewhere


class TestTokens:
    async def test_no_token_is_4401(
        self, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        room = live_server.room(tenders[0])
        for first in (PING, "", "null", '{"type": "auth", "token": null}', '{"token": "x"}'):
            assert await refused(room, first) == UNAUTHENTICATED, first
        # The client that says nothing at all is closed too (after the auth timeout); one
        # that hangs up first just leaves.

    async def test_an_expired_or_revoked_token_is_4401(
        self, scene: Scene, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        room = live_server.room(tenders[0])
        assert scene.officer is not None
        officer = scene.officer.user
        expired = await stored_token(scene, officer, expires_in=timedelta(seconds=-1))
        revoked = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        await revoke(scene, revoked)
        signed_out = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        logout = await scene.client.post(
            "/api/v1/auth/logout", headers={"Authorization": f"Bearer {signed_out}"}
        )
        assert logout.status_code == 204, logout.text
        for token in (
            expired,
            revoked,
            signed_out,
            "",
            " ",
            "x" * 4000,
            token_of(scene.officer)[:-1],
        ):
            assert await refused(room, auth_message(token)) == BAD_TOKEN, token[:20]
        # And the officer's valid token gets in.
        async with watch(room) as ws:
            await ws.send(auth_message(token_of(scene.officer)))
            assert (await welcome(ws))["tender_id"] == tenders[0]["id"]

    async def test_a_token_of_someone_who_is_no_participant_is_4403(
        self, scene: Scene, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        this, other, elsewhere = tenders
        room = live_server.room(this)
        outsiders = {
            "another tender's bidder": elsewhere,
            "a bidder that did not bid": await user(scene, Role.bidder),
            "another organization's officer": await user(scene, Role.officer),
            "another organization's supervisor": await user(scene, Role.supervisor),
            "an admin": await user(scene, Role.admin),
        }
        for name, party in outsiders.items():
            assert await refused(room, auth_message(token_of(party))) == FORBIDDEN, name
        # The other tender's bidder is welcome in its own tender's room.
        async with watch(live_server.room(other)) as ws:
            await ws.send(auth_message(token_of(elsewhere)))
            assert (await welcome(ws))["tender_id"] == other["id"]

    async def test_a_token_anywhere_but_the_first_message_is_not_looked_at(
        self, scene: Scene, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        assert scene.officer is not None
        token = token_of(scene.officer)
        room = live_server.room(tenders[0])
        # In the URL a token would end up in every proxy's log; in a header, browsers cannot
        # send one. The room takes neither: it waits for the auth message.
        assert await refused(f"{room}&token={token}", PING) == UNAUTHENTICATED
        assert await refused(f"{room}&access_token={token}", PING) == UNAUTHENTICATED
        headers = {"Authorization": f"Bearer {token}"}
        assert await refused(room, PING, additional_headers=headers) == UNAUTHENTICATED
        # Nor a second message after a wrong first one.
        assert await refused(room, PING, auth_message(token)) == UNAUTHENTICATED


class TestCookies:
    @pytest.mark.parametrize(
        "origin",
        [
            "https://evil.example",
            "null",
            "http://127.0.0.1.evil.example",
            "http://evil.example:{port}",
            "http://127.0.0.1:1",
            "http://{host}@evil.example",
        ],
    )
    async def test_a_cookie_sent_by_another_sites_page_is_ignored(
        self,
        scene: Scene,
        live_server: LiveServer,
        tenders: tuple[Event, Event, Party],
        origin: str,
    ) -> None:
        assert scene.officer is not None
        host = live_server.url.removeprefix("http://")
        port = host.rsplit(":", 1)[1]
        cookie = {"Cookie": f"bidding_session={token_of(scene.officer)}"}
        room = live_server.room(tenders[0])
        foreign = origin.format(host=host, port=port)
        assert await refused(room, PING, additional_headers=cookie, origin=foreign) == (
            UNAUTHENTICATED
        )
        # From our own page the same cookie is the officer.
        async with watch(room, additional_headers=cookie, origin=live_server.url) as ws:
            await welcome(ws)

    async def test_a_cookie_of_another_tenders_bidder_is_4403(
        self, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        this, _other, elsewhere = tenders
        cookie = {"Cookie": f"bidding_session={token_of(elsewhere)}"}
        assert await refused(live_server.room(this), additional_headers=cookie) == FORBIDDEN


class TestTenders:
    async def test_no_such_tender_a_draft_or_a_bad_id_is_4404(
        self, scene: Scene, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        assert scene.officer is not None
        draft = await scene.client.post(TENDERS, json=tender_body(), headers=scene.officer.headers)
        assert draft.status_code == 201, draft.text
        outsider = await user(scene, Role.officer)
        for tender_id in (
            str(uuid.uuid4()),
            draft.json()["id"],
            "not-a-uuid",
            "1'%20OR%20'1'='1",
            "%00",
        ):
            # The same with an officer's cookie of another organization: nothing more is said.
            cookie = {"Cookie": f"bidding_session={token_of(outsider)}"}
            for options in ({}, {"additional_headers": cookie}):
                code, _ = await refused(live_server.room({"id": tender_id}), **options)
                assert code == CLOSE_NOT_FOUND, tender_id

    async def test_a_refused_watcher_hears_no_event(
        self, scene: Scene, live_server: LiveServer, tenders: tuple[Event, Event, Party]
    ) -> None:
        this, _other, elsewhere = tenders
        await scene.pass_deadline(this)
        await scene.open(this)
        async with watch(live_server.room(this)) as ws:
            await ws.send(auth_message(token_of(elsewhere)))
            code, reason, messages = await closing(ws)
        assert (code, reason) == FORBIDDEN
        assert messages == []
