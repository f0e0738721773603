"""The bidder's client: forms checked before sealing, bids sealed and uploaded, receipts checked.

Uploads run against the real app where it exists (in process) and against a stub HTTP server
only for what the app cannot show: retries after a 503 or a dropped connection.
"""

import asyncio
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import client as bidding_client
from bidding.auth.models import Role, User
from bidding.client import ClientError
from bidding.crypto import age, merkle
from bidding.crypto.canonical import canonical_json
from bidding.crypto.receipts import make_receipt
from bidding.crypto.signing import SigningKey, VerifyKey
from bidding.db import utcnow
from bidding.keys import PlatformKeys
from bidding.opening import secrets as opening_secrets
from bidding.rules import forms
from bidding.tenders.models import OpeningMode, TenderStatus
from tests.factories import PASSWORD, bearer, create_user, credit_code
from tests.tenders.conftest import TENDERS, create_tender, reload, tender_body
from tests.test_serve import bidding_env, free_port

MIB = 1024 * 1024
TENDER_ID = "8d0c3f4e-2b1a-4c5d-9e8f-7a6b5c4d3e2f"


def field(name: str, type: str, *, required: bool = True, **bounds: str) -> dict[str, Any]:
    """A bid field as the tender API shows it."""
    return {"name": name, "label": name.replace("_", " ").title(), "type": type,
            "required": required, "min": bounds.get("min"), "max": bounds.get("max")}  # fmt: skip


FIELDS = [
    field("price", "decimal"),
    field("duration_days", "integer", min="30", max="365"),
    field("warranty_years", "decimal", required=False, min="0", max="10"),
    field("method", "text", required=False),
    field("joint_venture", "boolean", required=False),
]
FORM = {"price": "1180000.50", "duration_days": 180}


def tender_json(recipient: age.Recipient, **changes: Any) -> dict[str, Any]:
    """A published tender as GET /tenders/{id} shows it, with the fields the client reads."""
    now = utcnow()
    tender = {
        "id": TENDER_ID,
        "status": "published",
        "opening_mode": "platform",
        "opening_recipient": str(recipient),
        "bid_deadline": (now + timedelta(days=3)).isoformat(),
        "server_time": now.isoformat(),
        "ceiling_price": "1250000.00",
        "floor_price": "900000.00",
        "bid_fields": FIELDS,
    }
    return tender | changes


# --- the bid form --------------------------------------------------------------------------


class TestLoadForm:
    def test_a_repeated_key_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "bid.json"
        path.write_text('{"price": "1000.00", "price": "900.00"}')
        with pytest.raises(ClientError, match=r"bid.json: price: given twice"):
            bidding_client.load_form(path)

    def test_a_form_saved_with_a_byte_order_mark_is_read(self, tmp_path: Path) -> None:
        path = tmp_path / "bid.json"
        path.write_bytes(b"\xef\xbb\xbf" + json.dumps(FORM).encode())
        assert bidding_client.load_form(path) == FORM

    @pytest.mark.parametrize(
        ("content", "message"),
        [(b'["1000.00"]', "must be a JSON object"), (b'{"price": ', "not valid JSON"),
         (b"\xff\xfe{}", "not UTF-8")],
    )  # fmt: skip
    def test_what_is_not_a_form_is_refused(
        self, tmp_path: Path, content: bytes, message: str
    ) -> None:
        path = tmp_path / "bid.json"
        path.write_bytes(content)
        with pytest.raises(ClientError, match=message):
            bidding_client.load_form(path)


class TestBuildPlaintext:
    def test_a_form_alone_is_its_canonical_json(self) -> None:
        form = {"price": "1180000.50", "method": "沥青摊铺", "duration_days": 180}
        with bidding_client.build_plaintext(form) as plaintext:
            data = plaintext.read()
        assert data == '{"duration_days":180,"method":"沥青摊铺","price":"1180000.50"}'.encode()

    def test_attachments_make_a_zip_with_the_form_at_its_root(self, tmp_path: Path) -> None:
        drawing, schedule = tmp_path / "图纸.pdf", tmp_path / "schedule.xlsx"
        drawing.write_bytes(os.urandom(5000))
        schedule.write_bytes(b"week 1: mobilisation\n" * 1000)
        with bidding_client.build_plaintext(FORM, [drawing, schedule]) as plaintext:
            archive = zipfile.ZipFile(plaintext)
            assert archive.namelist() == [
                "bid.json",
                "attachments/图纸.pdf",
                "attachments/schedule.xlsx",
            ]
            assert archive.read("bid.json") == canonical_json(FORM)
            assert archive.read("attachments/图纸.pdf") == drawing.read_bytes()
            assert archive.read("attachments/schedule.xlsx") == schedule.read_bytes()
            assert archive.getinfo("attachments/schedule.xlsx").compress_type == (
                zipfile.ZIP_DEFLATED
            )

    def test_two_attachments_with_one_name_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first, second = tmp_path / "a" / "offer.pdf", tmp_path / "b" / "Offer.PDF"
        first.write_bytes(b"1")
        second.write_bytes(b"2")
        with pytest.raises(ClientError, match=r"also named 'Offer\.PDF'"):
            bidding_client.build_plaintext(FORM, [first, second])

    def test_names_that_differ_only_in_unicode_form_are_one_name(self, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        composed = tmp_path / "a" / unicodedata.normalize("NFC", "Café.pdf")
        decomposed = tmp_path / "b" / unicodedata.normalize("NFD", "Café.pdf")  # as macOS saves
        composed.write_bytes(b"1")
        decomposed.write_bytes(b"2")
        with pytest.raises(ClientError, match="also named"):
            bidding_client.build_plaintext(FORM, [composed, decomposed])

    def test_a_very_compressible_attachment_is_stored_so_the_opening_takes_it(
        self, tmp_path: Path
    ) -> None:
        # 3 MiB of one row repeated deflates beyond the ratio the opening takes for a zip bomb.
        repetitive, drawing = tmp_path / "quantities.csv", tmp_path / "drawing.pdf"
        repetitive.write_bytes(b"C30 concrete,m3,1\n" * (3 * MIB // 18))
        drawing.write_bytes(os.urandom(100_000))
        with bidding_client.build_plaintext(FORM, [repetitive, drawing]) as plaintext:
            archive = zipfile.ZipFile(plaintext)
            methods = {info.filename: info.compress_type for info in archive.infolist()}
            assert methods == {
                "bid.json": zipfile.ZIP_DEFLATED,
                "attachments/quantities.csv": zipfile.ZIP_STORED,
                "attachments/drawing.pdf": zipfile.ZIP_DEFLATED,
            }
            bid = forms.read_bid_form(
                plaintext, bid_fields=FIELDS, ceiling=Decimal("1250000.00"), floor=None
            )
        assert [d.name for d in bid.documents] == [
            "attachments/quantities.csv",
            "attachments/drawing.pdf",
        ]

    def test_a_folder_or_a_missing_file_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ClientError, match="is a folder"):
            bidding_client.build_plaintext(FORM, [tmp_path])
        with pytest.raises(ClientError, match="no such file"):
            bidding_client.build_plaintext(FORM, [tmp_path / "nowhere.pdf"])


# --- sealing -------------------------------------------------------------------------------


class TestSealing:
    def test_a_sealed_form_opens_with_the_tender_identity_to_exactly_the_form(self) -> None:
        identity = age.Identity.generate()
        recipients = bidding_client.sealing_recipients(tender_json(identity.recipient))
        assert recipients == [identity.recipient]
        with (
            bidding_client.build_plaintext(FORM) as plaintext,
            bidding_client.seal_bid(plaintext, recipients) as f,
        ):
            bidding_client.check_sealed(f)
            assert age.unseal_bytes(f.read(), [identity]) == canonical_json(FORM)

    def test_a_sealed_zip_opens_to_exactly_the_zip(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        attachment = tmp_path / "offer.pdf"
        attachment.write_bytes(os.urandom(300_000))
        spill = tmp_path / "tmp"
        spill.mkdir()
        # A small spool, so the ZIP spills into a temporary file as a large one would.
        monkeypatch.setattr(bidding_client, "_SPOOL_BYTES", 1000)
        monkeypatch.setattr("tempfile.tempdir", str(spill))
        identity = age.Identity.generate()
        with bidding_client.build_plaintext(FORM, [attachment]) as plaintext:
            with bidding_client.seal_bid(plaintext, [identity.recipient]) as sealed:
                # Both temporary files are unlinked: no plaintext can be found on disk.
                assert list(spill.iterdir()) == []
                opened = age.unseal_bytes(sealed.read(), [identity])
            plaintext.seek(0)
            assert opened == plaintext.read()
        archive = zipfile.ZipFile(io.BytesIO(opened))
        assert archive.read("bid.json") == canonical_json(FORM)
        assert archive.read("attachments/offer.pdf") == attachment.read_bytes()

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"status": "draft"}, "the tender is draft: it does not take bids"),
            ({"status": "opening"}, "the tender is opening"),
            ({"bid_deadline": utcnow().isoformat()}, "has passed"),
            ({"opening_mode": "bidder"}, "register your organization's key first"),
            ({"opening_recipient": None}, "no opening recipient"),
        ],
    )
    def test_a_tender_that_takes_no_bids_is_refused(
        self, changes: dict[str, Any], message: str
    ) -> None:
        tender = tender_json(age.Identity.generate().recipient, **changes)
        with pytest.raises(ClientError, match=message):
            bidding_client.sealing_recipients(tender)

    def test_the_server_clock_decides_the_deadline_not_ours(self) -> None:
        late = utcnow() + timedelta(hours=1)
        tender = tender_json(
            age.Identity.generate().recipient,
            bid_deadline=late.isoformat(),
            server_time=(late + timedelta(seconds=1)).isoformat(),
        )
        with pytest.raises(ClientError, match="has passed"):
            bidding_client.sealing_recipients(tender)

    @pytest.mark.parametrize("backup", [False, True])
    def test_a_bidder_mode_bid_is_sealed_to_the_bidder_and_with_backup_to_the_tender(
        self, backup: bool
    ) -> None:
        tender_identity, own_identity = age.Identity.generate(), age.Identity.generate()
        tender = tender_json(
            tender_identity.recipient, opening_mode="bidder", backup_decryption=backup
        )
        recipients = bidding_client.sealing_recipients(tender, own_identity.recipient)
        with (
            bidding_client.build_plaintext(FORM) as plaintext,
            bidding_client.seal_bid(plaintext, recipients) as sealed,
        ):
            data = sealed.read()
        assert age.unseal_bytes(data, [own_identity]) == canonical_json(FORM)
        if backup:
            assert age.unseal_bytes(data, [tender_identity]) == canonical_json(FORM)
        else:
            with pytest.raises(age.NoIdentityMatchError):
                age.unseal_bytes(data, [tender_identity])

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (canonical_json(FORM), "not a sealed bid: not an age file"),
            (b"", "not a sealed bid: empty file"),
        ],
    )
    def test_an_unsealed_file_is_refused_before_upload(self, content: bytes, message: str) -> None:
        with pytest.raises(ClientError, match=message):
            bidding_client.check_sealed(io.BytesIO(content))

    def test_a_file_cut_after_its_header_is_refused(self) -> None:
        sealed = age.seal_bytes(b"bid", [age.Identity.generate().recipient])
        header = age.read_header(io.BytesIO(sealed)).encode()
        with pytest.raises(ClientError, match="ends after its header"):
            bidding_client.check_sealed(io.BytesIO(header))


# --- receipts ------------------------------------------------------------------------------


def receipt_body(**changes: Any) -> dict[str, Any]:
    body = {
        "kind": "bid",
        "tender_id": TENDER_ID,
        "bidder_id": "0b7c2b8e-8d6f-4f0e-9a51-3f1c2d9e7a10",
        "bid_id": "5f2a9c1d-3e4b-4a6c-8d7e-9f0a1b2c3d4e",
        "version": 2,
        "sha256": hashlib.sha256(b"sealed").hexdigest(),
        "size": 6,
        "received_at": "2026-11-27T05:22:11.120Z",
    }
    return body | changes


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def published_keys(signing_key: SigningKey) -> dict[str, VerifyKey]:
    return {signing_key.key_id: signing_key.public_key}


class TestCheckReceipt:
    def test_a_genuine_receipt_for_the_uploaded_file_checks_out(
        self, signing_key: SigningKey, published_keys: dict[str, VerifyKey]
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        sha256 = hashlib.sha256(b"sealed").hexdigest()
        assert bidding_client.check_receipt(
            receipt, published_keys, tender_id=TENDER_ID, sha256=sha256, size=6
        ) == []  # fmt: skip

    def test_an_altered_receipt_is_caught(
        self, signing_key: SigningKey, published_keys: dict[str, VerifyKey]
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        receipt["body"]["version"] = 1
        problems = bidding_client.check_receipt(
            receipt, published_keys, tender_id=TENDER_ID, sha256=receipt["body"]["sha256"], size=6
        )
        assert "the signature does not match the body: the receipt was altered" in problems

    def test_a_receipt_for_other_bytes_is_caught(
        self, signing_key: SigningKey, published_keys: dict[str, VerifyKey]
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        other = hashlib.sha256(b"what we sent").hexdigest()
        problems = bidding_client.check_receipt(
            receipt, published_keys, tender_id=TENDER_ID, sha256=other, size=12
        )
        assert [p.split(" ")[3] for p in problems] == ["sha256", "size"]

    def test_a_key_the_platform_does_not_publish_is_caught(
        self, published_keys: dict[str, VerifyKey]
    ) -> None:
        receipt = make_receipt(receipt_body(), SigningKey.generate())
        problems = bidding_client.check_receipt(
            receipt, published_keys, tender_id=TENDER_ID, sha256=receipt["body"]["sha256"], size=6
        )
        assert problems == [
            f"key {receipt['key_id']!r} is not one of the platform's published keys"
        ]


class FakeLog:
    """GET /keys and the tender's log endpoints, served by a transport: the log is not built yet."""

    def __init__(self, key: SigningKey, leaves: list[bytes] | None) -> None:
        self.key, self.leaves = key, leaves
        self.proof_override: list[str] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/keys":
            return httpx.Response(200, json={"keys": [self.key.public_key.to_dict()]})
        if self.leaves is None:
            return httpx.Response(409, json={"type": "log_not_sealed", "detail": "not yet"})
        if path.endswith("/log/head"):
            head = {"tender_id": TENDER_ID, "tree_size": len(self.leaves),
                    "root_hash": merkle.root_hash(self.leaves).hex(),
                    "sealed_at": "2026-11-30T02:00:00.000Z"}  # fmt: skip
            return httpx.Response(200, json={"tree_head": head, **self.key.sign_document(head)})
        if path.endswith("/log/proof"):
            leaf = bytes.fromhex(request.url.params["leaf_hash"])
            if leaf not in self.leaves:
                return httpx.Response(404, json={"type": "not_found", "detail": "no such leaf"})
            index = self.leaves.index(leaf)
            proof = [p.hex() for p in merkle.inclusion_proof(self.leaves, index)]
            return httpx.Response(200, json={"leaf_index": index, "tree_size": len(self.leaves),
                                             "proof": self.proof_override or proof})  # fmt: skip
        return httpx.Response(404, json={"type": "not_found", "detail": "Not Found"})


def others(count: int) -> list[bytes]:
    return [merkle.leaf_hash(os.urandom(8)) for _ in range(count)]


class TestVerifyReceipt:
    def test_before_the_deadline_inclusion_is_not_yet_provable(
        self, signing_key: SigningKey
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        with bidding_client.open_client("http://platform", transport=httpx.MockTransport(
            FakeLog(signing_key, None)
        )) as http:  # fmt: skip
            check = bidding_client.verify_receipt(http, receipt)
        assert check.problems == [] and check.key_id == signing_key.key_id
        assert check.inclusion == bidding_client.Inclusion(None, bidding_client.NOT_YET_PROVABLE)

    def test_after_the_deadline_the_proof_places_the_receipt_under_the_signed_head(
        self, signing_key: SigningKey
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        leaves = [*others(4), bytes.fromhex(receipt["leaf_hash"]), *others(2)]
        log = FakeLog(signing_key, leaves)
        with bidding_client.open_client(
            "http://platform", transport=httpx.MockTransport(log)
        ) as http:
            check = bidding_client.verify_receipt(http, receipt)
            assert check.inclusion is not None and check.inclusion.proven is True
            assert "leaf 5 of 7" in check.inclusion.detail

            log.proof_override = [p.hex() for p in others(3)]
            check = bidding_client.verify_receipt(http, receipt)
            assert check.inclusion is not None and check.inclusion.proven is False

            log.leaves = others(7)
            check = bidding_client.verify_receipt(http, receipt)
            assert check.inclusion == bidding_client.Inclusion(
                False, "the log sealed at 2026-11-30T02:00:00.000Z does not hold this receipt"
            )

    def test_a_tree_head_signed_by_another_key_proves_nothing(
        self, signing_key: SigningKey
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        impostor = FakeLog(SigningKey.generate(), [bytes.fromhex(receipt["leaf_hash"])])

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v1/keys":
                return httpx.Response(200, json={"keys": [signing_key.public_key.to_dict()]})
            return impostor(request)

        with bidding_client.open_client(
            "http://platform", transport=httpx.MockTransport(handler)
        ) as http:
            check = bidding_client.verify_receipt(http, receipt)
        assert check.inclusion == bidding_client.Inclusion(
            False, "the log's tree head is not signed by a published key"
        )

    def test_an_altered_receipt_file_is_reported_without_a_proof(
        self, signing_key: SigningKey, tmp_path: Path
    ) -> None:
        receipt = make_receipt(receipt_body(), signing_key)
        receipt["body"]["sha256"] = hashlib.sha256(b"another bid").hexdigest()
        path = tmp_path / "receipt.json"
        bidding_client.save_receipt(receipt, path)
        log = FakeLog(signing_key, [bytes.fromhex(receipt["leaf_hash"])])
        with bidding_client.open_client(
            "http://platform", transport=httpx.MockTransport(log)
        ) as http:
            check = bidding_client.verify_receipt_file(http, path)
        assert check.inclusion is None
        assert check.problems == [
            "the signature does not match the body: the receipt was altered",
            "leaf_hash is not the RFC 6962 leaf hash of the body",
        ]


# --- the transport: retries, Content-Length, progress -------------------------------------


class StubServer:
    """A real HTTP server on a local port answering uploads from a script; None drops the line."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]] | None]) -> None:
        self.answers = answers
        self.requests: list[tuple[dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.requests.append((dict(self.headers), body))
                answer = stub.answers.pop(0)
                if answer is None:
                    self.close_connection = True
                    return
                status, content = answer
                data = json.dumps(content).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "StubServer":
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


RECEIPT = {"body": receipt_body(), "leaf_hash": "00" * 32, "key_id": "k", "signature": "s"}
UNAVAILABLE = (503, {"type": "unavailable", "detail": "restarting"})


class TestUploadTransport:
    def upload(self, stub: StubServer, sealed: bytes, **options: Any) -> bidding_client.Upload:
        with bidding_client.open_client(stub.url) as http:
            return bidding_client.upload(
                http,
                tender_id=TENDER_ID,
                token="t0ken",
                sealed=io.BytesIO(sealed),
                idempotency_key="key-1",
                retry_delays=(0, 0, 0),
                **options,
            )

    def test_a_503_is_retried_with_the_same_key_and_the_whole_file(self) -> None:
        sealed = os.urandom(2 * MIB + 12345)
        seen: list[int] = []
        with StubServer([UNAVAILABLE, (201, RECEIPT)]) as stub:
            uploaded = self.upload(stub, sealed, progress=seen.append)
        assert uploaded == bidding_client.Upload(RECEIPT, replayed=False, attempts=2)
        assert len(stub.requests) == 2
        for headers, body in stub.requests:
            assert body == sealed
            assert headers["Idempotency-Key"] == "key-1"
            assert headers["Content-Length"] == str(len(sealed))
            assert "Transfer-Encoding" not in headers
            assert headers["Content-Type"] == "application/octet-stream"
            assert headers["Authorization"] == "Bearer t0ken"
        # In 1 MiB blocks, from the start again on the retry, up to 100%.
        assert seen == [MIB, 2 * MIB, len(sealed)] * 2

    def test_a_dropped_connection_is_retried_and_a_replay_is_recognised(self) -> None:
        with StubServer([None, (200, RECEIPT)]) as stub:
            uploaded = self.upload(stub, b"sealed")
        assert uploaded == bidding_client.Upload(RECEIPT, replayed=True, attempts=2)
        assert [h["Idempotency-Key"] for h, _ in stub.requests] == ["key-1", "key-1"]

    def test_after_four_failures_it_gives_up_naming_the_key_to_retry_with(self) -> None:
        with StubServer([UNAVAILABLE] * 4) as stub:
            with pytest.raises(ClientError, match=r"restarting \(unavailable, HTTP 503\)"):
                self.upload(stub, b"sealed")
            assert len(stub.requests) == 4
        with StubServer([None] * 4) as stub, pytest.raises(ClientError, match="key-1"):
            self.upload(stub, b"sealed")

    def test_a_refusal_is_not_retried(self) -> None:
        late = (409, {"type": "deadline_passed", "detail": "the bid deadline has passed"})
        with StubServer([late]) as stub:
            with pytest.raises(ClientError) as refused:
                self.upload(stub, b"sealed")
            assert len(stub.requests) == 1
        assert str(refused.value) == (
            "uploading the bid: the bid deadline has passed (deadline_passed, HTTP 409)"
        )

    def test_a_receipt_that_cannot_be_checked_is_still_handed_back(self) -> None:
        # The stub answers the upload but not GET /keys (501): the bid is in all the same.
        with StubServer([(201, RECEIPT)]) as stub, bidding_client.open_client(stub.url) as http:
            submission = bidding_client.submit(
                http, tender_id=TENDER_ID, token="t", sealed=io.BytesIO(b"sealed"),
                idempotency_key="k",
            )  # fmt: skip
        assert submission.receipt == RECEIPT
        assert submission.problems == [
            "not checked: fetching the platform's keys: HTTP 501 Unsupported method ('GET')"
        ]

    def test_a_server_that_is_not_there_is_one_clear_error(self) -> None:
        server = f"http://127.0.0.1:{free_port()}"
        with (
            bidding_client.open_client(server) as http,
            pytest.raises(ClientError, match=f"^cannot reach {re.escape(server)}"),
        ):
            bidding_client.fetch_keys(http)


# --- against the real app ------------------------------------------------------------------


class AppTransport(httpx.BaseTransport):
    """A blocking transport for a client in a worker thread, answered by the app on the loop."""

    def __init__(self, app: object, loop: asyncio.AbstractEventLoop) -> None:
        self.app = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()  # drains the upload's blocks, as a socket would
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        async def send() -> httpx.Response:
            response = await self.app.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(send(), self.loop).result()


@pytest.fixture
async def http(app: object) -> AsyncIterator[httpx.Client]:
    """The bidder's blocking client on the app; call it through asyncio.to_thread."""
    transport = AppTransport(app, asyncio.get_running_loop())
    with bidding_client.open_client("http://testserver", transport=transport) as http:
        yield http


class Published:
    """A tender published over the API, its opening identity, and a bidder."""

    def __init__(self, tender: dict[str, Any], identity: age.Identity, bidder: User) -> None:
        self.tender, self.identity, self.bidder = tender, identity, bidder
        self.id: str = tender["id"]


@pytest.fixture
async def published(
    client: httpx.AsyncClient, session: AsyncSession, platform_keys: PlatformKeys
) -> Published:
    officer = await create_user(session, role=Role.officer)
    tender = await create_tender(
        session,
        officer=officer,
        ceiling_price="1250000.00",
        floor_price="900000.00",
        bid_fields=FIELDS[:2],
    )
    response = await client.post(
        f"{TENDERS}/{tender.id}/publish", headers=await bearer(session, officer)
    )
    assert response.status_code == 200, response.text
    identity = opening_secrets.opening_identity(
        master=platform_keys.master, tender=await reload(session, tender)
    )
    bidder = await create_user(session, role=Role.bidder)
    return Published(response.json(), identity, bidder)


class TestAgainstTheApp:
    async def test_a_sealed_bid_with_attachments_is_stored_and_opens_to_the_zip(
        self, http: httpx.Client, published: Published, app: Any, tmp_path: Path
    ) -> None:
        form_path, drawing = tmp_path / "bid.json", tmp_path / "drawing.pdf"
        form_path.write_text(json.dumps(FORM))
        drawing.write_bytes(os.urandom(3 * MIB))

        def bid() -> bidding_client.Submission:
            sealed = bidding_client.prepare_bid(
                http, tender_id=published.id, form_path=form_path, attachments=[drawing]
            )
            with sealed:
                token = bidding_client.sign_in(
                    http, email=published.bidder.email, password=PASSWORD
                )
                return bidding_client.submit(
                    http, tender_id=published.id, token=token, sealed=sealed, idempotency_key="k1"
                )

        submission = await asyncio.to_thread(bid)
        assert submission.problems == []
        assert submission.replayed is False
        assert submission.receipt["body"]["version"] == 1
        with app.state.blobs.open(submission.receipt["body"]["sha256"]) as stored:
            opened = age.unseal_bytes(stored.read(), [published.identity])
        archive = zipfile.ZipFile(io.BytesIO(opened))
        assert archive.read("bid.json") == canonical_json(FORM)
        assert archive.read("attachments/drawing.pdf") == drawing.read_bytes()

    async def test_in_bidder_mode_the_bid_is_sealed_to_the_organization_and_the_backup(
        self,
        http: httpx.Client,
        client: httpx.AsyncClient,
        session: AsyncSession,
        platform_keys: PlatformKeys,
        app: Any,
        tmp_path: Path,
    ) -> None:
        officer = await create_user(session, role=Role.officer)
        draft = await create_tender(
            session,
            officer=officer,
            bid_fields=FIELDS[:2],
            opening_mode=OpeningMode.bidder,
            backup_decryption=True,
        )
        published = await client.post(
            f"{TENDERS}/{draft.id}/publish", headers=await bearer(session, officer)
        )
        assert published.status_code == 200, published.text
        tender_identity = opening_secrets.opening_identity(
            master=platform_keys.master, tender=await reload(session, draft)
        )
        bidder = await create_user(session, role=Role.bidder)
        token = (await bearer(session, bidder))["Authorization"].split()[1]
        own = age.Identity.generate()
        form_path = tmp_path / "bid.json"
        form_path.write_text(json.dumps(FORM))

        def bid() -> bidding_client.Submission:
            with pytest.raises(ClientError, match="register your organization's key first"):
                bidding_client.prepare_bid(
                    http, tender_id=str(draft.id), form_path=form_path, token=token
                )
            bidding_client.check_key(http, token=token, identity=own, register=True)
            with bidding_client.prepare_bid(
                http, tender_id=str(draft.id), form_path=form_path, token=token
            ) as sealed:
                return bidding_client.submit(
                    http, tender_id=str(draft.id), token=token, sealed=sealed, idempotency_key="b"
                )

        submission = await asyncio.to_thread(bid)
        assert submission.problems == []
        with app.state.blobs.open(submission.receipt["body"]["sha256"]) as stored:
            data = stored.read()
        assert age.unseal_bytes(data, [own]) == canonical_json(FORM)
        assert age.unseal_bytes(data, [tender_identity]) == canonical_json(FORM)

    async def test_a_retried_upload_is_the_same_version(
        self, http: httpx.Client, published: Published, session: AsyncSession
    ) -> None:
        token = (await bearer(session, published.bidder))["Authorization"].split()[1]
        sealed = age.seal_bytes(canonical_json(FORM), [published.identity.recipient])

        def send() -> bidding_client.Submission:
            return bidding_client.submit(
                http,
                tender_id=published.id,
                token=token,
                sealed=io.BytesIO(sealed),
                idempotency_key="same",
            )

        first, again = await asyncio.to_thread(send), await asyncio.to_thread(send)
        assert (first.replayed, again.replayed) == (False, True)
        assert again.receipt == first.receipt and again.problems == []

    @pytest.mark.parametrize(
        ("changes", "attachment", "message"),
        [
            (
                {"duration_days": 400},
                None,
                r'bid.json: .*field "duration_days" must be at most 365',
            ),
            ({"price": "1250000.01"}, None, r"bid.json: .*price 1250000.01 is above the ceiling"),
            ({"prcie": "1.00"}, None, r'bid.json: .*field "prcie" is not part of'),
            # What only the opening's reading of the ZIP knows: a name unsafe to unpack.
            ({}, "offer: final.pdf", r'would refuse this bid: entry "attachments/offer: final'),
        ],
    )
    async def test_what_the_opening_would_refuse_is_never_sealed(
        self,
        http: httpx.Client,
        published: Published,
        tmp_path: Path,
        changes: dict[str, Any],
        attachment: str | None,
        message: str,
    ) -> None:
        form_path = tmp_path / "bid.json"
        form_path.write_text(json.dumps(FORM | changes))
        attachments = []
        if attachment is not None:
            attachments.append(tmp_path / attachment)
            attachments[0].write_bytes(b"%PDF-1.7")
        with pytest.raises(ClientError, match=message):
            await asyncio.to_thread(
                bidding_client.prepare_bid,
                http,
                tender_id=published.id,
                form_path=form_path,
                attachments=attachments,
            )

    async def test_fetch_keys_gives_the_platform_signing_key(
        self, http: httpx.Client, platform_keys: PlatformKeys
    ) -> None:
        keys = await asyncio.to_thread(bidding_client.fetch_keys, http)
        assert keys == {platform_keys.signing.key_id: platform_keys.signing.public_key}

    async def test_after_the_deadline_nothing_is_sealed_and_uploads_are_refused(
        self, http: httpx.Client, session: AsyncSession, published: Published, tmp_path: Path
    ) -> None:
        officer = await create_user(session, role=Role.officer)
        late = await create_tender(
            session,
            officer=officer,
            status=TenderStatus.published,
            bid_deadline=utcnow() - timedelta(seconds=1),
        )
        form_path = tmp_path / "bid.json"
        form_path.write_text(json.dumps(FORM))
        with pytest.raises(ClientError, match=r"deadline .* has passed"):
            await asyncio.to_thread(
                bidding_client.prepare_bid, http, tender_id=str(late.id), form_path=form_path
            )
        token = (await bearer(session, published.bidder))["Authorization"].split()[1]
        sealed = io.BytesIO(age.seal_bytes(b"late", [published.identity.recipient]))
        with pytest.raises(ClientError, match=r"\(deadline_passed, HTTP 409\)"):
            await asyncio.to_thread(
                lambda: bidding_client.upload(
                    http, tender_id=str(late.id), token=token, sealed=sealed, idempotency_key="k"
                )
            )

    async def test_a_wrong_password_is_one_clear_error(
        self, http: httpx.Client, published: Published
    ) -> None:
        expected = r"^signing in: invalid email or password \(invalid_credentials, HTTP 401\)$"
        with pytest.raises(ClientError, match=expected):
            await asyncio.to_thread(
                lambda: bidding_client.sign_in(http, email=published.bidder.email, password="wrong")
            )


# --- the commands, as a bidder runs them ---------------------------------------------------


def bidding(
    *args: str, stdin: bytes = b"", cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bidding", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
    )


def error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


class TestCommandLine:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--token", "t", "--seal", "--form", "bid.json", "bid.age"], "either a sealed FILE"),
            (["--token", "t"], "either a sealed FILE"),
            (["--token", "t", "--seal"], "--seal needs --form"),
            (["--token", "t", "--attach", "x.pdf", "bid.age"], "go with --seal"),
            (["--token", "t", "--email", "e@example.com", "bid.age"], "not allowed with"),
            (["--token", "t", "--idempotency-key", "a b", "bid.age"], "printable ASCII"),
        ],
    )
    def test_a_wrong_combination_is_a_usage_error(self, args: list[str], message: str) -> None:
        result = bidding("submit", "--server", "http://x", "--tender", TENDER_ID, *args)
        assert result.returncode == 2
        assert message in error_line(result)

    def test_an_unsealed_file_is_refused_before_connecting(self, tmp_path: Path) -> None:
        plain = tmp_path / "bid.json"
        plain.write_bytes(canonical_json(FORM))
        server = f"http://127.0.0.1:{free_port()}"  # nothing listens: nothing may be sent
        result = bidding("submit", "--server", server, "--tender", TENDER_ID, "--token", "t",
                         str(plain))  # fmt: skip
        assert result.returncode == 1
        assert error_line(result) == (
            f"bidding: error: {plain}: not a sealed bid: not an age file: "
            "missing 'age-encryption.org/v1' line"
        )

    def test_a_receipt_folder_that_does_not_exist_is_refused_before_uploading(
        self, tmp_path: Path
    ) -> None:
        sealed = tmp_path / "bid.age"
        sealed.write_bytes(age.seal_bytes(b"bid", [age.Identity.generate().recipient]))
        missing = tmp_path / "receipts" / "r.json"
        result = bidding("submit", "--server", "http://127.0.0.1:9", "--tender", TENDER_ID,
                         "--token", "t", "-o", str(missing), str(sealed))  # fmt: skip
        assert result.returncode == 1
        assert error_line(result) == f"bidding: error: {missing}: its folder does not exist"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bidding serve` on a fresh data dir, with an officer and a bidder created by the CLI."""
    env = bidding_env(
        tmp_path_factory.mktemp("var"), BIDDING_DEMO="0", BIDDING_MIN_BIDDING_PERIOD_SECONDS="0"
    )
    for role in ("officer", "bidder"):
        created = subprocess.run(
            [sys.executable, "-m", "bidding", "users", "create", "--email", f"{role}@example.com",
             "--password-stdin", "--role", role, "--org-name", f"{role} org",
             "--org-code", credit_code()],
            input=f"{PASSWORD}\n".encode(), env=env, capture_output=True,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bidding", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/api/v1/health").raise_for_status()
                break
            except httpx.HTTPError:
                assert process.poll() is None, "bidding serve exited"
                assert time.monotonic() < deadline, "the server did not come up in 30 s"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def sign_in(server: str, email: str) -> str:
    response = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


class TestEndToEnd:
    def test_a_bidder_seals_submits_resubmits_and_verifies(
        self, server: str, tmp_path: Path
    ) -> None:
        officer = {"Authorization": f"Bearer {sign_in(server, 'officer@example.com')}"}
        draft = httpx.post(f"{server}{TENDERS}", json=tender_body(), headers=officer)
        assert draft.status_code == 201, draft.text
        tender = httpx.post(f"{server}{TENDERS}/{draft.json()['id']}/publish", headers=officer)
        assert tender.status_code == 200, tender.text
        tender_id, recipient = tender.json()["id"], tender.json()["opening_recipient"]

        (tmp_path / "bid.json").write_text(json.dumps(FORM))
        (tmp_path / "offer.pdf").write_bytes(os.urandom(10_000))
        submitted = bidding(
            "submit", "--server", server, "--tender", tender_id, "--email", "bidder@example.com",
            "--password-stdin", "--seal", "--form", "bid.json", "--attach", "offer.pdf",
            stdin=f"{PASSWORD}\n".encode(), cwd=tmp_path,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        assert submitted.stdout.decode().startswith("bid received: version 1, sha256 ")
        receipt_path = tmp_path / f"receipt-{tender_id}-v1.json"
        receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
        assert receipt["body"]["kind"] == "bid" and receipt["body"]["tender_id"] == tender_id

        verified = bidding("verify-receipt", str(receipt_path), "--server", server)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.decode().splitlines() == [
            f"signature: ok (key {receipt['key_id']})",
            "inclusion: not yet provable (the log is sealed at the deadline)",
        ]

        sealed = bidding("seal", "-r", recipient, "-o", "bid.age", "bid.json", cwd=tmp_path)
        assert sealed.returncode == 0, sealed.stderr
        token = sign_in(server, "bidder@example.com")
        again = bidding("submit", "--server", server, "--tender", tender_id, "--token", token,
                        "-o", "second.json", "bid.age", cwd=tmp_path)  # fmt: skip
        assert again.returncode == 0, again.stderr
        second = json.loads((tmp_path / "second.json").read_text(encoding="utf-8"))
        assert second["body"]["version"] == 2
        assert (
            second["body"]["sha256"]
            == hashlib.sha256((tmp_path / "bid.age").read_bytes()).hexdigest()
        )

        receipt["body"]["version"] = 3
        receipt_path.write_text(json.dumps(receipt), encoding="utf-8")
        forged = bidding("verify-receipt", str(receipt_path), "--server", server)
        assert forged.returncode == 1 and forged.stdout == b""
        assert error_line(forged) == (
            f"bidding: error: {receipt_path}: the signature does not match the body: the "
            "receipt was altered; leaf_hash is not the RFC 6962 leaf hash of the body"
        )

    def test_after_the_opening_verify_receipt_proves_inclusion_in_the_sealed_log(
        self, server: str, tmp_path: Path
    ) -> None:
        officer = {"Authorization": f"Bearer {sign_in(server, 'officer@example.com')}"}
        deadline = utcnow() + timedelta(seconds=6)
        body = tender_body(bid_deadline=deadline.isoformat(), min_bids=1)
        draft = httpx.post(f"{server}{TENDERS}", json=body, headers=officer)
        assert draft.status_code == 201, draft.text
        tender_id = draft.json()["id"]
        published = httpx.post(f"{server}{TENDERS}/{tender_id}/publish", headers=officer)
        assert published.status_code == 200, published.text
        (tmp_path / "bid.json").write_text(json.dumps(FORM))
        submitted = bidding(
            "submit", "--server", server, "--tender", tender_id, "--email", "bidder@example.com",
            "--password-stdin", "--seal", "--form", "bid.json", "-o", "receipt.json",
            stdin=f"{PASSWORD}\n".encode(), cwd=tmp_path,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr

        # The server opens the tender by itself at the deadline.
        events: list[dict[str, Any]] = []
        give_up = time.monotonic() + 60
        while not events or events[-1]["type"] != "opening.completed":
            assert time.monotonic() < give_up, f"the opening did not complete: {events}"
            time.sleep(0.3)
            answer = httpx.get(f"{server}{TENDERS}/{tender_id}/opening/events", headers=officer)
            events = answer.json()["events"]
        sealed_at = events[1]["data"]["tree_head"]["sealed_at"]

        verified = bidding("verify-receipt", "receipt.json", "--server", server, cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.decode().splitlines()[1] == (
            f"inclusion: ok (leaf 1 of 1, log sealed at {sealed_at})"
        )

    def test_check_key_proves_the_identity_opens_what_is_sealed_to_the_registered_key(
        self, server: str, tmp_path: Path
    ) -> None:
        made = bidding("keygen", "-o", "org.key", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        identity = age.parse_identities((tmp_path / "org.key").read_text())[0]
        token = sign_in(server, "bidder@example.com")
        check = ("check-key", "--server", server, "--token", token, "-i", "org.key")

        unregistered = bidding(*check, cwd=tmp_path)
        assert unregistered.returncode == 1
        assert "add --register" in error_line(unregistered)

        registered = bidding(*check, "--register", cwd=tmp_path)
        assert registered.returncode == 0, registered.stderr
        assert registered.stdout.decode().startswith(f"key verified: {identity.recipient} (at ")

        (tmp_path / "other.key").write_text(f"{age.Identity.generate()}\n")
        stranger = bidding(*check[:-1], "other.key", cwd=tmp_path)
        assert stranger.returncode == 1
        assert f"but the registered recipient is {identity.recipient}" in error_line(stranger)

    def test_in_bidder_mode_the_bidder_reveals_its_bid_and_the_window_closes_early(
        self, server: str, tmp_path: Path
    ) -> None:
        officer = {"Authorization": f"Bearer {sign_in(server, 'officer@example.com')}"}
        body = tender_body(
            bid_deadline=(utcnow() + timedelta(seconds=6)).isoformat(),
            min_bids=1,
            opening_mode="bidder",
            decryption_window_minutes=30,
        )
        draft = httpx.post(f"{server}{TENDERS}", json=body, headers=officer)
        assert draft.status_code == 201, draft.text
        tender_id = draft.json()["id"]
        assert httpx.post(f"{server}{TENDERS}/{tender_id}/publish", headers=officer).is_success
        assert bidding("keygen", "-o", "org.key", cwd=tmp_path).returncode == 0
        token = sign_in(server, "bidder@example.com")
        account = ("--server", server, "--token", token)
        registered = bidding("check-key", *account, "-i", "org.key", "--register", cwd=tmp_path)
        assert registered.returncode == 0, registered.stderr
        (tmp_path / "bid.json").write_text(json.dumps(FORM))
        submitted = bidding("submit", *account, "--tender", tender_id, "--seal",
                            "--form", "bid.json", "-o", "receipt.json", cwd=tmp_path)  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr

        def events_until(kind: str) -> list[dict[str, Any]]:
            give_up = time.monotonic() + 60
            while True:
                answer = httpx.get(f"{server}{TENDERS}/{tender_id}/opening/events", headers=officer)
                events: list[dict[str, Any]] = answer.json()["events"]
                if any(event["type"] == kind for event in events):
                    return events
                assert time.monotonic() < give_up, f"no {kind}: {events}"
                time.sleep(0.3)

        events_until("decryption.window_opened")
        reveal = ("reveal", *account, "--tender", tender_id, "-i", "org.key")
        revealed = bidding(*reveal, "--receipt", "receipt.json", cwd=tmp_path)
        assert revealed.returncode == 0, revealed.stderr
        assert revealed.stdout.decode().startswith(f"bid opened: price {FORM['price']} (event ")
        # Every bid is open: the window closes now, not in 30 minutes.
        events = events_until("opening.completed")
        kinds = [event["type"] for event in events]
        assert kinds[kinds.index("bid.decrypted") + 1] == "decryption.window_closed"
        again = bidding(*reveal, "--receipt", "receipt.json", cwd=tmp_path)
        assert again.returncode == 1
        assert "nothing to reveal" in error_line(again)


class TestReceiptFileNames:
    def test_a_withdrawal_is_not_saved_over_the_receipt_of_its_bid(self) -> None:
        tender = "0b7e3c1e-5d4c-4f3b-9a59-2f0c7b1d9e01"
        bid = {"body": {"kind": "bid", "version": 2}}
        withdrawal = {"body": {"kind": "withdrawal", "version": 2}}
        assert bidding_client.receipt_filename(tender, bid) == f"receipt-{tender}-v2.json"
        assert (
            bidding_client.receipt_filename(tender, withdrawal)
            == f"receipt-{tender}-v2-withdrawal.json"
        )
        assert bidding_client.receipt_filename(tender, {"body": "?"}) == f"receipt-{tender}.json"
