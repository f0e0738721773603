"""A bid's receipt pins its age header (`header_sha256`), so that the bidder's client can tell
its own header from another bid's when it reveals a file key (README.md, "bidding reveal")."""

import hashlib
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import client as bidding_client
from bidding.auth.models import Role
from bidding.crypto import age
from bidding.crypto.receipts import make_receipt, receipt_problems
from bidding.crypto.signing import SigningKey
from bidding.tenders import uploads
from tests.factories import bearer, create_user
from tests.support.bids import keys, open_tender, submit

FORM = b'{"price": "1000000.00"}'


def age_cli() -> str:
    path = shutil.which("age")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the age command is required under CI (apt-get install age)")
        pytest.skip("the age command is not installed")
    return path


def header_of(sealed: bytes) -> bytes:
    """The age header as the file starts, found by hand: through the newline of the MAC line."""
    mac_line = sealed.index(b"\n--- ") + 1
    return sealed[: sealed.index(b"\n", mac_line) + 1]


def sealed_by(sealer: str, *recipients: age.Recipient) -> bytes:
    if sealer == "bidding":
        return age.seal_bytes(FORM, list(recipients))
    arguments = [part for r in recipients for part in ("-r", str(r))]
    return subprocess.run(
        [age_cli(), *arguments], input=FORM, capture_output=True, check=True
    ).stdout


class TestReceiptPinsTheHeader:
    @pytest.mark.parametrize("sealer", [pytest.param("age", marks=pytest.mark.process), "bidding"])
    @pytest.mark.parametrize("count", [1, 2])
    async def test_the_receipt_names_the_sha256_of_the_header_that_was_sent(
        self, client: httpx.AsyncClient, session: AsyncSession, sealer: str, count: int
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        recipients = [age.Identity.generate().recipient for _ in range(count)]
        body = sealed_by(sealer, *recipients)
        response = await submit(client, tender, await bearer(session, bidder), body)
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt_problems(receipt, await keys(client)) == []
        header = header_of(body)
        assert header.count(b"\n-> X25519 ") == count
        assert receipt["body"]["header_sha256"] == hashlib.sha256(header).hexdigest()
        # The header's digest is not the file's: it names the header alone.
        assert receipt["body"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert receipt["body"]["header_sha256"] != receipt["body"]["sha256"]

    async def test_a_retry_answers_the_same_pin_a_new_version_its_own_a_withdrawal_none(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        headers = await bearer(session, bidder)
        own = age.Identity.generate().recipient
        first, second = sealed_by("bidding", own), sealed_by("bidding", own)
        one = (await submit(client, tender, headers, first, **{"Idempotency-Key": "a"})).json()
        again = (await submit(client, tender, headers, first, **{"Idempotency-Key": "a"})).json()
        two = (await submit(client, tender, headers, second)).json()
        assert again == one
        assert one["body"]["header_sha256"] == hashlib.sha256(header_of(first)).hexdigest()
        assert two["body"]["header_sha256"] == hashlib.sha256(header_of(second)).hexdigest()
        withdrawal = (await client.delete(f"/api/v1/tenders/{tender.id}/bids/mine",
                                          headers=headers)).json()  # fmt: skip
        # A withdrawal reveals nothing: it pins no header, and is a genuine receipt all the same.
        assert withdrawal["body"]["kind"] == "withdrawal"
        assert "header_sha256" not in withdrawal["body"]
        assert receipt_problems(withdrawal, await keys(client)) == []

    @pytest.mark.parametrize("chunk", [1, 7, 4096])
    async def test_a_header_that_arrives_in_pieces_is_hashed_whole(
        self, tmp_path: Path, chunk: int
    ) -> None:
        body = sealed_by("bidding", *(age.Identity.generate().recipient for _ in range(3)))

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(body), chunk):
                yield body[at : at + chunk]

        staged = await uploads.receive(pieces(), staging=tmp_path, max_bytes=1 << 20)
        assert staged.header_sha256 == hashlib.sha256(header_of(body)).hexdigest()
        document = await uploads.receive(
            pieces(), staging=tmp_path, max_bytes=1 << 20, sealed=False
        )
        assert document.header_sha256 is None


class TestTheClientChecksThePin:
    def test_a_receipt_that_pins_another_header_than_the_one_sent_is_caught(self) -> None:
        key = SigningKey.generate()
        published = {key.key_id: key.public_key}
        own = age.Identity.generate().recipient
        sent, other = sealed_by("bidding", own), sealed_by("bidding", own)
        pins = {
            name: hashlib.sha256(header_of(data)).hexdigest()
            for name, data in (("sent", sent), ("other", other))
        }
        sha256 = hashlib.sha256(sent).hexdigest()
        tender_id = "8d0c3f4e-2b1a-4c5d-9e8f-7a6b5c4d3e2f"
        pinned = bidding_client.sealed_header_sha256(io.BytesIO(sent))
        assert pinned == pins["sent"]

        def problems(header_sha256: str) -> list[str]:
            body = {"kind": "bid", "tender_id": tender_id, "version": 1, "sha256": sha256,
                    "size": len(sent), "header_sha256": header_sha256}  # fmt: skip
            return bidding_client.check_receipt(
                make_receipt(body, key), published, tender_id=tender_id, sha256=sha256,
                size=len(sent), header_sha256=pinned,
            )  # fmt: skip

        assert problems(pins["sent"]) == []
        assert problems(pins["other"]) == [
            f"the receipt says header_sha256 {pins['other']!r}, not {pins['sent']!r}"
        ]
