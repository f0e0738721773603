"""Live opening rooms across real server processes: two `bidding serve` instances
on one PostgreSQL database, anonymous watchers of a public opening on both, and the opening run
by whichever instance wins the deadline.

A room hears of the other instance's commits by PostgreSQL NOTIFY on a connection of its own
(the listener) and reads the events from the table. Whatever happens to those notifications,
every watcher must end with the same gapless sequence as GET …/opening/events. The listener is
also killed in the middle of an opening, with pg_terminate_backend, to see it come back and
the rooms catch up.

Every test starts its own servers on a fresh database and kills them when it ends. Skipped
when no PostgreSQL server is reachable, except under CI=true, where that fails.
"""

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Collection
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bidding.db import create_engine, utcnow
from bidding.migrations import upgrade
from bidding.opening import events as ev
from bidding.opening.live import TICK_SECONDS
from tests.conftest import fresh_postgres_database
from tests.support.cluster import (
    ENDS,
    KILL_AFTER,
    OUTCOMES,
    SLOW_BIDS,
    Cluster,
    Database,
    Event,
    Headers,
    Server,
    assert_whole_opening,
    bring_deadline_forward,
    json_bid,
    make_cast,
    owner_pid,
    slow_bid,
    stored,
    submit,
)
from tests.tenders.conftest import TENDERS, tender_body

pytestmark = [pytest.mark.process, pytest.mark.slow]

WAIT = 60.0  # seconds; generous for a loaded machine, only waited for on failure
QUIET = 1.0  # how long a watcher must stay silent after the last event: no duplicate comes
# A room also reads the table at each tick, every TICK_SECONDS (5 s); an event that comes well
# before the next tick came by NOTIFY.
NOTIFIED_WITHIN = TICK_SECONDS * 0.7
WATCHERS_PER_SERVER = 2
# The listener's session, as pg_stat_activity shows it: its last statement is the LISTEN
# itself, or, once it has been up for a tick (5 s), the `SELECT 1` it checks itself with.
# The pools' sessions end theirs with COMMIT, ROLLBACK or the like, never with these.
LISTENERS = f"""
    SELECT pid, client_port, query FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'
      AND (query = 'LISTEN "{ev.CHANNEL}"' OR query = 'SELECT 1')
"""


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated PostgreSQL database and the data dir its servers share."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    async with fresh_postgres_database("bidding_live") as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield Database(url, data_dir, {"BIDDING_DATABASE_URL": url})


@pytest.fixture
async def cluster(database: Database, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(database, tmp_path)
    try:
        yield cluster
    finally:
        await cluster.close()  # before the database fixture drops the database


async def publish_public(http: httpx.AsyncClient, officer: Headers) -> Event:
    """A published tender whose opening anyone may watch; the deadline is brought forward
    by the test once the bids are in."""
    deadline = (utcnow() + timedelta(hours=1)).isoformat()
    body = tender_body(bid_deadline=deadline, public_opening=True)
    created = await http.post(TENDERS, json=body, headers=officer)
    assert created.status_code == 201, created.text
    published = await http.post(f"{TENDERS}/{created.json()['id']}/publish", headers=officer)
    assert published.status_code == 200, published.text
    tender: Event = published.json()
    return tender


async def rest_events(server: Server, tender: Event) -> list[Event]:
    """Every event of the opening through GET …/opening/events, anonymously, page by page."""
    events: list[Event] = []
    while True:
        response = await server.http.get(
            f"{TENDERS}/{tender['id']}/opening/events",
            params={"after": events[-1]["seq"] if events else 0},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        if not page["has_more"]:
            return events


# --- watchers ------------------------------------------------------------------------------


class RoomWatcher:
    """An anonymous WebSocket watcher of the opening on one server, reading in the background."""

    def __init__(self, server: Server, tender: Event) -> None:
        self.server = server
        self.url = f"ws://127.0.0.1:{server.port}{TENDERS}/{tender['id']}/opening/live?after=0"
        self.events: list[Event] = []
        self.ticked = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ws = await connect(self.url, proxy=None, open_timeout=WAIT, close_timeout=2)
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
        assert welcome["type"] == "welcome", welcome
        assert welcome["last_seq"] == 0, "connected before the deadline"
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            message = json.loads(await self.ws.recv())
            if "seq" in message:
                self.events.append(message)
            elif message["type"] == "tick":
                self.ticked.set()

    async def next_tick(self) -> None:
        """Wait for the server's next tick, at which its rooms read the table anyway."""
        self.ticked.clear()
        await asyncio.wait_for(self.ticked.wait(), WAIT)

    def outcomes(self) -> int:
        return sum(event["type"] in OUTCOMES for event in self.events)

    async def stop(self) -> None:
        if self.reading is not None:
            self.reading.cancel()
            await asyncio.gather(self.reading, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()

    def problem(self) -> str:
        """Why the reading stopped early, if it did."""
        if self.reading is None or not self.reading.done() or self.reading.cancelled():
            return ""
        exc = self.reading.exception()
        if isinstance(exc, ConnectionClosed):
            return f"closed {exc.rcvd.code if exc.rcvd else None}: {exc}"
        return repr(exc)


@contextlib.asynccontextmanager
async def watching(servers: list[Server], tender: Event) -> AsyncIterator[list[RoomWatcher]]:
    watchers = [
        RoomWatcher(server, tender) for server in servers for _ in range(WATCHERS_PER_SERVER)
    ]
    try:
        for watcher in watchers:
            await watcher.start()
        yield watchers
    finally:
        for watcher in watchers:
            await watcher.stop()


def ended(watcher: RoomWatcher) -> bool:
    return any(event["type"] in ENDS for event in watcher.events)


async def until_all(
    watchers: list[RoomWatcher], done: Callable[[RoomWatcher], bool], cluster: Cluster
) -> None:
    """Until every watcher is done; fails early if a connection ended."""
    try:
        async with asyncio.timeout(WAIT):
            while not all(done(watcher) for watcher in watchers):
                problems = [watcher.problem() for watcher in watchers if watcher.problem()]
                assert not problems, problems
                await asyncio.sleep(0.02)
    except TimeoutError:
        seen = {
            f"{watcher.server.port}#{index}": [event["seq"] for event in watcher.events]
            for index, watcher in enumerate(watchers)
        }
        message = f"not every watcher got there: {seen}\n{cluster.logs_tail()}"
        raise AssertionError(message) from None


async def heard_through_notify(
    runner: Server, others: list[RoomWatcher], tender: Event, bidder: Headers, cluster: Cluster
) -> Event:
    """A bidder confirms the record through the instance that ran the opening: the watchers
    of the other instance get it by NOTIFY, long before that instance's next tick."""
    await others[0].next_tick()  # the next one is TICK_SECONDS away
    response = await runner.http.post(
        f"{TENDERS}/{tender['id']}/opening/record/confirm", headers=bidder
    )
    assert response.status_code == 201, response.text
    confirmed: Event = response.json()
    committed = time.monotonic()
    await until_all(others, lambda watcher: len(watcher.events) >= confirmed["seq"], cluster)
    took = time.monotonic() - committed
    assert took < NOTIFIED_WITHIN, f"{took:.1f} s: heard of at the tick, not by NOTIFY"
    return confirmed


def assert_everyone_saw(watchers: list[RoomWatcher], events: list[Event]) -> None:
    for watcher in watchers:
        assert [event["seq"] for event in watcher.events] == list(range(1, len(events) + 1)), (
            f"watcher on port {watcher.server.port}"
        )
        assert watcher.events == events, f"watcher on port {watcher.server.port}"


# --- the listeners in pg_stat_activity -----------------------------------------------------


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets: the client_port of its database sessions."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def listeners(database: Database, servers: list[Server]) -> dict[int, list[int]]:
    """Each server's listening sessions (backend pids), by server pid."""
    engine = create_engine(database.url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(LISTENERS))).all()
    finally:
        await engine.dispose()
    by_server: dict[int, list[int]] = {server.pid: [] for server in servers}
    for server in servers:
        ports = local_ports(server.pid)
        by_server[server.pid] = [row.pid for row in rows if row.client_port in ports]
    return by_server


async def terminate(database: Database, pids: list[int]) -> None:
    engine = create_engine(database.url)
    try:
        async with engine.connect() as connection:
            for pid in pids:
                terminated = await connection.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                )
                assert terminated, f"backend {pid} was not terminated"
    finally:
        await engine.dispose()


async def one_listener_each(
    database: Database, servers: list[Server], unlike: Collection[int] = ()
) -> dict[int, int]:
    """Wait until each server listens on exactly one session (other than the given ones)."""
    async with asyncio.timeout(WAIT):
        while True:
            found = await listeners(database, servers)
            if all(len(pids) == 1 and pids[0] not in unlike for pids in found.values()):
                return {server: pids[0] for server, pids in found.items()}
            await asyncio.sleep(0.1)


# --- tests ---------------------------------------------------------------------------------


class TestTwoInstances:
    async def test_watchers_on_both_instances_get_the_whole_opening_exactly_once(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, 3)
        servers = await cluster.start(2)
        tender = await publish_public(servers[0].http, cast.officer)
        receipts = [
            await submit(servers[number % 2].http, tender, bidder, json_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]

        async with watching(servers, tender) as watchers:
            # Both instances follow the deadline on their next sync; one of them opens.
            await bring_deadline_forward(database, tender)
            await until_all(watchers, ended, cluster)
            _, opening = await stored(database, tender)
            runner = cluster.by_pid(owner_pid(opening))
            others = [watcher for watcher in watchers if watcher.server is not runner]
            confirmed = await heard_through_notify(runner, others, tender, cast.bidders[0], cluster)
            await until_all(watchers, lambda w: len(w.events) >= confirmed["seq"], cluster)
            await asyncio.sleep(QUIET)  # for a duplicate to show, if one came

        events = await rest_events(servers[0], tender)
        assert await rest_events(servers[1], tender) == events
        assert events[-1] == confirmed
        assert_whole_opening(events[:-1], receipts)
        assert_everyone_saw(watchers, events)

    async def test_a_listener_killed_mid_opening_loses_no_event(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, SLOW_BIDS)
        servers = await cluster.start(2)
        tender = await publish_public(servers[0].http, cast.officer)
        receipts = [
            await submit(servers[number % 2].http, tender, bidder, slow_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        first_listeners = await one_listener_each(database, servers)

        async with watching(servers, tender) as watchers:
            await bring_deadline_forward(database, tender)
            async with asyncio.timeout(WAIT):
                while max(watcher.outcomes() for watcher in watchers) < KILL_AFTER:
                    await asyncio.sleep(0.02)

            await terminate(database, list(first_listeners.values()))

            before, opening = await stored(database, tender)
            assert not {event["type"] for event in before} & ENDS, "killed mid-opening"
            runner = cluster.by_pid(owner_pid(opening))
            others = [watcher for watcher in watchers if watcher.server is not runner]
            # Each instance listens again, on a new session, and nothing was lost meanwhile.
            await one_listener_each(database, servers, unlike=set(first_listeners.values()))
            await until_all(watchers, ended, cluster)
            # The new listener hears the other instance's commits as the first did.
            confirmed = await heard_through_notify(runner, others, tender, cast.bidders[0], cluster)
            await until_all(watchers, lambda w: len(w.events) >= confirmed["seq"], cluster)
            await asyncio.sleep(QUIET)

        events = await rest_events(servers[1], tender)
        assert await rest_events(servers[0], tender) == events
        assert events[-1] == confirmed
        assert_whole_opening(events[:-1], receipts)
        assert len(events) > len(before) + 1, "the opening went on after the kill"
        assert events[: len(before)] == before
        # In particular the watchers of the instance that did not run the opening, whose room
        # had only NOTIFY and its tick to hear of the events.
        assert len(others) == WATCHERS_PER_SERVER
        assert_everyone_saw(watchers, events)
