"""Openings across real server processes: `bidding serve` killed with SIGKILL
in the middle of decryption and started again, and two instances on one PostgreSQL database.

Every test starts its own servers on a fresh database and kills them all when it ends. The
PostgreSQL cases are skipped when no server is reachable, except under CI=true.

To land a kill in the middle of decryption, the bids are slow to open but quick to upload:
each is a ZIP whose document inflates from about 0.5 MiB to 64 MiB (within the platform's
200:1 compression limit), all of which the opening must inflate and hash. With one opening
worker that takes a tenth of a second or more per bid, while the test polls the events every
50 ms.
"""

from datetime import timedelta

import pytest

from bidding.db import utcnow
from tests.support.cluster import (
    KILL_AFTER,
    LEAD_SLOW,
    LEAD_SMALL,
    OUTCOMES,
    SLOW_BIDS,
    Cluster,
    Database,
    Watcher,
    assert_outcome,
    assert_whole_opening,
    bring_deadline_forward,
    ended,
    json_bid,
    make_cast,
    millisecond,
    owner_pid,
    parse_time,
    publish,
    slow_bid,
    some_bids_opened,
    stored,
    submit,
)

pytestmark = [pytest.mark.process, pytest.mark.slow]

# --- tests ---------------------------------------------------------------------------------


class TestKilledMidDecryption:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
    async def test_a_restarted_server_finishes_the_opening_without_repeating_an_event(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, SLOW_BIDS)
        (first,) = await cluster.start()
        tender = await publish(first.http, cast.officer, utcnow() + timedelta(hours=1))
        receipts = [
            await submit(first.http, tender, bidder, slow_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        await bring_deadline_forward(database, tender)
        watcher = Watcher(tender, cast.officer)
        await watcher.until(first, some_bids_opened, "bids to be opened", cluster)

        first.kill()

        before, opening = await stored(database, tender)
        opened_before = sum(event["type"] in OUTCOMES for event in before)
        assert KILL_AFTER <= opened_before < SLOW_BIDS, "killed in the middle of decryption"
        assert owner_pid(opening) == first.pid
        assert opening.completed_at is None
        assert opening.lease_expires_at is not None
        (second,) = await cluster.start()
        events = await watcher.until(second, ended, "the opening to end", cluster)

        assert_whole_opening(events, receipts)
        assert events[: len(before)] == before, "what was written before the kill stands"
        # The new instance waited for the dead one's lease before writing anything.
        resumed_at = parse_time(events[len(before)]["at"])
        assert resumed_at >= millisecond(opening.lease_expires_at)
        _, opening = await stored(database, tender)
        assert owner_pid(opening) == second.pid
        await assert_outcome(second, tender, cast.officer, SLOW_BIDS)


class TestTwoInstances:
    @pytest.mark.parametrize("database", ["postgresql"], indirect=True)
    async def test_each_deadline_is_opened_by_exactly_one_instance(
        self, database: Database, cluster: Cluster
    ) -> None:
        tenders_count, bids_each = 3, 3
        cast = await make_cast(database, bids_each)
        servers = await cluster.start(2)
        # Both instances schedule the deadline: the publishing one at once, the other on its
        # next sync; both fire at the deadline, and the compare-and-set picks one.
        deadline = utcnow() + LEAD_SMALL
        tenders, receipts = [], []
        for index in range(tenders_count):
            server = servers[index % 2]
            tender = await publish(server.http, cast.officer, deadline)
            tenders.append(tender)
            receipts.append(
                [
                    await submit(server.http, tender, bidder, json_bid(number))
                    for number, bidder in enumerate(cast.bidders)
                ]
            )

        for index, tender in enumerate(tenders):
            watcher = Watcher(tender, cast.officer)
            # Watched through the instance that did not publish it.
            events = await watcher.until(servers[(index + 1) % 2], ended, "the opening", cluster)
            assert_whole_opening(events, receipts[index])
            assert parse_time(events[0]["at"]) >= millisecond(deadline)
            _, opening = await stored(database, tender)
            assert owner_pid(opening) in {server.pid for server in servers}
            await assert_outcome(servers[index % 2], tender, cast.officer, bids_each)
        assert all(server.process.poll() is None for server in servers)

    @pytest.mark.parametrize("database", ["postgresql"], indirect=True)
    async def test_the_other_instance_takes_over_when_the_runner_is_killed(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, SLOW_BIDS)
        servers = await cluster.start(2)
        tender = await publish(servers[0].http, cast.officer, utcnow() + LEAD_SLOW)
        receipts = [
            await submit(servers[number % 2].http, tender, bidder, slow_bid(number))
            for number, bidder in enumerate(cast.bidders)
        ]
        watcher = Watcher(tender, cast.officer)
        await watcher.until(servers[1], some_bids_opened, "bids to be opened", cluster)
        _, opening = await stored(database, tender)
        runner = cluster.by_pid(owner_pid(opening))
        (survivor,) = [server for server in servers if server is not runner]

        runner.kill()

        before, opening = await stored(database, tender)
        opened_before = sum(event["type"] in OUTCOMES for event in before)
        assert KILL_AFTER <= opened_before < SLOW_BIDS, "killed in the middle of decryption"
        assert opening.lease_expires_at is not None
        events = await watcher.until(survivor, ended, "the opening to end", cluster)

        assert_whole_opening(events, receipts)  # one opening.started, no step twice
        assert events[: len(before)] == before
        # Taken over only once the dead runner's lease had run out.
        assert parse_time(events[len(before)]["at"]) >= millisecond(opening.lease_expires_at)
        _, finished = await stored(database, tender)
        assert owner_pid(finished) == survivor.pid
        await assert_outcome(survivor, tender, cast.officer, SLOW_BIDS)
