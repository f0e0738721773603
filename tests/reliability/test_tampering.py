"""Tampering that must not go unnoticed: receipts replayed against
another tender or bidder, stored bids altered on disk before the opening, and the receipt log
or a bid edited or deleted in the database.

Everything runs against a real `bidding serve` (one per backend, shared by the module: each
test has its own tender) with real files in its data dir and real rows in its database, and is
checked the way an outsider checks it: the bidder's client (`bidding.client`), the
`bidding verify-receipt` command, and the public endpoints (`/keys`, `/log/head`, `/log/proof`,
`/log/leaves`, the opening's events). The audit-trail half of item 6 is tests/audit.
"""

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, update

from bidding import client
from bidding.crypto import age, merkle
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import receipt_problems
from bidding.crypto.signing import VerifyKey
from bidding.db import create_engine, create_session_factory, utcnow
from bidding.opening import events as ev
from bidding.tenders.models import Bid, LogEntry, Tender
from tests.support.cluster import (
    Cast,
    Cluster,
    Database,
    Event,
    Server,
    Watcher,
    bring_deadline_forward,
    ended,
    fresh_database,
    json_bid,
    make_cast,
    price,
)
from tests.support.processes import bidding_env
from tests.tenders.conftest import TENDERS, tender_body

pytestmark = pytest.mark.process

BIDDERS = 8
OCTETS = {"Content-Type": "application/octet-stream"}


# --- the platform under test ---------------------------------------------------------------


@dataclass
class Platform:
    """A running server on a fresh database, an officer and bidders."""

    database: Database
    cluster: Cluster
    server: Server
    cast: Cast

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def tender(self, **changes: Any) -> Event:
        """A tender published by the officer, its deadline an hour away."""
        deadline = (utcnow() + timedelta(hours=1)).isoformat()
        http, officer = self.server.http, self.cast.officer
        created = await http.post(
            TENDERS, json=tender_body(bid_deadline=deadline, **changes), headers=officer
        )
        assert created.status_code == 201, created.text
        published = await http.post(f"{TENDERS}/{created.json()['id']}/publish", headers=officer)
        assert published.status_code == 200, published.text
        tender: Event = published.json()
        return tender

    async def bid(self, tender: Event, bidder: int, plaintext: bytes) -> Event:
        """Bidder number `bidder` seals the plaintext to the tender and hands it in."""
        sealed = age.seal_bytes(plaintext, [age.Recipient.parse(tender["opening_recipient"])])
        response = await self.server.http.post(
            f"{TENDERS}/{tender['id']}/bids",
            content=sealed,
            headers={**OCTETS, **self.cast.bidders[bidder]},
        )
        assert response.status_code == 201, response.text
        receipt: Event = response.json()
        return receipt

    async def open(self, tender: Event) -> list[Event]:
        """End the bidding now and wait for the server to finish the opening by itself."""
        await bring_deadline_forward(self.database, tender)
        watcher = Watcher(tender, self.cast.officer)
        return await watcher.until(self.server, ended, "the opening to end", self.cluster)

    def blob(self, receipt: Event) -> Path:
        """Where the server keeps the sealed file a receipt names."""
        digest = receipt["body"]["sha256"]
        return self.database.data_dir / "blobs" / digest[:2] / digest[2:4] / digest

    async def sql(self, *statements: Any) -> None:
        """Run statements in one transaction, as somebody with access to the database."""
        engine = create_engine(self.database.url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(statement)
        finally:
            await engine.dispose()

    async def log_row(self, tender: Event, position: int) -> LogEntry:
        engine = create_engine(self.database.url)
        try:
            async with create_session_factory(engine)() as session:
                row = await session.scalar(
                    select(LogEntry).where(
                        LogEntry.tender_id == uuid.UUID(tender["id"]),
                        LogEntry.position == position,
                    )
                )
        finally:
            await engine.dispose()
        assert row is not None
        return row

    async def get(self, tender: Event, path: str, **params: str) -> httpx.Response:
        return await self.server.http.get(f"{TENDERS}/{tender['id']}{path}", params=params)

    def verify_receipt(self, receipt: Event, folder: Path) -> subprocess.CompletedProcess[str]:
        """`bidding verify-receipt` on a receipt file, as a bidder runs it."""
        path = folder / f"receipt-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(receipt))
        return subprocess.run(
            [sys.executable, "-m", "bidding", "verify-receipt", str(path), "--server", self.url],
            env=bidding_env(folder / "bidder"),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def http(self) -> httpx.Client:
        """The bidder client's own HTTP client (bidding.client)."""
        return client.open_client(self.url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    folder = tmp_path_factory.mktemp(f"tampering-{request.param}")
    async with fresh_database(request.param, folder) as database:
        cluster = Cluster(database, folder)
        try:
            cast = await make_cast(database, BIDDERS)
            (server,) = await cluster.start()
            yield Platform(database, cluster, server, cast)
        finally:
            await cluster.close()


def keys_of(platform: Platform) -> dict[str, VerifyKey]:
    with platform.http() as http:
        return client.fetch_keys(http)


def inclusion(platform: Platform, receipt: Event) -> client.Inclusion:
    """What the bidder's client says about the receipt's place in the sealed log."""
    with platform.http() as http:
        return client.check_inclusion(http, receipt, client.fetch_keys(http))


def outcomes(events: list[Event]) -> dict[str, tuple[str, str | None]]:
    """Each opened bid's outcome: (event type, rejection reason)."""
    return {
        event["data"]["bid_id"]: (event["type"], event["data"].get("reason"))
        for event in events
        if event["type"] in (ev.BID_DECRYPTED, ev.BID_REJECTED)
    }


def data_of(events: list[Event], type: str) -> dict[str, Any]:
    (data,) = [event["data"] for event in events if event["type"] == type]
    return data


# --- item 4: receipts replayed -------------------------------------------------------------


class TestReplayedReceipts:
    async def test_a_receipt_of_one_tender_proves_nothing_about_another(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        first, second = await platform.tender(min_bids=1), await platform.tender(min_bids=1)
        receipt = await platform.bid(first, 0, json_bid(0))
        await platform.bid(second, 0, json_bid(1))
        await platform.open(first)
        await platform.open(second)
        keys = keys_of(platform)
        body = receipt["body"]

        # The genuine receipt verifies, for the tender it was given for.
        genuine = platform.verify_receipt(receipt, tmp_path)
        assert genuine.returncode == 0, genuine.stderr
        assert "inclusion: ok" in genuine.stdout
        # Replayed as the answer to an upload to the second tender, the client refuses it.
        assert client.check_receipt(
            receipt, keys, tender_id=second["id"], sha256=body["sha256"], size=body["size"]
        ) == [f"the receipt says tender_id {first['id']!r}, not {second['id']!r}"]
        # Edited to name the second tender, its signature no longer holds.
        forged = copy.deepcopy(receipt)
        forged["body"]["tender_id"] = second["id"]
        refused = platform.verify_receipt(forged, tmp_path)
        assert refused.returncode == 1
        assert "the signature does not match the body" in refused.stderr
        # Even with its leaf hash made to match, the second tender's sealed log lacks it.
        forged["leaf_hash"] = merkle.leaf_hash(canonical_json(forged["body"])).hex()
        assert inclusion(platform, forged).proven is False
        for leaf in (receipt["leaf_hash"], forged["leaf_hash"]):
            proof = await platform.get(second, "/log/proof", leaf_hash=leaf)
            assert (proof.status_code, proof.json()["type"]) == (404, "leaf_not_found")

    async def test_a_receipt_of_one_bidder_is_no_receipt_of_another(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        tender = await platform.tender(min_bids=1)
        theirs = await platform.bid(tender, 0, json_bid(0))
        sealed_mine = age.seal_bytes(
            json_bid(1), [age.Recipient.parse(tender["opening_recipient"])]
        )
        mine = await platform.server.http.post(
            f"{TENDERS}/{tender['id']}/bids",
            content=sealed_mine,
            headers={**OCTETS, **platform.cast.bidders[1]},
        )
        assert mine.status_code == 201, mine.text
        withdrawn = await platform.server.http.delete(
            f"{TENDERS}/{tender['id']}/bids/mine", headers=platform.cast.bidders[0]
        )
        assert withdrawn.status_code == 200, withdrawn.text
        await platform.open(tender)
        keys = keys_of(platform)
        digest, size = hashlib.sha256(sealed_mine).hexdigest(), len(sealed_mine)

        # Another bidder's receipt (or withdrawal) replayed as the answer to my upload.
        assert client.check_receipt(mine.json(), keys, tender_id=tender["id"], sha256=digest,
                                    size=size) == []  # fmt: skip
        replayed = client.check_receipt(
            theirs, keys, tender_id=tender["id"], sha256=digest, size=size
        )
        assert f"the receipt says sha256 {theirs['body']['sha256']!r}, not {digest!r}" in replayed
        withdrawal = client.check_receipt(
            withdrawn.json(), keys, tender_id=tender["id"], sha256=digest, size=size
        )
        assert "the receipt says kind 'withdrawal', not 'bid'" in withdrawal
        # Edited to name me as the bidder, it is no longer signed.
        forged = copy.deepcopy(theirs)
        forged["body"]["bidder_id"] = mine.json()["body"]["bidder_id"]
        assert receipt_problems(forged, keys) == [
            "the signature does not match the body: the receipt was altered",
            "leaf_hash is not the RFC 6962 leaf hash of the body",
        ]
        refused = platform.verify_receipt(forged, tmp_path)
        assert refused.returncode == 1 and "signature does not match" in refused.stderr
        # And the platform gives nobody else's receipts as one's own.
        listed = await platform.server.http.get(
            f"{TENDERS}/{tender['id']}/bids/mine", headers=platform.cast.bidders[1]
        )
        assert listed.json()["receipts"] == [mine.json()]


# --- item 5: stored bids altered on disk ---------------------------------------------------


def multi_chunk_bid(number: int) -> bytes:
    """A bid whose sealed file has four payload chunks: the form and 200 KiB of documents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("bid.json", json_bid(number))
        archive.writestr("documents/drawings.pdf", os.urandom(200 * 1024))
    return buffer.getvalue()


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as stored:
        stored.seek(offset)
        byte = stored.read(1)
        stored.seek(offset)
        stored.write(bytes([byte[0] ^ 0x01]))


class TestAlteredFiles:
    async def test_each_altered_file_is_a_digest_mismatch_and_the_others_open(
        self, platform: Platform
    ) -> None:
        tender = await platform.tender()
        receipts = [
            await platform.bid(tender, number, multi_chunk_bid(number)) for number in range(8)
        ]
        header, middle, last, truncated, replaced, *intact = receipts
        data = platform.blob(header).read_bytes()
        header_length = age.header_length(data)
        assert header_length is not None
        payload = header_length + age.NONCE_SIZE
        chunks = -(-(len(data) - payload) // age.ENCRYPTED_CHUNK_SIZE)
        assert chunks == 4, "a middle chunk and a last chunk to flip"

        # Before the deadline, somebody with access to the data dir alters five stored bids.
        flip(platform.blob(header), header_length // 2)
        flip(platform.blob(middle), payload + age.ENCRYPTED_CHUNK_SIZE + 1000)
        flip(platform.blob(last), platform.blob(last).stat().st_size - 1)
        # Cut at a chunk boundary: what is left looks like a shorter, complete file.
        with platform.blob(truncated).open("r+b") as stored:
            stored.truncate(payload + 2 * age.ENCRYPTED_CHUNK_SIZE)
        # A whole new bid, sealed to the tender's public recipient, with a lower price.
        forged_price = "901234.56"
        forged = {"price": forged_price, "duration_days": 90}
        platform.blob(replaced).write_bytes(
            age.seal_bytes(
                json.dumps(forged).encode(), [age.Recipient.parse(tender["opening_recipient"])]
            )
        )
        events = await platform.open(tender)

        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == ev.COMPLETED
        opened = outcomes(events)
        for receipt in (header, middle, last, truncated, replaced):
            assert opened[receipt["body"]["bid_id"]] == (ev.BID_REJECTED, "digest_mismatch")
        for receipt in intact:
            assert opened[receipt["body"]["bid_id"]] == (ev.BID_DECRYPTED, None)
        ranking = data_of(events, ev.SCORES_COMPUTED)["ranking"]
        assert [place["price"] for place in ranking] == [price(n) for n in range(5, 8)]
        assert forged_price not in json.dumps(events), "the substitute was never read out"
        record = (
            await platform.server.http.get(
                f"{TENDERS}/{tender['id']}/opening/record", headers=platform.cast.officer
            )
        ).json()["record"]
        assert [bid.get("reason") for bid in record["bids"]] == ["digest_mismatch"] * 5 + [None] * 3


# --- item 6: the log and the bids edited in the database -----------------------------------


def root_of(leaves: list[dict[str, Any]]) -> str:
    return merkle.root_hash([bytes.fromhex(leaf["leaf_hash"]) for leaf in leaves]).hex()


def as_receipt(leaf: dict[str, Any]) -> dict[str, Any]:
    return {name: leaf[name] for name in ("body", "leaf_hash", "key_id", "signature")}


def auditor_findings(listed: list[dict[str, Any]], leaves: list[dict[str, Any]]) -> list[str]:
    """What an outside auditor finds comparing the bids listed at the opening with the sealed
    log's receipts: the bids in force are each bidder's last receipt, if it is a bid."""
    last: dict[str, dict[str, Any]] = {}
    for leaf in leaves:
        last[leaf["body"]["bidder_id"]] = leaf["body"]
    receipted = {
        body["bid_id"]: {key: body[key] for key in ("version", "sha256", "size", "received_at")}
        for body in last.values()
        if body["kind"] == "bid"
    }
    shown = {
        bid["bid_id"]: {key: bid[key] for key in ("version", "sha256", "size", "received_at")}
        for bid in listed
    }
    return [
        f"bid {bid_id}: listed {shown.get(bid_id)}, receipted {receipted.get(bid_id)}"
        for bid_id in sorted(receipted.keys() | shown.keys())
        if shown.get(bid_id) != receipted.get(bid_id)
    ]


class TestEditedDatabase:
    async def test_a_log_row_rewritten_after_the_opening_makes_no_receipt_provable(
        self, platform: Platform
    ) -> None:
        tender = await platform.tender()
        receipts = [await platform.bid(tender, n, json_bid(n)) for n in range(3)]
        events = await platform.open(tender)
        head = data_of(events, ev.LOG_SEALED)["tree_head"]
        assert (
            root_of((await platform.get(tender, "/log/leaves")).json()["leaves"])
            == (head["root_hash"])
        )
        assert all(inclusion(platform, receipt).proven for receipt in receipts)

        # The second receipt rewritten to name another file, its leaf hash recomputed to match.
        row = await platform.log_row(tender, 1)
        body = json.loads(row.body) | {"sha256": hashlib.sha256(b"another file").hexdigest()}
        text = canonical_json(body)
        await platform.sql(
            update(LogEntry)
            .where(LogEntry.id == row.id)
            .values(body=text.decode(), leaf_hash=merkle.leaf_hash(text).hex())
        )

        leaves = (await platform.get(tender, "/log/leaves")).json()["leaves"]
        assert root_of(leaves) != head["root_hash"], "the leaves no longer make the signed root"
        assert "the signature does not match the body: the receipt was altered" in (
            receipt_problems(as_receipt(leaves[1]), keys_of(platform))
        )
        victim = inclusion(platform, receipts[1])
        assert victim.proven is False and "does not hold this receipt" in victim.detail
        for receipt in (receipts[0], receipts[2]):
            assert inclusion(platform, receipt).proven is False

    async def test_a_log_row_deleted_after_the_opening_makes_no_receipt_provable(
        self, platform: Platform
    ) -> None:
        tender = await platform.tender()
        receipts = [await platform.bid(tender, n, json_bid(n)) for n in range(3)]
        events = await platform.open(tender)
        head = data_of(events, ev.LOG_SEALED)["tree_head"]

        row = await platform.log_row(tender, 2)
        await platform.sql(delete(LogEntry).where(LogEntry.id == row.id))

        leaves = (await platform.get(tender, "/log/leaves")).json()["leaves"]
        assert len(leaves) == head["tree_size"] - 1
        assert root_of(leaves) != head["root_hash"]
        victim = inclusion(platform, receipts[2])
        assert victim.proven is False and "does not hold this receipt" in victim.detail
        assert [inclusion(platform, receipt).proven for receipt in receipts[:2]] == [False] * 2

    async def test_a_bid_erased_before_the_deadline_leaves_its_bidder_proof_of_it(
        self, platform: Platform, tmp_path: Path
    ) -> None:
        tender = await platform.tender()
        receipts = [await platform.bid(tender, n, json_bid(n)) for n in range(4)]
        *kept, erased = receipts
        # The last bid erased without a trace in the tables: its leaf, its row, the log's size.
        bid_id = uuid.UUID(erased["body"]["bid_id"])
        await platform.sql(
            delete(LogEntry).where(LogEntry.bid_id == bid_id),
            delete(Bid).where(Bid.id == bid_id),
            update(Tender)
            .where(Tender.id == uuid.UUID(tender["id"]))
            .values(log_size=Tender.log_size - 1),
        )
        events = await platform.open(tender)

        listed = data_of(events, ev.BIDS_LISTED)["bids"]
        assert erased["body"]["bid_id"] not in {bid["bid_id"] for bid in listed}
        # Its bidder holds a receipt signed before the deadline that the sealed log lacks.
        refused = platform.verify_receipt(erased, tmp_path)
        assert refused.returncode == 1, refused.stdout
        assert "signature: ok" in refused.stdout
        assert "inclusion: the log sealed at" in refused.stderr
        assert "does not hold this receipt" in refused.stderr
        for receipt in kept:
            assert platform.verify_receipt(receipt, tmp_path).returncode == 0

    async def test_a_bid_row_pointed_at_another_file_changes_nothing(
        self, platform: Platform
    ) -> None:
        tender = await platform.tender()
        receipts = [await platform.bid(tender, n, json_bid(n)) for n in range(3)]
        victim = receipts[1]
        # Before the deadline a substitute is planted in the blob store, sealed to the tender's
        # public recipient, and the victim's bid row is pointed at it.
        forged_price = "901234.56"
        substitute = age.seal_bytes(
            json.dumps({"price": forged_price, "duration_days": 90}).encode(),
            [age.Recipient.parse(tender["opening_recipient"])],
        )
        digest = hashlib.sha256(substitute).hexdigest()
        planted = platform.database.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(substitute)
        await platform.sql(
            update(Bid)
            .where(Bid.id == uuid.UUID(victim["body"]["bid_id"]))
            .values(sha256=digest, size=len(substitute))
        )
        events = await platform.open(tender)

        # The opening lists what the signed log holds, so the victim's own file is opened.
        assert forged_price not in json.dumps(events)
        leaves = (await platform.get(tender, "/log/leaves")).json()["leaves"]
        assert auditor_findings(data_of(events, ev.BIDS_LISTED)["bids"], leaves) == []
        assert outcomes(events)[victim["body"]["bid_id"]] == (ev.BID_DECRYPTED, None)
        assert "unverified_leaves" not in data_of(events, ev.BIDS_LISTED)

    async def test_a_receipt_forged_into_the_log_is_left_out_and_named(
        self, platform: Platform
    ) -> None:
        tender = await platform.tender()
        receipts = [await platform.bid(tender, n, json_bid(n)) for n in range(2)]
        # A third bid, sealed like any other, written straight into the database: its log row
        # copies a real receipt's signature, which does not sign this body.
        forged = age.seal_bytes(
            json.dumps({"price": "1.00", "duration_days": 90}).encode(),
            [age.Recipient.parse(tender["opening_recipient"])],
        )
        digest = hashlib.sha256(forged).hexdigest()
        planted = platform.database.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(forged)
        body = {
            **receipts[0]["body"],
            "bidder_id": receipts[1]["body"]["bidder_id"],
            "bid_id": str(uuid.uuid4()),
            "version": 2,
            "sha256": digest,
            "size": len(forged),
        }
        text = canonical_json(body).decode()
        first = await platform.log_row(tender, 0)
        await platform.sql(
            insert(LogEntry).values(
                id=uuid.uuid4(),
                tender_id=uuid.UUID(tender["id"]),
                position=2,
                bid_id=first.bid_id,
                bidder_id=uuid.UUID(body["bidder_id"]),
                body=text,
                leaf_hash=merkle.leaf_hash(text.encode()).hex(),
                key_id=first.key_id,
                signature=first.signature,
            )
        )
        events = await platform.open(tender)

        listed = data_of(events, ev.BIDS_LISTED)
        assert listed["unverified_leaves"] == [2]
        assert sorted(bid["bid_id"] for bid in listed["bids"]) == sorted(
            receipt["body"]["bid_id"] for receipt in receipts
        )
        assert "1.00" not in [e["data"].get("price") for e in events]
