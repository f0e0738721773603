"""The deadline as bidders meet it: the second before it, the deadline
itself and the second after, on a fake clock; and an upload that starts before the deadline and
is still arriving when a real server, on its own, begins the opening.

The platform decides by its clock when a bid is committed (README, "Sealed bids"): a bid is
in when it commits before the deadline, and the opening may start from the deadline on, so
there is no moment at which a bid could still come in after the log was sealed.
"""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bidding.crypto import age
from bidding.db import iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import lease
from bidding.tenders import bids
from tests.opening.conftest import OCTETS, Party, Scene
from tests.opening.test_processes import (
    LEAD_SMALL,
    Cluster,
    Database,
    Event,
    Watcher,
    ended,
    json_bid,
    make_cast,
    publish,
    submit,
)
from tests.tenders.conftest import TENDERS

SECOND = timedelta(seconds=1)


class FakeClock:
    """A clock that says what the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def form(price: str) -> dict[str, Any]:
    return {"price": price, "duration_days": 120}


async def hand_in(scene: Scene, tender: Event, party: Party, price: str) -> httpx.Response:
    sealed = age.seal_bytes(
        json.dumps(form(price)).encode(), [age.Recipient.parse(tender["opening_recipient"])]
    )
    return await scene.client.post(
        f"{TENDERS}/{tender['id']}/bids", content=sealed, headers={**OCTETS, **party.headers}
    )


async def mine(scene: Scene, tender: Event, party: Party) -> dict[str, Any]:
    response = await scene.client.get(f"{TENDERS}/{tender['id']}/bids/mine", headers=party.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


class TestTheDeadlineSecond:
    async def test_one_second_before_is_in_the_deadline_itself_and_after_are_out(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deadline = datetime.fromisoformat(iso_utc(utcnow() + timedelta(hours=1)))
        tender = await scene.tender(bid_deadline=deadline.isoformat(), min_bids=1)
        clock = FakeClock(deadline - SECOND)
        monkeypatch.setattr(bids, "utcnow", clock)  # the clock the submission reads
        early = await scene.bidder()

        in_time = await hand_in(scene, tender, early, "1000000.00")

        assert in_time.status_code == 201, in_time.text
        receipt = in_time.json()
        assert receipt["body"]["received_at"] == iso_utc(deadline - SECOND)
        for moment in (deadline, deadline + SECOND):
            clock.now = moment
            late = await scene.bidder()
            refused = await hand_in(scene, tender, late, "900000.00")
            assert refused.status_code == 409, (moment, refused.text)
            assert refused.json()["type"] == "deadline_passed"
            assert await mine(scene, tender, late) == {"bid": None, "receipts": []}
            # Nor may the bidder that is in replace its bid, or withdraw it, any more.
            replaced = await hand_in(scene, tender, early, "950000.00")
            assert (replaced.status_code, replaced.json()["type"]) == (409, "deadline_passed")
            withdrawn = await scene.client.delete(
                f"{TENDERS}/{tender['id']}/bids/mine", headers=early.headers
            )
            assert (withdrawn.status_code, withdrawn.json()["type"]) == (409, "deadline_passed")
        kept = await mine(scene, tender, early)
        assert kept["bid"]["version"] == 1 and kept["receipts"] == [receipt]

        # The opening, on the same clock, opens exactly the bid that was in.
        assert await scene.open(tender, clock=FakeClock(deadline)) == lease.Claimed()
        events = await scene.events(tender)
        sealed = next(e for e in events if e["type"] == ev.LOG_SEALED)["data"]["tree_head"]
        assert sealed["tree_size"] == 1
        listed = next(e for e in events if e["type"] == ev.BIDS_LISTED)["data"]["bids"]
        assert [bid["bid_id"] for bid in listed] == [receipt["body"]["bid_id"]]
        (opened,) = [e["data"] for e in events if e["type"] == ev.BID_DECRYPTED]
        assert opened["price"] == "1000000.00"

    async def test_the_opening_starts_at_the_deadline_and_not_a_millisecond_before(
        self, scene: Scene
    ) -> None:
        deadline = datetime.fromisoformat(iso_utc(utcnow() + timedelta(hours=1)))
        tender = await scene.tender(bid_deadline=deadline.isoformat())
        for price in ("1000000.00", "950000.00", "1100000.00"):
            await scene.bid(tender, form(price))

        early = await scene.open(tender, clock=FakeClock(deadline - timedelta(milliseconds=1)))

        assert early == lease.NotDue(deadline)
        assert await scene.events(tender) == []
        assert await scene.open(tender, clock=FakeClock(deadline)) == lease.Claimed()
        events = await scene.events(tender)
        assert events[0]["type"] == ev.STARTED
        assert events[0]["at"] == iso_utc(deadline)
        assert events[-1]["type"] == ev.COMPLETED


# --- an upload across the deadline, on a real server ---------------------------------------


def blob_names(data_dir: Path) -> set[str]:
    return {path.name for path in (data_dir / "blobs").rglob("*") if path.is_file()}


def staged(data_dir: Path) -> list[Path]:
    staging = data_dir / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


class TestUploadAcrossTheDeadline:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
    async def test_it_is_refused_without_a_receipt_and_leaves_nothing_behind(
        self, database: Database, cluster: Cluster
    ) -> None:
        cast = await make_cast(database, 4)
        *punctual, straggler = cast.bidders
        (server,) = await cluster.start()
        tender = await publish(server.http, cast.officer, utcnow() + LEAD_SMALL)
        receipts = [
            await submit(server.http, tender, bidder, json_bid(number))
            for number, bidder in enumerate(punctual)
        ]
        stored_before = blob_names(database.data_dir)
        watcher = Watcher(tender, cast.officer)
        sealed = age.seal_bytes(json_bid(9), [age.Recipient.parse(tender["opening_recipient"])])
        first_part_sent = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield sealed[:100]
            first_part_sent.set()
            # The rest arrives only once the server has begun the opening by itself.
            while not watcher.count({ev.LOG_SEALED}):
                await asyncio.sleep(0.05)
                await watcher.poll(server)
            yield sealed[100:]

        upload = asyncio.create_task(
            server.http.post(
                f"{TENDERS}/{tender['id']}/bids",
                content=body(),
                headers={**OCTETS, **straggler, "Content-Length": str(len(sealed))},
            )
        )
        await asyncio.wait_for(first_part_sent.wait(), 30)
        assert utcnow() < datetime.fromisoformat(tender["bid_deadline"]), "started in time"
        response = await asyncio.wait_for(upload, 60)

        assert response.status_code == 409, response.text
        assert response.json()["type"] == "deadline_passed"
        assert "body" not in response.json(), "no receipt"
        base = f"{TENDERS}/{tender['id']}"
        theirs = (await server.http.get(f"{base}/bids/mine", headers=straggler)).json()
        assert theirs == {"bid": None, "receipts": []}
        assert blob_names(database.data_dir) == stored_before
        assert hashlib.sha256(sealed).hexdigest() not in blob_names(database.data_dir)
        assert staged(database.data_dir) == []
        # The log is the one of the three bids in time: sealed so, and published so.
        events = await watcher.until(server, ended, "the opening to end", cluster)
        assert [e["type"] for e in events][-1] == ev.COMPLETED
        head = (await server.http.get(f"{base}/log/head")).json()["tree_head"]
        assert head["tree_size"] == len(receipts)
        leaves = (await server.http.get(f"{base}/log/leaves")).json()["leaves"]
        assert [{k: leaf[k] for k in receipts[0]} for leaf in leaves] == receipts
        listed = next(e for e in events if e["type"] == ev.BIDS_LISTED)["data"]["bids"]
        assert {bid["bid_id"] for bid in listed} == {r["body"]["bid_id"] for r in receipts}
