"""The opening through the API, as bidders, officers and auditors see it.

Each class runs whole openings on real transactions (SQLite and PostgreSQL) and checks what a
user relies on: the scores and ranking, why a tender failed, why a bid was rejected, that an
interrupted opening resumes without a gap or a repeat, that only one instance opens a tender,
that the log, the record and the results verify with public keys alone, and who may watch.
"""

import asyncio
import hashlib
import io
import threading
import uuid
import zipfile
from collections import Counter
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest

from bidding.crypto import age, merkle
from bidding.crypto.canonical import canonical_json
from bidding.crypto.signing import VerifyKey, verify_document
from bidding.db import utcnow
from bidding.opening import events as ev
from bidding.opening import lease, payloads, pipeline
from bidding.tenders.blobs import BlobStore, FilesystemBlobStore
from tests.opening.conftest import Party, Scene
from tests.tenders.conftest import TENDERS

CENT = Decimal("0.01")
COMPREHENSIVE = {"method": "comprehensive", "price_weight": "60"}
CHOICES = ["0.01", "0.02", "0.03"]
BENCHMARK = {"method": "benchmark", "coefficient_choices": CHOICES, "trim_threshold": 5}
BID_EVENTS = (ev.BID_DECRYPTED, ev.BID_REJECTED)


# --- helpers -------------------------------------------------------------------------------


def form(price: str, **fields: Any) -> dict[str, Any]:
    """A bid form for the default tender body, whose form asks for duration_days."""
    return {"price": price, "duration_days": 90} | fields


def bid_id(receipt: dict[str, Any]) -> str:
    return str(receipt["body"]["bid_id"])


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def only(events: list[dict[str, Any]], type: str) -> dict[str, Any]:
    """The data of the one event of a type."""
    found: list[dict[str, Any]] = [event["data"] for event in events if event["type"] == type]
    assert len(found) == 1, f"{len(found)} {type} events"
    return found[0]


def outcomes(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each bid's decrypted or rejected event, by bid id."""
    return {event["data"]["bid_id"]: event for event in events if event["type"] in BID_EVENTS}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def assert_each_step_once(events: list[dict[str, Any]]) -> None:
    """seq is 1..n, each pipeline step appears once, and each listed bid is decided once."""
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    steps = Counter(type for type in types(events) if type not in BID_EVENTS)
    assert all(count == 1 for count in steps.values()), steps
    decided = [event["data"]["bid_id"] for event in events if event["type"] in BID_EVENTS]
    listed = [bid["bid_id"] for bid in only(events, ev.BIDS_LISTED)["bids"]]
    assert sorted(decided) == sorted(listed)


def zip_bid(bid_form: dict[str, Any], documents: dict[str, bytes]) -> bytes:
    """A ZIP plaintext: bid.json at its root plus documents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bid.json", canonical_json(bid_form))
        for name, data in documents.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def blob_path(scene: Scene, receipt: dict[str, Any]) -> Path:
    """Where the sealed file of a receipt is stored."""
    store = scene.app.state.blobs
    assert isinstance(store, FilesystemBlobStore)
    return store.path(receipt["body"]["sha256"])


async def get_as(
    scene: Scene, tender: dict[str, Any], path: str, party: Party | None, **params: Any
) -> httpx.Response:
    """GET a path of the tender as a party, or anonymously with None."""
    headers = party.headers if party else {}
    return await scene.client.get(f"{TENDERS}/{tender['id']}{path}", params=params, headers=headers)


async def published_keys(scene: Scene) -> dict[str, VerifyKey]:
    """The signing keys as GET /keys publishes them: all an auditor has."""
    response = await scene.client.get("/api/v1/keys")
    assert response.status_code == 200, response.text
    keys = [VerifyKey.from_dict(key) for key in response.json()["keys"]]
    return {key.key_id: key for key in keys}


class Crash(Exception):
    """Stands for the process dying in the middle of the opening."""


class CrashingBlobs:
    """The real store, except that opening a blob fails from the n-th call on."""

    def __init__(self, store: BlobStore, *, crash_at: int) -> None:
        self.store, self.crash_at, self.calls = store, crash_at, 0
        self._lock = threading.Lock()

    def put(self, staged: Path, digest: str) -> None:
        self.store.put(staged, digest)

    def exists(self, digest: str) -> bool:
        return self.store.exists(digest)

    def open(self, digest: str) -> BinaryIO:
        with self._lock:
            self.calls += 1
            if self.calls >= self.crash_at:
                raise Crash(f"open #{self.calls}")
        return self.store.open(digest)


class HangingBlobs(CrashingBlobs):
    """The real store, except that the n-th open hangs until released (then fails)."""

    def __init__(self, store: BlobStore, *, hang_at: int) -> None:
        super().__init__(store, crash_at=hang_at)
        self.reached, self.release = threading.Event(), threading.Event()

    def open(self, digest: str) -> BinaryIO:
        try:
            return super().open(digest)
        except Crash:
            self.reached.set()
            self.release.wait(timeout=30)
            raise


async def wait_for_seq(scene: Scene, tender: dict[str, Any], seq: int) -> None:
    """Wait until the opening has written its event number seq."""
    for _ in range(500):
        opening = (await scene.get(tender, "/opening")).json()
        if opening["last_seq"] >= seq:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the opening never reached event {seq}")


# --- scoring -------------------------------------------------------------------------------


class TestComprehensiveScoring:
    async def test_price_scores_are_the_lowest_price_over_each_price_times_the_weight(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender(scoring=COMPREHENSIVE)
        prices = ["1000000.00", "917000.00", "1120000.00", "1000000.00", "1100000.00"]
        receipts = [await scene.bid(tender, form(price)) for price in [*prices, "1200000.00"]]
        # The two equal prices tie on score; the earlier receipt must rank first.
        assert receipts[0]["body"]["received_at"] < receipts[3]["body"]["received_at"]
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        # 917000 * 60 / P, worked out by hand.
        expected = [
            (1, bid_id(receipts[1]), "917000.00", "60.00"),
            (2, bid_id(receipts[0]), "1000000.00", "55.02"),  # exactly 55.02
            (3, bid_id(receipts[3]), "1000000.00", "55.02"),  # the same score, received later
            (4, bid_id(receipts[4]), "1100000.00", "50.02"),  # 50.0181...
            (5, bid_id(receipts[2]), "1120000.00", "49.13"),  # exactly 49.125: half up
            (6, bid_id(receipts[5]), "1200000.00", "45.85"),  # exactly 45.85
        ]
        results = (await scene.get(tender, "/results")).json()
        assert results["status"] == "opened"
        assert results["method"] == "comprehensive"
        assert results["working"] == {"lowest_price": "917000.00"}
        ranking = [
            (place["rank"], place["bid_id"], place["price"], place["score"])
            for place in results["ranking"]
        ]
        assert ranking == expected
        computed = only(await scene.events(tender), ev.SCORES_COMPUTED)
        assert computed["ranking"] == results["ranking"]
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        assert record["scores"] == computed


class TestBenchmarkScoring:
    async def test_every_number_can_be_recomputed_from_the_events_and_the_commitment(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender(scoring=BENCHMARK)
        prices = [
            "1049999.99",
            "920000.00",
            "1210000.00",
            "985000.00",
            "1130000.00",
            "1012345.67",
        ]
        receipts = [await scene.bid(tender, form(price)) for price in prices]
        await scene.bid(tender, form("1300000.00"))  # above the ceiling: not in the average
        published = await scene.client.get(f"{TENDERS}/{tender['id']}")
        commitment = published.json()["coefficient_commitment"]
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        events = await scene.events(tender)
        drawn = only(events, ev.COEFFICIENT_DRAWN)
        root_hex = only(events, ev.LOG_SEALED)["tree_head"]["root_hash"]
        seed, root = bytes.fromhex(drawn["seed"]), bytes.fromhex(root_hex)
        assert hashlib.sha256(seed).hexdigest() == commitment
        index = int.from_bytes(hashlib.sha256(seed + root).digest(), "big") % len(CHOICES)
        assert (drawn["index"], drawn["coefficient"]) == (index, CHOICES[index])
        assert (drawn["commitment"], drawn["root_hash"]) == (commitment, root_hex)

        valid = {
            event["data"]["bid_id"]: Decimal(event["data"]["price"])
            for event in events
            if event["type"] == ev.BID_DECRYPTED
        }
        assert valid == {bid_id(r): Decimal(p) for r, p in zip(receipts, prices, strict=True)}
        with localcontext() as context:
            context.prec = 50
            ordered = sorted(valid.values())
            kept = ordered[1:-1]  # 6 valid bids >= trim_threshold 5: one low, one high out
            average = cents(sum(kept, Decimal(0)) / len(kept))
            benchmark = cents(average * (1 - Decimal(CHOICES[index])))
            scores = {
                bid: cents(
                    max(
                        Decimal(0),
                        100
                        - abs(price - benchmark)
                        / benchmark
                        * 100
                        * (Decimal(1) if price > benchmark else Decimal("0.5")),
                    )
                )
                for bid, price in valid.items()
            }
        assert any(price > benchmark for price in valid.values())
        assert any(price < benchmark for price in valid.values())
        order = sorted(valid, key=lambda bid: (-scores[bid], valid[bid]))
        expected = [
            {"rank": rank, "bid_id": bid, "price": str(valid[bid]), "score": str(scores[bid])}
            for rank, bid in enumerate(order, start=1)
        ]

        computed = only(events, ev.SCORES_COMPUTED)
        assert computed["working"] == {
            "average": str(average),
            "excluded_prices": [str(ordered[0]), str(ordered[-1])],
            "coefficient_index": index,
            "coefficient": CHOICES[index],
            "benchmark_price": str(benchmark),
        }
        ranking = [{k: place[k] for k in expected[0]} for place in computed["ranking"]]
        assert ranking == expected
        results = (await scene.get(tender, "/results")).json()
        assert results["method"] == "benchmark"
        assert results["ranking"] == computed["ranking"]
        assert results["working"] == computed["working"]
        assert results["coefficient"] == drawn


# --- failed openings (流标) ----------------------------------------------------------------


class TestFailedOpening:
    async def test_fewer_bids_than_min_bids_fail_the_tender_without_opening_any(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender()
        for price in ("1000000.00", "950000.00"):
            await scene.bid(tender, form(price))
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        events = await scene.events(tender)
        assert types(events) == [
            ev.STARTED,
            ev.LOG_SEALED,
            ev.BIDS_LISTED,
            ev.RECORD_PUBLISHED,
            ev.FAILED,
        ]
        assert events[-1]["data"]["reason"] == "too_few_bids"
        assert (await scene.get(tender, "")).json()["status"] == "failed"
        results = (await scene.get(tender, "/results")).json()
        assert results["status"] == "failed"
        assert results["failure"]["reason"] == "too_few_bids"
        assert results["ranking"] == []
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        assert record["outcome"]["status"] == "failed"
        assert record["outcome"]["reason"] == "too_few_bids"
        assert {bid["status"] for bid in record["bids"]} == {"not_opened"}

    async def test_fewer_valid_bids_than_min_bids_fail_the_tender_after_decryption(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender()
        await scene.bid(tender, form("1000000.00"))
        await scene.bid(tender, form("1300000.00"))  # above the ceiling
        await scene.bid(tender, form("950000.00"), recipient=age.Identity.generate().recipient)
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        events = await scene.events(tender)
        assert types(events) == [
            ev.STARTED,
            ev.LOG_SEALED,
            ev.BIDS_LISTED,
            ev.BID_DECRYPTED,
            ev.BID_REJECTED,
            ev.BID_REJECTED,
            ev.RECORD_PUBLISHED,
            ev.FAILED,
        ]
        assert events[-1]["data"]["reason"] == "too_few_valid_bids"
        assert (await scene.get(tender, "")).json()["status"] == "failed"
        results = (await scene.get(tender, "/results")).json()
        assert (results["status"], results["failure"]["reason"]) == ("failed", "too_few_valid_bids")
        assert results["ranking"] == []


# --- rejected bids -------------------------------------------------------------------------


class TestRejectedBids:
    async def test_each_bad_bid_is_rejected_with_its_reason_while_the_rest_open(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender()  # floor 900000.00, ceiling 1250000.00
        document = b"%PDF-1.7 method statement\n" * 100
        valid = {
            "plain": await scene.bid(tender, form("1000000.00")),
            "zip": await scene.bid(
                tender, zip_bid(form("950000.00"), {"docs/method.pdf": document})
            ),
            "at_floor": await scene.bid(tender, form("900000.00")),
        }
        stranger = age.Identity.generate().recipient
        rejected = {
            "decrypt_failed": await scene.bid(tender, form("990000.00"), recipient=stranger),
            "tampered": await scene.bid(tender, form("980000.00")),
            "missing": await scene.bid(tender, form("970000.00")),
            "not_a_number": await scene.bid(tender, form("abc")),
            "no_duration": await scene.bid(tender, {"price": "960000.00"}),
            "above_ceiling": await scene.bid(tender, form("1250000.01")),
            "below_floor": await scene.bid(tender, form("899999.99")),
        }
        # After the receipts, before the opening: one file altered, one lost.
        tampered = blob_path(scene, rejected["tampered"])
        data = bytearray(tampered.read_bytes())
        data[len(data) // 2] ^= 0x01
        tampered.write_bytes(bytes(data))
        blob_path(scene, rejected["missing"]).unlink()
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        events = await scene.events(tender)
        assert_each_step_once(events)
        decided = outcomes(events)
        reasons = {
            name: decided[bid_id(receipt)]["data"]["reason"] for name, receipt in rejected.items()
        }
        assert reasons == {
            "decrypt_failed": "decrypt_failed",
            "tampered": "digest_mismatch",
            "missing": "digest_mismatch",
            "not_a_number": "form_invalid",
            "no_duration": "form_invalid",
            "above_ceiling": "above_ceiling",
            "below_floor": "below_floor",
        }
        assert {decided[bid_id(r)]["type"] for r in valid.values()} == {ev.BID_DECRYPTED}
        opened = decided[bid_id(valid["zip"])]["data"]
        assert opened["price"] == "950000.00"
        assert opened["fields"] == {"duration_days": 90}
        assert opened["documents"] == [
            {
                "name": "docs/method.pdf",
                "size": len(document),
                "sha256": hashlib.sha256(document).hexdigest(),
            }
        ]
        assert types(events)[-1] == ev.COMPLETED
        results = (await scene.get(tender, "/results")).json()
        assert [place["bid_id"] for place in results["ranking"]] == [
            bid_id(valid["at_floor"]),
            bid_id(valid["zip"]),
            bid_id(valid["plain"]),
        ]
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        statuses = {bid["bid_id"]: bid["status"] for bid in record["bids"]}
        assert statuses == {bid_id(r): "decrypted" for r in valid.values()} | {
            bid_id(r): "rejected" for r in rejected.values()
        }


# --- resuming ------------------------------------------------------------------------------


class TestResume:
    async def _tender_of_five(self, scene: Scene) -> dict[str, Any]:
        tender = await scene.tender()
        await scene.bid(tender, form("1000000.00"))
        await scene.bid(tender, form("1300000.00"))  # rejected: above the ceiling
        await scene.bid(tender, form("950000.00"))
        await scene.bid(tender, form("990000.00"), recipient=age.Identity.generate().recipient)
        await scene.bid(tender, form("1100000.00"))
        await scene.pass_deadline(tender)
        return tender

    async def _assert_finished_once(self, scene: Scene, tender: dict[str, Any]) -> None:
        events = await scene.events(tender)
        assert_each_step_once(events)
        assert types(events)[-2:] == [ev.RECORD_PUBLISHED, ev.COMPLETED]
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        listed = only(events, ev.BIDS_LISTED)["bids"]
        assert [bid["bid_id"] for bid in record["bids"]] == [bid["bid_id"] for bid in listed]
        assert Counter(bid["status"] for bid in record["bids"]) == {"decrypted": 3, "rejected": 2}
        results = (await scene.get(tender, "/results")).json()
        assert [place["price"] for place in results["ranking"]] == [
            "950000.00",
            "1000000.00",
            "1100000.00",
        ]

    async def test_a_crash_during_decryption_resumes_after_the_last_event(
        self, scene: Scene
    ) -> None:
        tender = await self._tender_of_five(scene)
        crashing = CrashingBlobs(scene.app.state.blobs, crash_at=3)

        with pytest.raises(Crash):
            await scene.open(tender, blobs=crashing, workers=1)

        before = await scene.events(tender)
        assert types(before) == [
            ev.STARTED,
            ev.LOG_SEALED,
            ev.BIDS_LISTED,
            ev.BID_DECRYPTED,
            ev.BID_REJECTED,
        ]
        assert (await scene.get(tender, "")).json()["status"] == "opening"

        assert isinstance(await scene.open(tender), lease.Claimed)

        assert (await scene.events(tender))[: len(before)] == before
        await self._assert_finished_once(scene, tender)

    async def test_a_cancelled_opening_resumes_after_the_last_event(self, scene: Scene) -> None:
        tender = await self._tender_of_five(scene)
        hanging = HangingBlobs(scene.app.state.blobs, hang_at=3)
        running = asyncio.create_task(scene.open(tender, blobs=hanging, workers=1))
        try:
            # Two bids decided (seq 4 and 5), the third being opened in its thread.
            await wait_for_seq(scene, tender, 5)
            assert await asyncio.to_thread(hanging.reached.wait, 10)
            await asyncio.sleep(0.05)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        finally:
            hanging.release.set()
        before = await scene.events(tender)
        assert len(before) == 5

        assert isinstance(await scene.open(tender), lease.Claimed)

        assert (await scene.events(tender))[:5] == before
        await self._assert_finished_once(scene, tender)


# --- exactly once --------------------------------------------------------------------------


class TestExactlyOnce:
    async def _tender_of_three(self, scene: Scene) -> dict[str, Any]:
        tender = await scene.tender()
        for price in ("1000000.00", "950000.00", "1100000.00"):
            await scene.bid(tender, form(price))
        await scene.pass_deadline(tender)
        return tender

    async def test_two_instances_at_once_open_the_tender_once(self, scene: Scene) -> None:
        tender = await self._tender_of_three(scene)
        tender_id = uuid.UUID(tender["id"])

        claims = await asyncio.gather(
            pipeline.run(scene.context("instance-a"), tender_id),
            pipeline.run(scene.context("instance-b"), tender_id),
        )

        assert sum(isinstance(claim, lease.Claimed) for claim in claims) == 1
        loser = next(claim for claim in claims if not isinstance(claim, lease.Claimed))
        assert isinstance(loser, lease.HeldElsewhere | lease.Nothing)
        events = await scene.events(tender)
        assert_each_step_once(events)
        assert types(events)[-1] == ev.COMPLETED

    async def test_an_expired_lease_is_taken_over_and_its_old_holder_may_not_write(
        self, scene: Scene
    ) -> None:
        tender = await self._tender_of_three(scene)
        tender_id = uuid.UUID(tender["id"])
        assert isinstance(await lease.claim(scene.context("a"), tender_id), lease.Claimed)

        held = await lease.claim(scene.context("b"), tender_id)
        assert isinstance(held, lease.HeldElsewhere)
        assert held.until > utcnow()
        assert isinstance(await pipeline.run(scene.context("b"), tender_id), lease.HeldElsewhere)

        skew = held.until - utcnow() + timedelta(seconds=1)
        later = scene.context("b", clock=lambda: utcnow() + skew)
        assert isinstance(await pipeline.run(later, tender_id), lease.Claimed)

        events = await scene.events(tender)
        assert_each_step_once(events)
        assert types(events)[-1] == ev.COMPLETED
        with pytest.raises(ev.LeaseLost):
            async with later.session_factory() as session, session.begin():
                await ev.append(
                    session=session,
                    tender_id=tender_id,
                    payload=payloads.BidDecrypted(
                        bid_id="late",
                        bidder_id="",
                        bidder_name="",
                        price="",
                        fields={},
                        documents=[],
                    ),
                    lease_owner="a",
                )
        assert await scene.events(tender) == events


# --- the log and the record ----------------------------------------------------------------


class TestTransparency:
    async def test_the_log_is_sealed_at_the_deadline_and_every_receipt_is_in_it(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender()
        parties = [await scene.bidder() for _ in range(4)]
        receipts = [await scene.bid(tender, form("1000000.00"), party=p) for p in parties]
        receipts.append(await scene.bid(tender, form("990000.00"), party=parties[0]))  # replaced
        withdrawn = await scene.client.delete(
            f"{TENDERS}/{tender['id']}/bids/mine", headers=parties[1].headers
        )
        assert withdrawn.status_code == 200, withdrawn.text
        receipts.append(withdrawn.json())
        leaf = receipts[0]["leaf_hash"]
        assert (await scene.get(tender, "/log/head")).status_code == 409
        early = await scene.get(tender, "/log/proof", leaf_hash=leaf)
        assert (early.status_code, early.json()["type"]) == (409, "log_not_sealed")
        assert (await scene.get(tender, "/log/leaves")).status_code == 409
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        keys = await published_keys(scene)
        head = (await scene.get(tender, "/log/head")).json()
        assert verify_document(
            head["tree_head"], key_id=head["key_id"], signature=head["signature"], keys=keys
        )
        assert head["tree_head"]["tree_size"] == len(receipts) == 6
        root = bytes.fromhex(head["tree_head"]["root_hash"])
        for index, receipt in enumerate(receipts):
            proof = (await scene.get(tender, "/log/proof", leaf_hash=receipt["leaf_hash"])).json()
            assert proof["leaf_index"] == index
            assert merkle.verify_inclusion(
                leaf_hash=bytes.fromhex(receipt["leaf_hash"]),
                index=proof["leaf_index"],
                tree_size=proof["tree_size"],
                proof=[bytes.fromhex(node) for node in proof["proof"]],
                root=root,
            )

        leaves = (await scene.get(tender, "/log/leaves")).json()["leaves"]
        assert [leaf["body"] for leaf in leaves] == [receipt["body"] for receipt in receipts]
        for entry in leaves:
            assert entry["leaf_hash"] == merkle.leaf_hash(canonical_json(entry["body"])).hex()
            assert verify_document(
                entry["body"], key_id=entry["key_id"], signature=entry["signature"], keys=keys
            )
        assert merkle.root_hash([bytes.fromhex(entry["leaf_hash"]) for entry in leaves]) == root

        unknown = await scene.get(tender, "/log/proof", leaf_hash="ab" * 32)
        assert (unknown.status_code, unknown.json()["type"]) == (404, "leaf_not_found")

    async def test_the_signed_record_binds_every_event_before_it(self, scene: Scene) -> None:
        tender = await scene.tender()
        for price in ("1000000.00", "950000.00", "1300000.00", "1100000.00"):
            await scene.bid(tender, form(price))
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        keys = await published_keys(scene)
        signed = (await scene.get(tender, "/opening/record")).json()
        record = signed["record"]
        assert verify_document(
            record, key_id=signed["key_id"], signature=signed["signature"], keys=keys
        )
        events = await scene.events(tender)
        published = types(events).index(ev.RECORD_PUBLISHED)
        before = events[:published]
        assert record["events"] == {
            "count": len(before),
            "sha256": hashlib.sha256(canonical_json(before)).hexdigest(),
        }
        assert events[published]["data"] == {
            "sha256": hashlib.sha256(canonical_json(record)).hexdigest(),
            "key_id": signed["key_id"],
            "signature": signed["signature"],
        }
        assert record["tree_head"] == only(events, ev.LOG_SEALED)
        # Any change to what was signed shows.
        record["bids"][0]["price"] = "1.00"
        assert not verify_document(
            record, key_id=signed["key_id"], signature=signed["signature"], keys=keys
        )


# --- who may watch -------------------------------------------------------------------------


class TestWatchers:
    async def test_a_private_opening_is_for_participants_and_its_outcome_for_everyone(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender()  # public_opening is false by default
        bidder = await scene.bidder()
        for price in ("1000000.00", "950000.00"):
            await scene.bid(tender, form(price))
        await scene.bid(tender, form("1100000.00"), party=bidder)
        outsider = await scene.bidder("Did Not Bid Ltd")

        assert (await get_as(scene, tender, "/opening/events", None)).status_code == 401
        assert (await get_as(scene, tender, "/opening/events", outsider)).status_code == 403
        assert (await get_as(scene, tender, "/opening/events", bidder)).status_code == 200

        # While it runs, the outcome is for participants only, and not there yet.
        await scene.pass_deadline(tender)
        claimed = await lease.claim(scene.context(), uuid.UUID(tender["id"]))
        assert isinstance(claimed, lease.Claimed)
        for path in ("/results", "/opening/record"):
            assert (await get_as(scene, tender, path, None)).status_code == 401
            assert (await get_as(scene, tender, path, outsider)).status_code == 403
            assert (await get_as(scene, tender, path, bidder)).status_code == 409

        assert isinstance(await scene.open(tender), lease.Claimed)

        for who in (None, outsider):
            assert (await get_as(scene, tender, "/results", who)).status_code == 200
            assert (await get_as(scene, tender, "/opening/record", who)).status_code == 200
        assert (await get_as(scene, tender, "/opening/events", None)).status_code == 401
        assert (await get_as(scene, tender, "/opening/events", outsider)).status_code == 403

    async def test_a_public_opening_may_be_watched_by_anyone(self, scene: Scene) -> None:
        tender = await scene.tender(public_opening=True)
        for price in ("1000000.00", "950000.00", "1100000.00"):
            await scene.bid(tender, form(price))
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        watched = await get_as(scene, tender, "/opening/events", None)
        assert watched.status_code == 200
        assert watched.json()["events"] == await scene.events(tender)
        assert (await get_as(scene, tender, "/opening", None)).json()["status"] == "opened"

    async def test_events_are_read_page_by_page_after_a_seq(self, scene: Scene) -> None:
        tender = await scene.tender()
        for price in ("1000000.00", "950000.00", "1100000.00"):
            await scene.bid(tender, form(price))
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), lease.Claimed)
        everything = await scene.events(tender)
        assert len(everything) == 9

        first = (await scene.get(tender, "/opening/events", after=2, limit=3)).json()
        assert [event["seq"] for event in first["events"]] == [3, 4, 5]
        assert (first["has_more"], first["next_after"]) == (True, 5)
        rest = (await scene.get(tender, "/opening/events", after=5, limit=4)).json()
        assert [event["seq"] for event in rest["events"]] == [6, 7, 8, 9]
        assert (rest["has_more"], rest["next_after"]) == (False, 9)
        assert first["events"] + rest["events"] == everything[2:]
        end = (await scene.get(tender, "/opening/events", after=9)).json()
        assert (end["events"], end["has_more"], end["next_after"]) == ([], False, 9)
