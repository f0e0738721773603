"""The database restarted in the middle of an opening: the local PostgreSQL
server is restarted (`pg_ctlcluster … restart`, which ends every session) while `bidding serve`
is opening a dozen slow bids; the opening fails, retries, and completes, gapless.

The restart is of the server that BIDDING_TEST_DATABASE_URL points at, found among the local
clusters by its port; whatever happens, it is running again when the test ends. Skipped when
there is no local PostgreSQL cluster to restart, except under CI=true, where that fails.
"""

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url

from bidding.db import utcnow
from tests.conftest import DEFAULT_POSTGRES_URL
from tests.support.cluster import (
    SLOW_BIDS,
    Cluster,
    Database,
    Watcher,
    assert_outcome,
    assert_whole_opening,
    bring_deadline_forward,
    ended,
    make_cast,
    owner_pid,
    publish,
    slow_bid,
    some_bids_opened,
    stored,
    submit,
)

pytestmark = [pytest.mark.process, pytest.mark.slow]

RETRIED = "the opening failed (attempt 1); retrying"


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster of this machine, driven by Debian's pg_ctlcluster."""

    version: str
    name: str
    port: int

    def _ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def online(self) -> bool:
        status = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            timeout=30,
        )
        return status.returncode == 0

    async def restart(self) -> None:
        """Restart the server (fast shutdown: every session ends) and wait until it answers."""
        await asyncio.to_thread(self._ctl, "restart")
        await self.until_online()

    async def until_online(self) -> None:
        give_up = time.monotonic() + 60
        while not await asyncio.to_thread(self.online):
            assert time.monotonic() < give_up, "PostgreSQL did not come back in 60 s"
            await asyncio.sleep(0.2)

    async def ensure_running(self) -> None:
        if not await asyncio.to_thread(self.online):
            await asyncio.to_thread(self._ctl, "start")
        await self.until_online()


def _local_cluster(port: int) -> LocalPostgres | None:
    try:
        listed = subprocess.run(
            ["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return None
    for line in listed.stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return LocalPostgres(version, name, port)
    return None


@pytest.fixture
async def local_postgres(database: Database) -> AsyncIterator[LocalPostgres]:
    """The local cluster of the test database, running again after the test."""
    url = make_url(os.environ.get("BIDDING_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL))
    found = _local_cluster(url.port or 5432) if url.host in ("127.0.0.1", "localhost") else None
    if found is None:
        message = f"no local PostgreSQL cluster serves {url.host}:{url.port} to restart"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield found
    finally:
        await found.ensure_running()  # before the database fixture drops the test database


class TestDatabaseRestart:
    @pytest.mark.parametrize("database", ["postgresql"], indirect=True)
    async def test_an_opening_cut_off_by_a_restart_retries_and_completes(
        self, database: Database, cluster: Cluster, local_postgres: LocalPostgres
    ) -> None:
        cast = await make_cast(database, SLOW_BIDS)
        (server,) = await cluster.start()
        tender = await publish(server.http, cast.officer, utcnow() + timedelta(hours=1))
        receipts = [
            await submit(server.http, tender, bidder, slow_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        await bring_deadline_forward(database, tender)
        watcher = Watcher(tender, cast.officer)
        await watcher.until(server, some_bids_opened, "bids to be opened", cluster)

        await local_postgres.restart()

        before, _ = await stored(database, tender)
        events = await watcher.until(server, ended, "the opening to end", cluster)
        assert_whole_opening(events, receipts)  # gapless, each step and each bid once
        assert events[: len(before)] == before
        # The opening was cut off, and the same server took it up again by itself.
        assert RETRIED in server.log.read_text(), server.log_tail()
        _, opening = await stored(database, tender)
        assert owner_pid(opening) == server.pid
        assert server.process.poll() is None
        await assert_outcome(server, tender, cast.officer, SLOW_BIDS)
