"""Bad watchers next to good ones: during a public opening on a real `bidding
serve`, one watcher reads its room very slowly and another floods it with messages (connecting
again each time the room closes it); the ordinary watchers beside them must still get every
event, in order, as fast as they do without them.

The same test measures both: one opening watched by the ordinary watchers alone, then an
identical one with the two bad clients as well. The flooder runs in a process of its own
(tests/reliability/flooder.py), as it would on another machine, so that it competes with the
server and not with the watchers' own measurements. Latency is the arrival time of an event at a
watcher minus the `at` the opening stamped on it (one machine, one clock); the bound is relative
to the quiet run and generous, since both runs share two cores with the flooder.
"""

import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bidding.crypto import age
from bidding.db import utcnow
from bidding.opening import events as ev
from tests.conftest import PROJECT_ROOT
from tests.support.cluster import (
    Cast,
    Cluster,
    Database,
    Event,
    Server,
    bring_deadline_forward,
    make_cast,
    price,
)
from tests.support.live import slow_socket
from tests.support.processes import bidding_env
from tests.tenders.conftest import TENDERS, tender_body

pytestmark = [pytest.mark.process, pytest.mark.slow]

WATCHERS = 8
BIDS = 10
NOTES = 3  # text fields of the bid form, each filled to the brim: events of ~30 KB
SLOW_PAUSE = 1.0  # seconds between two messages read by the slow reader
WAIT = 60.0  # seconds; only waited for when something is wrong
OCTETS = {"Content-Type": "application/octet-stream"}


def arrival_latency(arrived: float, event: Event) -> float:
    at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
    return arrived - at.timestamp()


class Watcher:
    """An ordinary watcher: reads every message as it comes, noting when each event arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[Event] = []
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.ws = await connect(self.url, proxy=None, open_timeout=WAIT, close_timeout=2)
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
        assert welcome["type"] == "welcome" and welcome["last_seq"] == 0, welcome
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            message = json.loads(await self.ws.recv())
            arrived = time.time()
            if "seq" in message:
                self.events.append(message)
                self.latencies.append(arrival_latency(arrived, message))
                if message["type"] == ev.COMPLETED:
                    self.done.set()

    async def until_done(self) -> None:
        assert self.reading is not None
        finished = asyncio.create_task(self.done.wait())
        try:
            await asyncio.wait(
                {finished, self.reading}, timeout=WAIT, return_when="FIRST_COMPLETED"
            )
        finally:
            finished.cancel()
        assert self.done.is_set(), f"the watcher stopped early: {self.reading}"

    async def stop(self) -> None:
        if self.reading is not None:
            self.reading.cancel()
            await asyncio.gather(self.reading, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()


class SlowReader:
    """A watcher that takes in little and reads one message every SLOW_PAUSE seconds, until
    told to hurry; then it reads the rest at once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[Event] = []
        self.hurry = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.reading: asyncio.Task[None] | None = None
        self.ws: ClientConnection | None = None

    async def start(self) -> None:
        sock = await slow_socket(self.url)
        self.ws = await connect(
            self.url, sock=sock, max_queue=1, proxy=None, open_timeout=WAIT, close_timeout=2
        )
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
        assert welcome["type"] == "welcome", welcome
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = json.loads(await self.ws.recv())
                if "seq" in message:
                    self.events.append(message)
                    if message["type"] == ev.COMPLETED:
                        return
                if not self.hurry.is_set():
                    await asyncio.sleep(SLOW_PAUSE)
        self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason or ""

    async def finish(self) -> None:
        """Read what is left, up to the last event or the room's close."""
        self.hurry.set()
        assert self.reading is not None
        await asyncio.wait_for(self.reading, WAIT)
        assert self.ws is not None
        await self.ws.close()


@dataclass
class Flooder:
    """tests/reliability/flooder.py in a process of its own."""

    process: subprocess.Popen[str]
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, url: str, server: Server) -> "Flooder":
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.flooder", url],
            cwd=PROJECT_ROOT,
            env=bidding_env(server.log.parent),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return cls(process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, output
        self.stats = json.loads(output.strip().splitlines()[-1])


@dataclass
class Run:
    """What the ordinary watchers saw of one opening."""

    rest: list[Event]
    watchers: list[Watcher]

    @property
    def latencies(self) -> list[float]:
        return sorted(latency for watcher in self.watchers for latency in watcher.latencies)

    def percentile(self, percent: float) -> float:
        ordered = self.latencies
        return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]

    def summary(self) -> str:
        return (
            f"p50 {statistics.median(self.latencies) * 1000:.1f} ms, "
            f"p95 {self.percentile(95) * 1000:.1f} ms, max {self.latencies[-1] * 1000:.1f} ms"
        )


async def public_tender(server: Server, cast: Cast) -> Event:
    notes = [{"name": f"note_{n}", "label": f"Note {n}", "type": "text"} for n in range(NOTES)]
    body = tender_body(
        bid_deadline=(utcnow() + timedelta(hours=1)).isoformat(),
        public_opening=True,
        bid_fields=notes,
    )
    created = await server.http.post(TENDERS, json=body, headers=cast.officer)
    assert created.status_code == 201, created.text
    published = await server.http.post(
        f"{TENDERS}/{created.json()['id']}/publish", headers=cast.officer
    )
    assert published.status_code == 200, published.text
    tender: Event = published.json()
    recipient = age.Recipient.parse(tender["opening_recipient"])
    for number, bidder in enumerate(cast.bidders):
        form = {"price": price(number)} | {f"note_{n}": f"{number}{n}" * 5000 for n in range(NOTES)}
        response = await server.http.post(
            f"{TENDERS}/{tender['id']}/bids",
            content=age.seal_bytes(json.dumps(form).encode(), [recipient]),
            headers={**OCTETS, **bidder},
        )
        assert response.status_code == 201, response.text
    return tender


async def rest_events(server: Server, tender: Event, cast: Cast) -> list[Event]:
    response = await server.http.get(
        f"{TENDERS}/{tender['id']}/opening/events", headers=cast.officer
    )
    assert response.status_code == 200, response.text
    events: list[Event] = response.json()["events"]
    return events


@contextlib.asynccontextmanager
async def watched(url: str) -> AsyncIterator[list[Watcher]]:
    watchers = [Watcher(url) for _ in range(WATCHERS)]
    try:
        for watcher in watchers:
            await watcher.start()
        yield watchers
    finally:
        for watcher in watchers:
            await watcher.stop()


def room(server: Server, tender: Event) -> str:
    return f"ws://127.0.0.1:{server.port}{TENDERS}/{tender['id']}/opening/live?after=0"


class TestBadWatchers:
    @pytest.mark.parametrize("database", ["sqlite"], indirect=True)
    async def test_a_slow_reader_and_a_flooder_do_not_hold_up_the_others(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, BIDS)
        (server,) = await cluster.start()

        # The quiet run: ordinary watchers only.
        tender = await public_tender(server, cast)
        async with watched(room(server, tender)) as watchers:
            await bring_deadline_forward(database, tender)
            for watcher in watchers:
                await watcher.until_done()
        quiet = Run(await rest_events(server, tender, cast), watchers)

        # The same with a slow reader and a flooder in the room from before the deadline.
        tender = await public_tender(server, cast)
        url = room(server, tender)
        slow = SlowReader(url)
        await slow.start()
        flooder = Flooder.start(url, server)
        try:
            async with watched(url) as watchers:
                await asyncio.sleep(1.0)  # the flood under way
                await bring_deadline_forward(database, tender)
                for watcher in watchers:
                    await watcher.until_done()
                slow_had = len(slow.events)
        finally:
            flooder.stop()
        abused = Run(await rest_events(server, tender, cast), watchers)
        await slow.finish()

        for run in (quiet, abused):
            assert [event["type"] for event in run.rest][-1] == ev.COMPLETED
            for watcher in run.watchers:
                assert watcher.events == run.rest, "every event, in order, once"
        # The bad clients were there and bad: the flooder was cut off again and again, and
        # the slow reader was far behind when the others had everything.
        assert flooder.stats["closes"].get("1008", 0) >= 3, flooder.stats
        assert slow_had < len(abused.rest) / 2, slow_had
        # What the slow reader got is the opening's start, in order; then the rest, unless the
        # room told it where to resume.
        assert slow.events == abused.rest[: len(slow.events)]
        if slow.close_code is not None:
            assert slow.close_code == 4008, (slow.close_code, slow.close_reason)
            assert slow.close_reason == f"fell behind: reconnect with after={len(slow.events)}"
        else:
            assert slow.events == abused.rest
        # The ordinary watchers kept their pace.
        report = f"quiet: {quiet.summary()}; with bad watchers: {abused.summary()}"
        assert abused.percentile(95) <= max(3 * quiet.percentile(95), quiet.percentile(95) + 0.5), (
            report
        )
        assert abused.latencies[-1] <= quiet.latencies[-1] + 1.5, report
