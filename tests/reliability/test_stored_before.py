"""Data accepted before today's checks existed: a bid whose stored header is over the limit (or
whose blob is gone) and a bidder key on a low-order point. Reading them is a clear 409, never a
500, and nothing else of the bidder's changes."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import BidderKey, Role
from bidding.crypto import age, bech32
from bidding.tenders.blobs import FilesystemBlobStore
from tests.factories import bearer, create_user
from tests.support.bids import open_tender, sealed, submit
from tests.tenders.conftest import TENDERS


def oversized_header() -> bytes:
    """An age file whose header is 4 KiB over the limit: a stanza body too long for today."""
    recipient = age.Identity.generate().recipient
    head, rest = age.seal_bytes(b'{"price": "1.00"}', [recipient]).split(b"\n---", 1)
    body = b"A" * 64 + b"\n"
    padding = b"-> padding\n" + body * ((age.MAX_HEADER_BYTES + 4096) // len(body))
    return head + b"\n" + padding + b"---" + rest


class TestStoredBeforeTheChecks:
    @pytest.mark.parametrize("damage", ["oversized header", "blob gone"])
    async def test_a_bid_whose_header_cannot_be_read_is_409_not_500(
        self, client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, damage: str
    ) -> None:
        tender = await open_tender(session)
        bidder = await create_user(session, role=Role.bidder)
        headers = await bearer(session, bidder)
        handed_in = await submit(client, tender, headers, sealed())
        assert handed_in.status_code == 201, handed_in.text
        blobs: FilesystemBlobStore = app.state.blobs
        stored: Path = blobs.path(handed_in.json()["body"]["sha256"])
        if damage == "blob gone":
            stored.unlink()
        else:
            stored.write_bytes(oversized_header())

        answer = await client.get(f"{TENDERS}/{tender.id}/bids/mine/header", headers=headers)

        assert answer.status_code == 409, answer.text
        assert answer.json()["type"] == "bid_unreadable"
        mine = await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)
        assert mine.json()["receipts"] == [handed_in.json()]

    async def test_a_low_order_key_registered_before_is_409_at_the_key_check(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        bidder = await create_user(session, role=Role.bidder)
        headers = await bearer(session, bidder)
        assert bidder.organization_id is not None
        session.add(
            BidderKey(
                organization_id=bidder.organization_id,
                recipient=bech32.encode("age", bytes(32)),
                registered_by_id=bidder.id,
            )
        )
        await session.flush()

        asked = await client.post("/api/v1/me/keys/challenge", headers=headers)

        assert asked.status_code == 409, asked.text
        assert asked.json()["type"] == "key_unusable"
        # A new key registered then is checked as any other.
        fresh = age.Identity.generate().recipient
        registered = await client.put(
            "/api/v1/me/keys", json={"recipient": str(fresh)}, headers=headers
        )
        assert registered.status_code == 200, registered.text
        assert (await client.post("/api/v1/me/keys/challenge", headers=headers)).status_code == 200
