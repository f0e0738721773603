"""The live opening room in process: uvicorn in the test loop serving the app
with a hub, real WebSocket clients, and the opening run by the pipeline as the scheduler runs it.

What a watcher receives must be the opening's events exactly: every seq once, in order, equal
to GET …/opening/events, however it joined, left, came back or fell behind. Besides that: who
may watch, what the room answers to a client's messages, and the actions taken in the room.

To hold an opening in the middle, bids are opened from a blob store whose reads wait until the
test lets each bid through (GatedBlobs): the pipeline publishes bids in the listed order, so the
events written so far are exactly those of the bids let through.
"""

import asyncio
import contextlib
import json
import re
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest
import uvicorn
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bidding.auth.models import AccessToken, User
from bidding.auth.tokens import hash_token, new_token
from bidding.crypto.signing import VerifyKey, verify_document
from bidding.db import create_session_factory, utcnow
from bidding.opening import events as ev
from bidding.opening import lease
from bidding.opening.live import MAX_CLIENT_FRAME_BYTES, QUEUE_FRAMES, Hub, Watcher
from bidding.tenders.blobs import BlobStore
from tests.opening.conftest import LiveServer, Party, Scene
from tests.tenders.conftest import TENDERS, tender_body

Event = dict[str, Any]
# Only waited for when something is wrong; generous for a loaded machine.
WAIT = 30.0
PRICES = ("1000000.00", "950000.00", "1100000.00", "1020000.00")


def form(price: str, **fields: Any) -> dict[str, Any]:
    return {"price": price, "duration_days": 100, **fields}


def token_of(party: Party) -> str:
    return party.headers["Authorization"].removeprefix("Bearer ")


def assert_gapless(events: list[Event], first: int = 1) -> None:
    assert [event["seq"] for event in events] == list(range(first, first + len(events)))


# --- WebSocket clients ---------------------------------------------------------------------


def watch(url: str, **options: Any) -> connect:
    """A client of the room; no proxy, and no close handshake waited for long."""
    return connect(url, proxy=None, open_timeout=WAIT, close_timeout=2, **options)


async def receive(ws: ClientConnection) -> Event:
    message: Event = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def welcome(ws: ClientConnection) -> Event:
    message = await receive(ws)
    assert message["type"] == "welcome", message
    return message


async def events_until(ws: ClientConnection, until: str | int) -> list[Event]:
    """The events received (other messages left out) up to one of type or seq `until`."""
    events: list[Event] = []
    while True:
        message = await receive(ws)
        if "seq" in message:
            events.append(message)
            if until in (message["type"], message["seq"]):
                return events


async def closing(ws: ClientConnection) -> tuple[int | None, str, list[Event]]:
    """Read until the server closes: its close code and reason, and what came before."""
    messages: list[Event] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            messages.append(await receive(ws))
    return ws.close_code, ws.close_reason, messages


async def refused(url: str, *first: str | bytes, **options: Any) -> tuple[int | None, str]:
    """Connect, send the messages, and return how the room closed the connection."""
    async with watch(url, **options) as ws:
        for message in first:
            await ws.send(message)
        code, reason, messages = await closing(ws)
    assert [m for m in messages if m["type"] == "welcome"] == [], "refused before welcome"
    return code, reason


async def quiet_after_tail(ws: ClientConnection) -> None:
    """Two ticks come (the hub ticks every 0.5 s) and no event with them."""
    ticks = 0
    while ticks < 2:
        message = await receive(ws)
        assert "seq" not in message, f"an event after the last one: {message}"
        ticks += message["type"] == "tick"


# --- holding an opening in the middle ------------------------------------------------------


class GatedBlobs:
    """The real store, except that a bid's blob opens only once its gate is lifted."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.everything = False
        self._gates: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self._lock = threading.Lock()

    def _gate(self, digest: str) -> threading.Event:
        with self._lock:
            return self._gates[digest]

    def lift(self, *receipts: Event) -> None:
        for receipt in receipts:
            self._gate(receipt["body"]["sha256"]).set()

    def lift_all(self) -> None:
        with self._lock:
            self.everything = True
            for gate in self._gates.values():
                gate.set()

    def put(self, staged: Path, digest: str) -> None:
        self.store.put(staged, digest)

    def exists(self, digest: str) -> bool:
        return self.store.exists(digest)

    def open(self, digest: str) -> BinaryIO:
        gate = self._gate(digest)
        if not self.everything and not gate.wait(timeout=WAIT):
            raise TimeoutError(f"the test never let the bid {digest} through")
        return self.store.open(digest)


@contextlib.asynccontextmanager
async def opening_held(scene: Scene, tender: Event) -> AsyncIterator[GatedBlobs]:
    """The tender's opening running in the background, each bid waiting to be let through;
    at the end every bid is let through and the opening must have finished well."""
    gated = GatedBlobs(scene.app.state.blobs)
    running = asyncio.create_task(scene.open(tender, blobs=gated))
    try:
        yield gated
    finally:
        gated.lift_all()
        claim = await asyncio.wait_for(running, WAIT)
    assert isinstance(claim, lease.Claimed)


async def last_seq(scene: Scene, tender: Event) -> int:
    seq: int = (await scene.get(tender, "/opening")).json()["last_seq"]
    return seq


async def until_written(scene: Scene, tender: Event, seq: int) -> None:
    """Wait until the opening has committed its event number seq."""
    async with asyncio.timeout(WAIT):
        while await last_seq(scene, tender) < seq:
            await asyncio.sleep(0.02)


async def with_bids(scene: Scene, *, bids: int = 3, **changes: Any) -> tuple[Event, list[Event]]:
    """A tender with bids handed in, its deadline not passed yet."""
    tender = await scene.tender(**changes)
    receipts = [await scene.bid(tender, form(price)) for price in PRICES[:bids]]
    return tender, receipts


# --- watching ------------------------------------------------------------------------------


class TestWatching:
    async def test_watchers_from_before_the_deadline_get_the_whole_opening_without_a_gap(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with contextlib.AsyncExitStack() as stack:
            watchers = [
                await stack.enter_async_context(watch(live_server.room(tender))) for _ in range(3)
            ]
            for ws in watchers:
                assert (await welcome(ws))["last_seq"] == 0
            # A participant on a public tender may still say who it is: it stays a watcher.
            assert scene.officer is not None
            signed = watchers[0]
            await signed.send(json.dumps({"type": "auth", "token": token_of(scene.officer)}))
            authenticated = await replied(signed)
            assert authenticated == {"type": "authenticated", "user_id": str(scene.officer.user.id)}

            await scene.pass_deadline(tender)
            assert isinstance(await scene.open(tender), lease.Claimed)

            seen = [await events_until(ws, ev.COMPLETED) for ws in watchers]
        events = await scene.events(tender)
        assert_gapless(events)
        assert [event["type"] for event in events][:3] == [
            ev.STARTED,
            ev.LOG_SEALED,
            ev.BIDS_LISTED,
        ]
        assert events[-1]["type"] == ev.COMPLETED
        for watched in seen:
            assert watched == events

    async def test_a_watcher_that_leaves_mid_opening_resumes_after_its_last_seq(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, receipts = await with_bids(scene, bids=4, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)
            await scene.pass_deadline(tender)
            async with opening_held(scene, tender) as gated:
                gated.lift(receipts[0])
                # started, sealed, listed, and the first bid: the opening waits for the second.
                before = await events_until(ws, 4)
                await ws.close()

                gated.lift(receipts[1])
                await until_written(scene, tender, 5)  # an event the watcher was not there for
                async with watch(live_server.room(tender, after=4)) as again:
                    assert (await welcome(again))["after"] == 4
                    replayed = await events_until(again, 5)
                    gated.lift(*receipts[2:])
                    live = await events_until(again, ev.COMPLETED)
                    await quiet_after_tail(again)

        events = await scene.events(tender)
        assert before + replayed + live == events
        assert_gapless(events)
        assert [event["type"] for event in before][-1] == ev.BID_DECRYPTED
        assert replayed == [events[4]]

    async def test_after_the_opening_a_watcher_gets_exactly_the_events_after_its_seq(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), lease.Claimed)
        events = await scene.events(tender)
        total = len(events)

        async def tail(after: int) -> list[Event]:
            async with watch(live_server.room(tender, after=after)) as ws:
                hello = await welcome(ws)
                assert (hello["after"], hello["last_seq"]) == (after, total)
                tail = await events_until(ws, ev.COMPLETED) if after < total else []
                await quiet_after_tail(ws)
            return tail

        afters = (0, 1, 3, total - 1, total)
        tails = await asyncio.gather(*(tail(after) for after in afters))
        for after, received in zip(afters, tails, strict=True):
            assert received == events[after:], after

    async def test_ticks_come_every_half_second_and_carry_no_seq(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)
            ticks = [await receive(ws) for _ in range(2)]
        for tick in ticks:
            assert tick.keys() == {"type", "server_time"}
            assert tick["type"] == "tick"
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", tick["server_time"])
        assert ticks[0]["server_time"] < ticks[1]["server_time"]


# --- who may watch -------------------------------------------------------------------------


class TestWhoMayWatch:
    async def test_anyone_may_watch_a_public_opening(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            hello = await welcome(ws)
        assert hello["tender_id"] == tender["id"]
        assert (hello["after"], hello["last_seq"]) == (0, 0)

    async def test_a_private_opening_wants_an_auth_message_first(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene)
        room = live_server.room(tender)
        long_auth = auth_message("x" * 5000)  # no token is that long: not even looked up
        for first in ('{"type": "ping"}', "not json", b"\x00binary", '{"type": "auth"}', long_auth):
            code, reason = await refused(room, first)
            assert (code, reason) == (4401, "the first message must be the auth message")

    async def test_a_token_in_the_first_message_admits_the_participants(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()
        bidder = await scene.bidder()
        for price in PRICES[:2]:
            await scene.bid(tender, form(price))
        await scene.bid(tender, form(PRICES[2]), party=bidder)
        assert scene.officer is not None
        room = live_server.room(tender)

        for party in (scene.officer, bidder):
            async with watch(room) as ws:
                await ws.send(auth_message(token_of(party)))
                assert (await welcome(ws))["tender_id"] == tender["id"]
        # From any origin: unlike a cookie, a token is never sent by the browser on its own.
        async with watch(room, origin="https://elsewhere.example") as ws:
            await ws.send(auth_message(token_of(bidder)))
            await welcome(ws)

    async def test_a_token_unknown_expired_or_revoked_is_refused(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene)
        room = live_server.room(tender)
        assert scene.officer is not None
        officer = scene.officer.user
        expired = await stored_token(scene, officer, expires_in=timedelta(seconds=-1))
        revoked = await stored_token(scene, officer, expires_in=timedelta(hours=1))
        async with watch(room) as ws:
            await ws.send(auth_message(revoked))
            await welcome(ws)
        await revoke(scene, revoked)

        for token in ("made-up", expired, revoked):
            code, reason = await refused(room, auth_message(token))
            assert (code, reason) == (4401, "the token is invalid, expired or revoked")

    async def test_a_bidder_that_did_not_bid_may_not_watch_a_private_opening(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene)
        outsider = await scene.bidder("Did Not Bid Ltd")
        room = live_server.room(tender)
        forbidden = (4403, "only the tender's participants may watch its opening")

        cookie = {"Cookie": f"bidding_session={token_of(outsider)}"}
        assert await refused(room, additional_headers=cookie) == forbidden
        assert await refused(room, auth_message(token_of(outsider))) == forbidden

    async def test_the_session_cookie_counts_only_from_our_own_origin(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()
        bidder = await scene.bidder()
        await scene.bid(tender, form(PRICES[0]), party=bidder)
        room = live_server.room(tender)
        token = await stored_token(scene, bidder.user, expires_in=timedelta(hours=1))
        cookie = {"Cookie": f"bidding_session={token}"}
        unauthenticated = (4401, "the first message must be the auth message")

        async with watch(room, additional_headers=cookie) as ws:
            await welcome(ws)
        async with watch(room, additional_headers=cookie, origin=live_server.url) as ws:
            await welcome(ws)
        # Another site's page: the browser sends our cookie along, the room ignores it.
        foreign = {"additional_headers": cookie, "origin": "https://evil.example"}
        assert await refused(room, '{"type": "ping"}', **foreign) == unauthenticated
        # A stale cookie is no one's: the room asks for the auth message, as without one.
        await revoke(scene, token)
        assert await refused(room, '{"type": "ping"}', additional_headers=cookie) == (
            unauthenticated
        )
        expired = await stored_token(scene, bidder.user, expires_in=timedelta(seconds=-1))
        stale = {"Cookie": f"bidding_session={expired}"}
        assert await refused(room, '{"type": "ping"}', additional_headers=stale) == (
            unauthenticated
        )

    async def test_an_unknown_tender_is_not_found(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        for tender_id in (str(uuid.uuid4()), "not-a-uuid"):
            code, _ = await refused(live_server.room({"id": tender_id}))
            assert code == 4404, tender_id
        # A draft is nobody's business either.
        assert scene.officer is not None
        draft = await scene.client.post(TENDERS, json=tender_body(), headers=scene.officer.headers)
        assert draft.status_code == 201, draft.text
        code, _ = await refused(live_server.room(draft.json()))
        assert code == 4404
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)

    async def test_after_must_be_a_non_negative_integer(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        room = live_server.room(tender).removesuffix("?after=0")
        for after in ("-1", "abc", "1.5", "", "%C2%B2"):
            code, reason = await refused(f"{room}?after={after}")
            assert (code, reason) == (4400, "after must be a non-negative integer"), after


def auth_message(token: str) -> str:
    return json.dumps({"type": "auth", "token": token})


async def revoke(scene: Scene, token: str) -> None:
    async with create_session_factory(scene.engine)() as session:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == hash_token(token))
            .values(revoked_at=utcnow())
        )
        await session.commit()


async def stored_token(scene: Scene, user: User, *, expires_in: timedelta) -> str:
    """A token of the user, written directly, expiring after the given time."""
    token = new_token()
    async with create_session_factory(scene.engine)() as session:
        session.add(
            AccessToken(
                token_hash=hash_token(token), user_id=user.id, expires_at=utcnow() + expires_in
            )
        )
        await session.commit()
    return token


# --- what the room answers -----------------------------------------------------------------


class TestClientMessages:
    async def test_a_malformed_message_gets_an_error_and_the_connection_stays(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)
            for message in ("not json", "[1, 2]", '{"type": "dance"}', "{}", b"\x00\x01", "7"):
                await ws.send(message)
                answer = await replied(ws)
                assert answer["type"] == "error", message
                assert answer["detail"]
            await ws.send(auth_message("made-up"))
            assert (await replied(ws))["type"] == "error"
            # Exactly the largest message allowed: answered, not closed.
            await ws.send("x" * MAX_CLIENT_FRAME_BYTES)
            assert (await replied(ws))["type"] == "error"

            await ws.send('{"type": "ping"}')
            pong = await replied(ws)
        assert pong.keys() == {"type", "server_time"}
        assert pong["type"] == "pong"

    async def test_a_flood_of_messages_closes_the_connection(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)
            for _ in range(31):
                await ws.send('{"type": "ping"}')
            code, reason, messages = await closing(ws)
        assert (code, reason) == (1008, "too many messages")
        assert {message["type"] for message in messages} <= {"pong", "tick"}
        assert sum(message["type"] == "pong" for message in messages) <= 30

    async def test_a_message_over_64_kib_closes_the_connection(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender, _ = await with_bids(scene, public_opening=True)
        async with watch(live_server.room(tender)) as ws:
            await welcome(ws)
            await ws.send("x" * (MAX_CLIENT_FRAME_BYTES + 1))
            code, _, messages = await closing(ws)
        assert code == 1009
        assert [message["type"] for message in messages if message["type"] != "tick"] == []


async def replied(ws: ClientConnection) -> Event:
    """The next message that is not a tick."""
    while True:
        message = await receive(ws)
        if message["type"] != "tick":
            return message


# --- a watcher that cannot keep up ---------------------------------------------------------

SMALL_QUEUE = 4
NOTES = 3  # text fields of the bid form, each filled to the brim: big events


@pytest.fixture
async def narrow_server(scene: Scene, database_url: str) -> AsyncIterator[LiveServer]:
    """As live_server, but each connection's kernel send buffer is small (accepted sockets
    inherit it from the listening one): what a watcher does not read soon backs up to the
    server's own buffers, as it does over a slow network."""
    hub = Hub(create_session_factory(scene.engine), database_url=database_url, tick_seconds=0.5)
    await hub.start()
    scene.app.state.hub = hub
    scene.announce = hub.notify
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(
        scene.app,
        log_level="warning",
        ws_max_size=MAX_CLIENT_FRAME_BYTES,
        ws_per_message_deflate=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        async with asyncio.timeout(WAIT):
            while not server.started:
                assert not serving.done(), "uvicorn did not start"
                await asyncio.sleep(0.01)
        yield LiveServer(f"http://127.0.0.1:{port}", hub)
    finally:
        server.should_exit = True
        await serving
        listening.close()
        await hub.stop()
        del scene.app.state.hub


async def slow_socket(url: str) -> socket.socket:
    """A connected socket with a small receive buffer: little is taken in while not reading."""
    address = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
    return sock


async def join(
    hub: Hub, tender: Event, url: str, queue_frames: int, **options: Any
) -> tuple[ClientConnection, Watcher]:
    """Enter the room with a queue of the given size: the connection and its hub watcher."""
    tender_id = uuid.UUID(tender["id"])
    room = hub.rooms.get(tender_id)
    before = set() if room is None else set(room.watchers)
    hub.queue_frames = queue_frames
    try:
        ws = await watch(url, **options)
        await welcome(ws)
    finally:
        hub.queue_frames = QUEUE_FRAMES
    (watcher,) = hub.rooms[tender_id].watchers - before
    assert watcher.most_behind == queue_frames
    return ws, watcher


class TestFallingBehind:
    async def test_a_watcher_that_does_not_read_is_told_where_to_resume_and_others_go_on(
        self, scene: Scene, narrow_server: LiveServer
    ) -> None:
        notes = [{"name": f"note_{n}", "type": "text"} for n in range(NOTES)]
        tender = await scene.tender(public_opening=True, bid_fields=notes)
        receipts = []
        for number, price in enumerate([*PRICES, *PRICES]):
            filled = {f"note_{n}": f"{number}{n}" * 5000 for n in range(NOTES)}  # 10,000 each
            receipts.append(await scene.bid(tender, {"price": price, **filled}))
        hub, room = narrow_server.hub, narrow_server.room(tender)

        # All three with a room of their own queue; only the first one does not read.
        sock = await slow_socket(room)
        slow, dropped = await join(hub, tender, room, SMALL_QUEUE, sock=sock, max_queue=1)
        brisk, kept = await join(hub, tender, room, SMALL_QUEUE)
        steady, _ = await join(hub, tender, room, QUEUE_FRAMES)
        try:

            async def read_once_dropped() -> tuple[int | None, str, list[Event]]:
                # The room waits 2 s for the close to get through what is already queued.
                await dropped.fell_behind.wait()
                return await closing(slow)

            slow_end = asyncio.create_task(read_once_dropped())
            await scene.pass_deadline(tender)
            async with opening_held(scene, tender) as gated:
                by_brisk = await events_until(brisk, ev.BIDS_LISTED)
                # One bid at a time, each event read before the next: no burst overflows the
                # small queue of a watcher that reads.
                for receipt in receipts:
                    gated.lift(receipt)
                    by_brisk += await events_until(brisk, len(by_brisk) + 1)
            by_brisk += await events_until(brisk, ev.COMPLETED)
            everything = await events_until(steady, ev.COMPLETED)
            code, reason, before = await asyncio.wait_for(slow_end, WAIT)
            await quiet_after_tail(brisk)
        finally:
            for ws in (slow, brisk, steady):
                await ws.close()

        assert code == 4008, (code, reason, watcher_state(dropped))
        assert not kept.fell_behind.is_set()
        resume = re.fullmatch(r"fell behind: reconnect with after=(\d+)", reason)
        assert resume is not None, reason
        after = int(resume[1])
        received = [message for message in before if "seq" in message]
        assert_gapless(received)
        assert len(received) == after, "every event up to after=N arrived, and no other"
        events = await scene.events(tender)
        assert after < len(events), "it fell behind during the opening"
        assert everything == events, "the watcher next to it got everything"
        assert by_brisk == events, "so did the one with as small a queue that reads"

        async with watch(narrow_server.room(tender, after=after)) as again:
            assert (await welcome(again))["after"] == after
            rest = await events_until(again, ev.COMPLETED)
            await quiet_after_tail(again)
        assert received + rest == events


def watcher_state(watcher: Watcher) -> dict[str, Any]:
    return {"sent_seq": watcher.sent_seq, "waiting": len(watcher.room.frames) - watcher.sent_seq}


# --- actions in the room -------------------------------------------------------------------


async def act(
    scene: Scene, tender: Event, path: str, party: Party, text: str | None = None
) -> tuple[int, Event]:
    body = None if text is None else {"text": text}
    response = await scene.client.post(
        f"{TENDERS}/{tender['id']}/opening{path}", json=body, headers=party.headers
    )
    return response.status_code, response.json()


class Follower:
    """A watcher's connection and every event it has received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[Event] = []

    async def until(self, until: str | int) -> list[Event]:
        new = await events_until(self.ws, until)
        self.events += new
        return new


class TestRoomActions:
    async def test_check_ins_objections_answers_and_confirmations_reach_every_watcher(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()  # a private opening: participants only
        bidders = [await scene.bidder() for _ in range(3)]
        receipts = [
            await scene.bid(tender, form(price), party=bidder)
            for price, bidder in zip(PRICES, bidders, strict=False)
        ]
        outsider = await scene.bidder("Did Not Bid Ltd")
        officer = scene.officer
        assert officer is not None
        first, second = bidders[0], bidders[1]
        room = live_server.room(tender)

        def signed_in(party: Party) -> connect:
            cookie = {"Cookie": f"bidding_session={token_of(party)}"}
            return watch(room, additional_headers=cookie)

        async with signed_in(officer) as ws_officer, signed_in(second) as ws_bidder:
            await welcome(ws_officer)
            await welcome(ws_bidder)
            by_officer = Follower(ws_officer)
            watchers = (by_officer, Follower(ws_bidder))

            # Before the deadline the officer checks in; a bidder may not yet.
            status, checked_in = await act(scene, tender, "/check-in", officer)
            assert (status, checked_in["type"]) == (200, ev.CHECKED_IN), checked_in
            assert checked_in["data"]["user_id"] == str(officer.user.id)
            assert checked_in["data"]["role"] == "officer"
            for watcher in watchers:
                assert await watcher.until(ev.CHECKED_IN) == [checked_in]
            assert await act(scene, tender, "/check-in", officer) == (200, checked_in)
            status, refusal = await act(scene, tender, "/check-in", first)
            assert (status, refusal["type"]) == (409, "check_in_not_open")
            status, refusal = await act(scene, tender, "/objections", first, "Too early")
            assert (status, refusal["type"]) == (409, "opening_not_running")

            await scene.pass_deadline(tender)
            async with opening_held(scene, tender) as gated:
                started = await by_officer.until(ev.BIDS_LISTED)
                assert [event["type"] for event in started] == [
                    ev.STARTED,
                    ev.LOG_SEALED,
                    ev.BIDS_LISTED,
                ]
                gated.lift(receipts[0])
                await by_officer.until(ev.BID_DECRYPTED)

                # The opening runs: a bidder checks in, and objects.
                status, bidder_in = await act(scene, tender, "/check-in", first)
                assert (status, bidder_in["type"]) == (200, ev.CHECKED_IN), bidder_in
                status, raised = await act(
                    scene, tender, "/objections", first, "  Bid 2 was sealed late.  "
                )
                assert (status, raised["type"]) == (201, ev.OBJECTION_RAISED), raised
                objection_id = raised["data"]["objection_id"]
                assert raised["data"]["text"] == "Bid 2 was sealed late."
                assert raised["data"]["bidder_id"] == str(first.user.organization_id)
                status, refusal = await act(scene, tender, "/objections", outsider, "Me too")
                assert status == 403, refusal
                status, refusal = await act(scene, tender, "/record/confirm", first)
                assert (status, refusal["type"]) == (409, "record_not_published")

                answer = f"/objections/{objection_id}/answer"
                status, answered = await act(scene, tender, answer, officer, "It was not.")
                assert (status, answered["type"]) == (201, ev.OBJECTION_ANSWERED), answered
                assert answered["data"]["objection_id"] == objection_id
                status, refusal = await act(scene, tender, answer, officer, "Again.")
                assert (status, refusal["type"]) == (409, "already_answered")
                unknown = f"/objections/{uuid.uuid4()}/answer"
                status, refusal = await act(scene, tender, unknown, officer, "Which one?")
                assert (status, refusal["type"]) == (404, "objection_not_found")
                status, refusal = await act(scene, tender, answer, first, "Answering myself.")
                assert status == 403, refusal
                for watcher in watchers:
                    tail = await watcher.until(ev.OBJECTION_ANSWERED)
                    assert tail[-3:] == [bidder_in, raised, answered]
                gated.lift(*receipts[1:])

            status, refusal = await act(scene, tender, "/objections", first, "Too late")
            assert (status, refusal["type"]) == (409, "opening_not_running")
            status, confirmed = await act(scene, tender, "/record/confirm", second)
            assert (status, confirmed["type"]) == (201, ev.RECORD_CONFIRMED), confirmed
            status, refusal = await act(scene, tender, "/record/confirm", second)
            assert (status, refusal["type"]) == (409, "already_confirmed")
            status, refusal = await act(scene, tender, "/record/confirm", outsider)
            assert status == 403, refusal
            for watcher in watchers:
                await watcher.until(ev.RECORD_CONFIRMED)
            await asyncio.gather(*(quiet_after_tail(watcher.ws) for watcher in watchers))

        events = await scene.events(tender)
        assert_gapless(events)
        for watcher in watchers:
            assert watcher.events == events
        types = [event["type"] for event in events]
        assert types[-3:] == [ev.RECORD_PUBLISHED, ev.COMPLETED, ev.RECORD_CONFIRMED]
        assert events[-1] == confirmed
        assert confirmed["data"]["record_sha256"] == events[-3]["data"]["sha256"]

        signed = (await scene.get(tender, "/opening/record")).json()
        assert signed["confirmations"] == [confirmed]
        record = signed["record"]
        assert [(entry["user_id"], entry["role"]) for entry in record["attendance"]] == [
            (str(officer.user.id), "officer"),
            (str(first.user.id), "bidder"),
        ]
        assert [entry["at"] for entry in record["attendance"]] == [
            checked_in["at"],
            bidder_in["at"],
        ]
        assert record["objections"] == [
            raised["data"]
            | {"raised_at": raised["at"], "answer": answered["data"] | {"at": answered["at"]}}
        ]
        assert record["events"]["count"] == types.index(ev.RECORD_PUBLISHED)
        keys = {key.key_id: key for key in map(VerifyKey.from_dict, await published_keys(scene))}
        assert verify_document(
            record, key_id=signed["key_id"], signature=signed["signature"], keys=keys
        )


async def published_keys(scene: Scene) -> list[dict[str, Any]]:
    response = await scene.client.get("/api/v1/keys")
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys
