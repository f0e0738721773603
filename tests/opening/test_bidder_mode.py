"""Bidder mode (online decryption): the decryption window opens after the bids are listed,
nobody holds the opening while it is open, and at its close each bid still sealed is opened
with the tender's key (backup decryption) or withdrawn as not decrypted."""

import asyncio
import base64
import copy
import hashlib
import io
import json
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bidding import client as bidding_client
from bidding.crypto import age
from bidding.crypto.receipts import make_receipt
from bidding.db import create_session_factory, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import lease
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler
from tests.opening.conftest import LiveServer, Party, Scene
from tests.tenders.conftest import TENDERS
from tests.test_client import AppTransport

PRICES = ("1000000.00", "950000.00", "1100000.00")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def bidder_mode_tender(
    scene: Scene, *, backup: bool
) -> tuple[dict[str, Any], list[age.Identity]]:
    """A bidder-mode tender with three bids, each sealed to its bidder's own key."""
    tender = await scene.tender(
        opening_mode="bidder", backup_decryption=backup, decryption_window_minutes=30
    )
    identities = []
    for price in PRICES:
        own = age.Identity.generate()
        identities.append(own)
        recipients = [own.recipient]
        if backup:
            recipients.append(age.Recipient.parse(tender["opening_recipient"]))
        await scene.bid(tender, {"price": price, "duration_days": 100}, recipients=recipients)
    return tender, identities


async def opening_row(scene: Scene, tender: dict[str, Any]) -> Opening:
    async with create_session_factory(scene.engine)() as session:
        opening = await session.get(Opening, uuid.UUID(tender["id"]))
    assert opening is not None
    return opening


class TestWindow:
    @pytest.mark.parametrize("backup", [False, True])
    async def test_the_window_waits_for_its_close_then_the_backup_opens_or_bids_withdraw(
        self, scene: Scene, backup: bool
    ) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=backup)
        await scene.pass_deadline(tender)
        start = utcnow()

        waiting = await scene.open(tender, clock=lambda: start)

        assert isinstance(waiting, lease.Waiting)
        assert (
            timedelta(0)
            <= start + timedelta(minutes=30) - waiting.until
            < timedelta(milliseconds=1)
        )
        events = await scene.events(tender)
        assert types(events) == [ev.STARTED, ev.LOG_SEALED, ev.BIDS_LISTED, ev.WINDOW_OPENED]
        assert events[-1]["data"]["closes_at"] == iso_utc(waiting.until)
        opening = await opening_row(scene, tender)
        assert (opening.lease_owner, opening.resume_at) == (None, waiting.until)

        # Looked at again before the close (another instance, a restart): it still waits.
        early = await scene.open(
            tender, instance="other", clock=lambda: start + timedelta(minutes=29)
        )
        assert early == waiting
        assert types(await scene.events(tender)) == types(events)

        late: datetime = waiting.until + timedelta(seconds=1)
        finished = await scene.open(tender, instance="closer", clock=lambda: late)

        assert isinstance(finished, lease.Claimed)
        after = (await scene.events(tender))[len(events) :]
        closed = after[0]
        assert closed["type"] == ev.WINDOW_CLOSED
        assert closed["data"] == {"opened": 0, "still_sealed": 3}
        if backup:
            assert types(after[1:4]) == [ev.BID_DECRYPTED] * 3
            assert {event["data"]["via"] for event in after[1:4]} == {"backup"}
            assert types(after[4:]) == [ev.SCORES_COMPUTED, ev.RECORD_PUBLISHED, ev.COMPLETED]
        else:
            assert types(after[1:4]) == [ev.BID_WITHDRAWN] * 3
            assert {event["data"]["reason"] for event in after[1:4]} == {"not_decrypted"}
            assert types(after[4:]) == [ev.RECORD_PUBLISHED, ev.FAILED]
            assert after[-1]["data"]["reason"] == "too_few_valid_bids"
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        statuses = {bid["status"] for bid in record["bids"]}
        assert statuses == ({"decrypted"} if backup else {"withdrawn"})
        assert (await opening_row(scene, tender)).resume_at is None


async def reveal(scene: Scene, tender: dict[str, Any], party: Party, file_key: bytes) -> Any:
    return await scene.client.post(
        f"{TENDERS}/{tender['id']}/opening/reveal",
        json={"file_key": base64.b64encode(file_key).decode()},
        headers=party.headers,
    )


async def file_key_of(
    scene: Scene, tender: dict[str, Any], party: Party, identity: age.Identity
) -> bytes:
    """What `bidding reveal` does: the bid's header from the platform, the key computed here."""
    answer = await scene.client.get(
        f"{TENDERS}/{tender['id']}/bids/mine/header", headers=party.headers
    )
    assert answer.status_code == 200, answer.text
    header = age.parse_header(base64.b64decode(answer.json()["header"]))
    return header.file_key([identity])


class TestCeremony:
    @pytest.mark.parametrize("backup", [False, True])
    async def test_five_bidders_three_reveal_one_corrects_a_wrong_key_one_never_does(
        self, scene: Scene, backup: bool
    ) -> None:
        tender = await scene.tender(
            opening_mode="bidder", backup_decryption=backup, decryption_window_minutes=30
        )
        parties, identities = [], []
        for price in (*PRICES, "990000.00", "1050000.00"):
            party, own = await scene.bidder(), age.Identity.generate()
            recipients = [own.recipient]
            if backup:
                recipients.append(age.Recipient.parse(tender["opening_recipient"]))
            form = {"price": price, "duration_days": 100}
            await scene.bid(tender, form, party=party, recipients=recipients)
            parties.append(party)
            identities.append(own)
        outsider = await scene.bidder()
        too_early = await reveal(scene, tender, parties[0], bytes(16))
        assert (too_early.status_code, too_early.json()["type"]) == (409, "window_not_open")
        await scene.pass_deadline(tender)
        start = utcnow()
        waiting = await scene.open(tender, clock=lambda: start)
        assert isinstance(waiting, lease.Waiting)

        for party, own in zip(parties[:3], identities[:3], strict=True):
            answer = await reveal(
                scene, tender, party, await file_key_of(scene, tender, party, own)
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["type"] == ev.BID_DECRYPTED
            assert answer.json()["data"]["via"] == "bidder"
        wrong = await reveal(scene, tender, parties[3], bytes(16))
        assert wrong.status_code == 422
        assert (wrong.json()["type"], wrong.json()["tries_left"]) == ("wrong_file_key", 4)
        right = await file_key_of(scene, tender, parties[3], identities[3])
        assert (await reveal(scene, tender, parties[3], right)).status_code == 201
        again = await reveal(scene, tender, parties[3], right)
        assert (again.status_code, again.json()["type"]) == (409, "already_opened")
        assert (await reveal(scene, tender, outsider, right)).status_code == 403
        assert scene.officer is not None
        officer = await scene.client.post(
            f"{TENDERS}/{tender['id']}/opening/reveal",
            json={"file_key": base64.b64encode(right).decode()},
            headers=scene.officer.headers,
        )
        assert officer.status_code == 403

        late = waiting.until + timedelta(seconds=1)
        assert isinstance(await scene.open(tender, clock=lambda: late), lease.Claimed)
        events = await scene.events(tender)
        closed = next(event for event in events if event["type"] == ev.WINDOW_CLOSED)
        assert closed["data"] == {"opened": 4, "still_sealed": 1}
        fifth = [e for e in events if e["seq"] > closed["seq"] and "bid_id" in e["data"]]
        assert len(fifth) == 1
        if backup:
            assert (fifth[0]["type"], fifth[0]["data"]["via"]) == (ev.BID_DECRYPTED, "backup")
        else:
            assert (fifth[0]["type"], fifth[0]["data"]["reason"]) == (
                ev.BID_WITHDRAWN,
                "not_decrypted",
            )
        ranking = (await scene.get(tender, "/results")).json()["ranking"]
        assert len(ranking) == (5 if backup else 4)
        after = await reveal(scene, tender, parties[4], bytes(16))
        assert after.status_code == 409


class TestRestart:
    async def test_a_scheduler_started_while_the_window_is_open_waits_for_its_close(
        self, scene: Scene
    ) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=False)
        await scene.pass_deadline(tender)
        waiting = await scene.open(tender)
        assert isinstance(waiting, lease.Waiting)

        # A restart: a new scheduler reads the tenders table and finds the open window.
        scheduler = OpeningScheduler(scene.context("restarted"), sync_every=timedelta(minutes=10))
        await scheduler.start()
        try:
            assert scheduler.scheduled_at(uuid.UUID(tender["id"])) == waiting.until
        finally:
            await scheduler.stop()


class TestOwnHeader:
    async def test_a_bids_header_is_served_to_its_bidder_alone(self, scene: Scene) -> None:
        tender = await scene.tender(opening_mode="bidder")
        party, own = await scene.bidder(), age.Identity.generate()
        await scene.bid(tender, {"price": PRICES[0], "duration_days": 100}, party=party,
                        recipients=[own.recipient])  # fmt: skip
        url = f"{TENDERS}/{tender['id']}/bids/mine/header"
        assert len(await file_key_of(scene, tender, party, own)) == age.FILE_KEY_SIZE
        outsider = await scene.client.get(url, headers=(await scene.bidder()).headers)
        assert (outsider.status_code, outsider.json()["type"]) == (404, "no_bid")
        assert (await scene.client.get(url)).status_code == 401
        assert scene.officer is not None
        assert (await scene.client.get(url, headers=scene.officer.headers)).status_code == 403


class TestTries:
    async def test_parallel_wrong_keys_get_five_tries_in_all(self, scene: Scene) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=False)
        party = scene.bidders[0]
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), lease.Waiting)

        answers = await asyncio.gather(
            *(reveal(scene, tender, party, bytes([n]) * 16) for n in range(12))
        )

        kinds = sorted(answer.json()["type"] for answer in answers)
        assert kinds == ["too_many_tries"] * 7 + ["wrong_file_key"] * 5
        left = sorted(a.json()["tries_left"] for a in answers if a.status_code == 422)
        assert left == [0, 1, 2, 3, 4]


class TestRevealInput:
    @pytest.mark.parametrize(
        "file_key", ["not base64!", base64.b64encode(bytes(15)).decode(), "", "QUJD" * 16]
    )
    async def test_a_malformed_file_key_is_refused_without_using_a_try(
        self, scene: Scene, file_key: str
    ) -> None:
        tender, identities = await bidder_mode_tender(scene, backup=False)
        party = scene.bidders[0]
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), lease.Waiting)

        answer = await scene.client.post(
            f"{TENDERS}/{tender['id']}/opening/reveal",
            json={"file_key": file_key},
            headers=party.headers,
        )

        assert answer.status_code == 422
        assert answer.json()["type"] == "validation_error"
        right = await file_key_of(scene, tender, party, identities[0])
        wrong = await reveal(scene, tender, party, bytes(16))
        assert wrong.json()["tries_left"] == 4, "the malformed key used no try"
        assert (await reveal(scene, tender, party, right)).status_code == 201


# --- the bidder's client checks the header it is served against its own receipt -----------


class ServedHeader(httpx.BaseTransport):
    """A compromised platform, as an injected fault: the real app answers every request, but
    GET …/bids/mine/header answers with the header it is told to serve. Every request is
    noted, so a test can tell whether a file key was sent."""

    def __init__(self, app: object, loop: asyncio.AbstractEventLoop, header: bytes | None):
        self.app = AppTransport(app, loop)
        self.header = header
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        response = self.app.handle_request(request)
        if self.header is None or not request.url.path.endswith("/bids/mine/header"):
            return response
        answer = response.json() | {"header": base64.b64encode(self.header).decode()}
        return httpx.Response(response.status_code, json=answer)

    def revealed(self) -> bool:
        return any(line.endswith("/opening/reveal") for line in self.requests)


@dataclass
class TwoTenders:
    """One organization's bids, all sealed to its own key: in tender `now`, whose decryption
    window is open, a first version withdrawn and a second that counts; in tender `later`,
    still taking bids, another bid. `headers` are each bid's age header, as stored."""

    now: dict[str, Any]
    later: dict[str, Any]
    party: Party
    own: age.Identity
    receipts: dict[str, dict[str, Any]]
    headers: dict[str, bytes]

    @property
    def token(self) -> str:
        return self.party.headers["Authorization"].split()[1]


async def two_tenders(scene: Scene) -> TwoTenders:
    now = await scene.tender(opening_mode="bidder", decryption_window_minutes=30, min_bids=1)
    later = await scene.tender(opening_mode="bidder", min_bids=1)
    party, own = await scene.bidder(), age.Identity.generate()
    receipts, headers = {}, {}

    async def bid(name: str, tender: dict[str, Any], price: str) -> None:
        receipts[name] = await scene.bid(tender, {"price": price, "duration_days": 100},
                                         party=party, recipients=[own.recipient])  # fmt: skip
        answer = await scene.client.get(
            f"{TENDERS}/{tender['id']}/bids/mine/header", headers=party.headers
        )
        headers[name] = base64.b64decode(answer.json()["header"])

    await bid("v1", now, PRICES[0])
    withdrawn = await scene.client.delete(f"{TENDERS}/{now['id']}/bids/mine", headers=party.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    receipts["withdrawal"] = withdrawn.json()
    await bid("v2", now, PRICES[1])
    await bid("later", later, PRICES[2])
    await scene.pass_deadline(now)
    assert isinstance(await scene.open(now), lease.Waiting)
    return TwoTenders(now, later, party, own, receipts, headers)


async def client_reveal(
    scene: Scene, bids: TwoTenders, transport: ServedHeader, receipt: object, **options: Any
) -> dict[str, Any]:
    """`bidding reveal` as a function, in a worker thread, over the given transport."""

    def run() -> dict[str, Any]:
        with bidding_client.open_client("http://testserver", transport=transport) as http:
            return bidding_client.reveal(
                http,
                token=bids.token,
                tender_id=bids.now["id"],
                identities=[bids.own],
                receipt=receipt,
                **options,
            )

    return await asyncio.to_thread(run)


def decrypted(events: list[dict[str, Any]]) -> list[str]:
    return [event["data"]["price"] for event in events if event["type"] == ev.BID_DECRYPTED]


class TestRevealChecksTheHeader:
    async def test_the_header_of_another_bid_is_refused_and_no_file_key_is_sent(
        self, scene: Scene
    ) -> None:
        bids = await two_tenders(scene)
        loop = asyncio.get_running_loop()
        # What a platform could gain with the header of the bid in the tender still taking
        # bids: that bid's file key, which opens it before its deadline.
        stolen = age.parse_header(bids.headers["later"]).file_key([bids.own])
        opened = io.BytesIO()
        with scene.app.state.blobs.open(bids.receipts["later"]["body"]["sha256"]) as stored:
            age.unseal_with_file_key(stored, opened, stolen)
        assert json.loads(opened.getvalue())["price"] == PRICES[2]

        for served in ("later", "v1"):  # another tender's bid; a withdrawn earlier version
            fault = ServedHeader(scene.app, loop, bids.headers[served])
            with pytest.raises(bidding_client.HeaderRefused) as refused:
                await client_reveal(scene, bids, fault, bids.receipts["v2"])
            assert str(refused.value).startswith("refused: the platform served a bid header")
            assert "no file key was computed or sent" in str(refused.value)
            assert f"GET {TENDERS}/{bids.now['id']}/bids/mine/header" in fault.requests
            assert not fault.revealed(), fault.requests
        assert decrypted(await scene.events(bids.now)) == []

        honest = ServedHeader(scene.app, loop, None)
        event = await client_reveal(scene, bids, honest, bids.receipts["v2"])
        assert (event["type"], event["data"]["price"]) == (ev.BID_DECRYPTED, PRICES[1])
        assert decrypted(await scene.events(bids.now)) == [PRICES[1]]

    async def test_a_receipt_that_cannot_vouch_for_the_header_is_refused_before_it_is_read(
        self, scene: Scene
    ) -> None:
        bids = await two_tenders(scene)
        altered = copy.deepcopy(bids.receipts["v1"])
        altered["body"]["header_sha256"] = hashlib.sha256(bids.headers["v2"]).hexdigest()
        # What a platform gave before receipts pinned the header: signed, without the pin.
        old_body = {k: v for k, v in bids.receipts["v2"]["body"].items() if k != "header_sha256"}
        old = make_receipt(old_body, scene.keys.signing)
        cases = [
            (bids.receipts["later"], f"the receipt is of tender {bids.later['id']}, not "),
            (bids.receipts["withdrawal"], "the receipt is of a withdrawal, not of a bid"),
            (altered, "the receipt is not genuine: the signature does not match the body"),
            ({"body": "?"}, "the receipt is not genuine: the receipt has no body object"),
            (old, "the receipt names no header_sha256 (it was made before receipts pinned"),
        ]
        for receipt, message in cases:
            fault = ServedHeader(scene.app, asyncio.get_running_loop(), None)
            with pytest.raises(bidding_client.HeaderRefused) as refused:
                await client_reveal(scene, bids, fault, receipt)
            assert str(refused.value).startswith(message), str(refused.value)
            assert fault.requests == ["GET /api/v1/keys"]
        assert "add --allow-old-receipt to reveal without that check" in str(refused.value)
        assert decrypted(await scene.events(bids.now)) == []

        # Allowed explicitly, an old receipt reveals the bid without the check.
        honest = ServedHeader(scene.app, asyncio.get_running_loop(), None)
        event = await client_reveal(scene, bids, honest, old, allow_old_receipt=True)
        assert (event["type"], event["data"]["price"]) == (ev.BID_DECRYPTED, PRICES[1])


class HeaderSwappingProxy:
    """A compromised platform as a process sees it: a proxy on 127.0.0.1 in front of the real
    server that passes everything on, except that it answers GET …/bids/mine/header with
    another header. It notes each request it passes on."""

    def __init__(self, upstream: str, header: bytes) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def relay(self) -> None:
                proxy.requests.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                forwarded = {k: v for k, v in self.headers.items()
                             if k.lower() in ("authorization", "content-type")}  # fmt: skip
                answer = httpx.request(self.command, f"{upstream}{self.path}", content=body,
                                       headers=forwarded, timeout=30)  # fmt: skip
                content = answer.content
                if self.path.endswith("/bids/mine/header") and answer.status_code == 200:
                    swapped = answer.json() | {"header": base64.b64encode(header).decode()}
                    content = json.dumps(swapped).encode()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self.relay()

            def do_POST(self) -> None:
                self.relay()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "HeaderSwappingProxy":
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def run_bidding(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The `bidding` command, as a bidder runs it, without holding up the server's loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bidding", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class TestRevealCommand:
    async def test_bidding_reveal_refuses_a_swapped_header_and_reveals_the_true_one(
        self, scene: Scene, live_server: LiveServer, tmp_path: Path
    ) -> None:
        bids = await two_tenders(scene)
        tender_id = bids.now["id"]
        # The receipts as `bidding submit` saves them; the newest bid's is found by its name.
        for name, file in (("v1", "v1"), ("withdrawal", "v1-withdrawal"), ("v2", "v2")):
            receipt = bids.receipts[name]
            (tmp_path / f"receipt-{tender_id}-{file}.json").write_text(json.dumps(receipt))
        (tmp_path / "org.key").write_text(f"{bids.own}\n")
        command = ("reveal", "--tender", tender_id, "--token", bids.token, "-i", "org.key")

        with HeaderSwappingProxy(live_server.url, bids.headers["later"]) as proxy:
            status, _out, err = await run_bidding(*command, "--server", proxy.url, cwd=tmp_path)
        assert status == 1
        assert err.splitlines() == [
            f"bidding: error: {tmp_path / f'receipt-{tender_id}-v2.json'}: refused: the "
            "platform served a bid header (sha256 "
            f"{hashlib.sha256(bids.headers['later']).hexdigest()[:16]}…) that is not the one "
            "your receipt of version 2 pins "
            f"({bids.receipts['v2']['body']['header_sha256'][:16]}…); no file key was computed "
            "or sent"
        ]
        assert f"GET {TENDERS}/{tender_id}/bids/mine/header" in proxy.requests
        assert not any("/opening/reveal" in line for line in proxy.requests), proxy.requests
        assert decrypted(await scene.events(bids.now)) == []

        status, out, err = await run_bidding(*command, "--server", live_server.url, cwd=tmp_path)
        assert status == 0, err
        assert out.startswith(f"bid opened: price {PRICES[1]} (event ")
        assert decrypted(await scene.events(bids.now)) == [PRICES[1]]


class TestNewestReceipt:
    TENDER = "8d0c3f4e-2b1a-4c5d-9e8f-7a6b5c4d3e2f"

    def test_the_highest_version_is_the_default_and_a_withdrawal_of_it_is_refused(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(bidding_client.ClientError, match=r"^no receipt-8d0c.*-v<N>\.json in"):
            bidding_client.newest_receipt(tmp_path, self.TENDER)
        for name in ("v2", "v10", "v9", "v10-withdrawal", "v11-withdrawal"):
            (tmp_path / f"receipt-{self.TENDER}-{name}.json").write_text("{}")
        (tmp_path / "receipt-0b7e3c1e-5d4c-4f3b-9a59-2f0c7b1d9e01-v12.json").write_text("{}")
        with pytest.raises(bidding_client.ClientError, match="you withdrew version 11"):
            bidding_client.newest_receipt(tmp_path, self.TENDER)
        (tmp_path / f"receipt-{self.TENDER}-v12.json").write_text("{}")
        newest = bidding_client.newest_receipt(tmp_path, self.TENDER)
        assert newest == tmp_path / f"receipt-{self.TENDER}-v12.json"
