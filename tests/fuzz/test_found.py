"""What fuzzing found, seen where a user meets it: each input that crashed a parser (found by
the fuzz targets, or by reading the parsers they drive) now gets the platform's clear answer
instead of an exception."""

import hashlib
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Role
from bidding.crypto import age, bech32
from bidding.opening import decryption
from bidding.rules.terms import Terms
from bidding.tenders.blobs import FilesystemBlobStore
from tests.factories import bearer, create_user
from tests.tenders.conftest import TENDERS, count_tenders, tender_body

# Aware times whose UTC instant falls outside the years 1 to 9999 that datetime holds.
EDGES_OF_TIME = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


class TestTenderDeadlineBeyondTime:
    @pytest.mark.parametrize("deadline", EDGES_OF_TIME)
    async def test_a_new_tender_is_refused_with_422_naming_the_deadline(
        self, client: httpx.AsyncClient, session: AsyncSession, deadline: str
    ) -> None:
        headers = await bearer(session, await create_user(session, role=Role.officer))
        response = await client.post(
            TENDERS, json=tender_body(bid_deadline=deadline), headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "validation_error"
        assert [e["field"] for e in response.json()["errors"]] == ["body.bid_deadline"]
        assert await count_tenders(session) == 0

    @pytest.mark.parametrize("deadline", EDGES_OF_TIME)
    async def test_an_edit_is_refused_with_422_and_the_draft_keeps_its_deadline(
        self, client: httpx.AsyncClient, session: AsyncSession, deadline: str
    ) -> None:
        headers = await bearer(session, await create_user(session, role=Role.officer))
        created = await client.post(TENDERS, json=tender_body(), headers=headers)
        assert created.status_code == 201, created.text
        url = f"{TENDERS}/{created.json()['id']}"
        response = await client.patch(url, json={"bid_deadline": deadline}, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "validation_error"
        kept = await client.get(url, headers=headers)
        assert kept.json()["bid_deadline"] == created.json()["bid_deadline"]


class TestBidFormNumberBeyondDecimal:
    def test_the_opening_rejects_the_bid_as_form_invalid_and_goes_on(self, tmp_path: Path) -> None:
        # A bid sealed to the tender whose form holds 1E6666666666666666666666: decimal's
        # InvalidOperation used to escape the reader and stop the opening at this bid.
        identity = age.Identity.generate()
        plaintext = b'{"price": "1000.00", "duration_days": 1E6666666666666666666666}'
        sealed = age.seal_bytes(plaintext, [identity.recipient])
        digest = hashlib.sha256(sealed).hexdigest()
        staged = tmp_path / "staged"
        staged.write_bytes(sealed)
        blobs = FilesystemBlobStore(tmp_path / "blobs")
        blobs.put(staged, digest)
        terms = Terms(
            bid_fields=[{"name": "duration_days", "type": "integer", "required": True}],
            ceiling=Decimal("5000.00"),
            floor=None,
            scoring={"method": "lowest_price"},
        )
        outcome = decryption.open_bid(
            blobs=blobs, sha256=digest, size=len(sealed), identities=[identity], terms=terms
        )
        assert outcome == decryption.Rejected(
            "form_invalid", "the bid form holds a number too long to read"
        )


class TestReceiptFileNestedTooDeep:
    def test_verify_receipt_says_it_is_not_a_receipt_instead_of_a_traceback(
        self, tmp_path: Path
    ) -> None:
        # json raised RecursionError, which load_receipt let through to a Python traceback.
        path = tmp_path / "receipt.json"
        path.write_bytes(b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        server = "http://127.0.0.1:9"  # never reached: the file is read first
        result = subprocess.run(
            [sys.executable, "-m", "bidding", "verify-receipt", str(path), "--server", server],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        assert result.stderr == f"bidding: error: {path}: not a JSON receipt (nested too deeply)\n"


class TestLowOrderRecipient:
    async def test_a_bidder_cannot_register_it_and_the_key_check_still_works(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # It was registered, and the key check then sealed to it: cryptography's ValueError on
        # the all-zero secret made POST /me/keys/challenge answer 500.
        keys = "/api/v1/me/keys"
        headers = await bearer(session, await create_user(session, role=Role.bidder))
        low_order = bech32.encode("age", bytes(32))
        answer = await client.put(keys, json={"recipient": low_order}, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"] == "invalid_recipient"
        assert "low-order point" in answer.json()["detail"]
        assert (await client.get(keys, headers=headers)).json()["current"] is None
        asked = await client.post(f"{keys}/challenge", headers=headers)
        assert asked.status_code == 409 and asked.json()["type"] == "no_key"
