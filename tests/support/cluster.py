"""Real `bidding serve` processes on one fresh database: started side by side, each waited
for until it answers its health check, all killed at the end of the test; people, tenders and
bids for them, and a watcher of an opening's events."""

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bidding.auth.models import Role
from bidding.crypto import age
from bidding.db import create_engine, create_session_factory, utcnow
from bidding.migrations import upgrade
from bidding.opening import events as ev
from bidding.opening.models import Opening
from bidding.tenders.models import Tender
from tests.conftest import fresh_postgres_database
from tests.factories import bearer, create_organization, create_user
from tests.support.bids import OCTETS
from tests.support.processes import bidding_env, start_serving
from tests.tenders.conftest import TENDERS, tender_body

LEASE_SECONDS = 2.0
SETTINGS = {
    "BIDDING_DEMO": "0",
    "BIDDING_MIN_BIDDING_PERIOD_SECONDS": "0",
    "BIDDING_OPENING_LEASE_SECONDS": str(LEASE_SECONDS),
    "BIDDING_SCHEDULER_SYNC_SECONDS": "0.5",
    "BIDDING_OPENING_WORKERS": "1",
}
SLOW_BIDS = 12
KILL_AFTER = 2  # bids opened before the kill; the rest are left for the next instance
# How far ahead a deadline is set when the bids are handed in before it, as people would:
# enough for a few small bids, or for a dozen slow ones, on a loaded machine.
LEAD_SMALL = timedelta(seconds=3)
LEAD_SLOW = timedelta(seconds=5)
TIMEOUT = 90.0  # seconds; generous for a loaded machine, only waited for on failure
OUTCOMES = {ev.BID_DECRYPTED, ev.BID_REJECTED}
ENDS = {ev.COMPLETED, ev.FAILED}

Event = dict[str, Any]
Headers = dict[str, str]


# --- databases -----------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh, migrated database and the data dir (blobs, keys) its servers share."""

    url: str
    data_dir: Path
    env: dict[str, str]


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Parametrized indirectly with "sqlite" or "postgresql"."""
    async with fresh_database(request.param, tmp_path) as database:
        yield database


@asynccontextmanager
async def fresh_database(backend: str, folder: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database of the backend ("sqlite" or "postgresql"), with its data dir
    in the folder; a PostgreSQL one is dropped afterwards."""
    data_dir = folder / "var"
    data_dir.mkdir()
    if backend == "sqlite":
        # Where `bidding serve` puts it by default; the servers get no database URL.
        url = f"sqlite+aiosqlite:///{(data_dir / 'bidding.sqlite3').resolve()}"
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield Database(url, data_dir, {})
        return
    async with fresh_postgres_database("bidding_proc") as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield Database(url, data_dir, {"BIDDING_DATABASE_URL": url})


# --- servers -------------------------------------------------------------------------------


@dataclass
class Server:
    """One `bidding serve` process, and an HTTP client that keeps its connections to it."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease handed back, a transaction perhaps half done."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class Cluster:
    """Server processes on one database and data dir, with one master key; all killed at the
    end of the test, whatever happens."""

    database: Database
    logs: Path
    master_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    servers: list[Server] = field(default_factory=list)

    async def start(self, count: int = 1, **settings: str) -> list[Server]:
        """Start servers side by side and wait until each answers its health check; keyword
        arguments are environment variables that add to or replace SETTINGS."""
        env = bidding_env(
            self.database.data_dir,
            BIDDING_MASTER_KEY=self.master_key,
            **(SETTINGS | self.database.env | settings),
        )
        started = []
        for _ in range(count):
            served = start_serving(env, logs=self.logs)
            server = Server(served.process, served.port, served.log)
            self.servers.append(server)
            started.append(server)
        for server in started:
            await self._ready(server)
        return started

    async def _ready(self, server: Server) -> None:
        give_up = time.monotonic() + 60
        while True:
            try:
                response = await server.http.get("/api/v1/health")
                if response.status_code == 200 and response.json()["database"] == "ok":
                    return
            except httpx.TransportError:
                pass
            assert server.process.poll() is None, f"the server died:\n{server.log_tail()}"
            assert time.monotonic() < give_up, f"no answer in 60 s:\n{server.log_tail()}"
            await asyncio.sleep(0.1)

    def by_pid(self, pid: int) -> Server:
        (server,) = [server for server in self.servers if server.pid == pid]
        return server

    def logs_tail(self) -> str:
        return "\n".join(f"--- {s.log.name}\n{s.log_tail()}" for s in self.servers)

    async def close(self) -> None:
        """Kill every server still running, and close the clients."""
        for server in self.servers:
            server.kill()
        for server in self.servers:
            await server.http.aclose()


@pytest.fixture
async def cluster(database: Database, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(database, tmp_path)
    try:
        yield cluster
    finally:
        await cluster.close()  # before the database fixture drops the database


# --- people, tenders, bids -----------------------------------------------------------------


@dataclass
class Cast:
    officer: Headers
    bidders: list[Headers]


async def make_cast(database: Database, bidders: int) -> Cast:
    """An officer and bidders with bearer tokens, written straight into the database."""
    engine = create_engine(database.url)
    try:
        async with create_session_factory(engine)() as session:
            buyer = await create_organization(session, name="Fuzhou Transport Bureau")
            officer = await create_user(session, role=Role.officer, organization=buyer)
            officer_headers = await bearer(session, officer)
            bidder_headers = []
            for number in range(1, bidders + 1):
                organization = await create_organization(session, name=f"Bidder {number} Ltd")
                user = await create_user(session, role=Role.bidder, organization=organization)
                bidder_headers.append(await bearer(session, user))
            await session.commit()
    finally:
        await engine.dispose()
    return Cast(officer_headers, bidder_headers)


async def publish(http: httpx.AsyncClient, officer: Headers, deadline: datetime) -> Event:
    created = await http.post(
        TENDERS, json=tender_body(bid_deadline=deadline.isoformat()), headers=officer
    )
    assert created.status_code == 201, created.text
    published = await http.post(f"{TENDERS}/{created.json()['id']}/publish", headers=officer)
    assert published.status_code == 200, published.text
    tender: Event = published.json()
    return tender


def price(number: int) -> str:
    return f"{950000 + 1000 * number}.00"


def json_bid(number: int) -> bytes:
    return json.dumps({"price": price(number), "duration_days": 100 + number}).encode()


@cache
def _slow_archive() -> bytes:
    """A ZIP with one document: 64 MiB of zeros and 448 KiB of noise, deflated."""
    document = bytes(64 * 1024 * 1024) + os.urandom(448 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("documents/site-survey.bin", document)
        (info,) = archive.infolist()
    assert info.file_size < 150 * info.compress_size, "within the 200:1 zip-bomb limit"
    return buffer.getvalue()


def slow_bid(number: int) -> bytes:
    """A bid form plus the slow document: about 0.5 MiB sealed, 64 MiB to inflate and hash."""
    buffer = io.BytesIO(_slow_archive())
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("bid.json", json_bid(number))
    return buffer.getvalue()


async def submit(
    http: httpx.AsyncClient, tender: Event, bidder: Headers, plaintext: bytes
) -> Event:
    sealed = age.seal_bytes(plaintext, [age.Recipient.parse(tender["opening_recipient"])])
    response = await http.post(
        f"{TENDERS}/{tender['id']}/bids", content=sealed, headers={**OCTETS, **bidder}
    )
    assert response.status_code == 201, response.text
    receipt: Event = response.json()
    return receipt


async def bring_deadline_forward(database: Database, tender: Event) -> None:
    """End the bidding now, once the bids are in, instead of waiting for a deadline.

    The servers' periodic sync follows the changed deadline (as it follows an amendment made
    by another instance), so nobody has to guess how long the uploads will take.
    """
    engine = create_engine(database.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Tender)
                .where(Tender.id == uuid.UUID(tender["id"]))
                .values(bid_deadline=utcnow(), updated_at=utcnow())
            )
    finally:
        await engine.dispose()


# --- watching an opening -------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float) -> Any:
    """Poll check() until it returns something truthy; fail saying what did not happen."""
    give_up = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < give_up, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


class Watcher:
    """Follows a tender's events through the API, as a participant's browser does."""

    def __init__(self, tender: Event, officer: Headers) -> None:
        self.tender_id = tender["id"]
        self.officer = officer
        self.events: list[Event] = []

    async def poll(self, server: Server) -> list[Event]:
        while True:
            response = await server.http.get(
                f"{TENDERS}/{self.tender_id}/opening/events",
                params={"after": self.events[-1]["seq"] if self.events else 0},
                headers=self.officer,
            )
            assert response.status_code == 200, response.text
            page = response.json()
            self.events += page["events"]
            if not page["has_more"]:
                return self.events

    def count(self, types: set[str]) -> int:
        return sum(event["type"] in types for event in self.events)

    async def until(
        self, server: Server, done: Callable[["Watcher"], bool], what: str, cluster: Cluster
    ) -> list[Event]:
        async def check() -> bool:
            await self.poll(server)
            return done(self)

        try:
            await eventually(check, what, TIMEOUT)
        except AssertionError as exc:
            kinds = [event["type"] for event in self.events]
            raise AssertionError(f"{exc}; events: {kinds}\n{cluster.logs_tail()}") from None
        return self.events


def ended(watcher: Watcher) -> bool:
    return watcher.count(ENDS) > 0


def some_bids_opened(watcher: Watcher) -> bool:
    return watcher.count(OUTCOMES) >= KILL_AFTER or ended(watcher)


async def stored(database: Database, tender: Event) -> tuple[list[Event], Opening]:
    """The events and the opening row as committed, read straight from the database."""
    engine = create_engine(database.url)
    try:
        async with create_session_factory(engine)() as session:
            tender_id = uuid.UUID(tender["id"])
            events = [ev.envelope(e) for e in await ev.after(session=session, tender_id=tender_id)]
            opening = await session.scalar(select(Opening).where(Opening.tender_id == tender_id))
    finally:
        await engine.dispose()
    assert opening is not None
    return events, opening


def owner_pid(opening: Opening) -> int:
    """The process that holds the lease: instance names are host:pid:random."""
    assert opening.lease_owner is not None
    return int(opening.lease_owner.split(":")[-2])


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def millisecond(moment: datetime) -> datetime:
    """The moment as event times show it: truncated to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def assert_whole_opening(events: list[Event], receipts: list[Event]) -> None:
    """Exactly one opening: seq 1..n, each pipeline step once, each bid once."""
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert [event["type"] for event in events] == [
        ev.STARTED,
        ev.LOG_SEALED,
        ev.BIDS_LISTED,
        *[ev.BID_DECRYPTED] * len(receipts),
        ev.SCORES_COMPUTED,
        ev.RECORD_PUBLISHED,
        ev.COMPLETED,
    ], [event["data"] for event in events if event["type"] == ev.BID_REJECTED]
    opened = [event["data"]["bid_id"] for event in events if event["type"] in OUTCOMES]
    bid_ids = [receipt["body"]["bid_id"] for receipt in receipts]
    assert len(set(opened)) == len(opened)
    assert sorted(opened) == sorted(bid_ids)
    listed = next(event for event in events if event["type"] == ev.BIDS_LISTED)
    assert sorted(bid["bid_id"] for bid in listed["data"]["bids"]) == sorted(bid_ids)


async def assert_outcome(server: Server, tender: Event, officer: Headers, bids: int) -> None:
    """The tender is opened and its signed record and ranking cover every bid."""
    base = f"{TENDERS}/{tender['id']}"
    state = (await server.http.get(f"{base}/opening", headers=officer)).json()
    assert state["status"] == "opened"
    record = (await server.http.get(f"{base}/opening/record", headers=officer)).json()
    assert [bid["status"] for bid in record["record"]["bids"]] == ["decrypted"] * bids
    results = (await server.http.get(f"{base}/results", headers=officer)).json()
    assert [place["rank"] for place in results["ranking"]] == list(range(1, bids + 1))
