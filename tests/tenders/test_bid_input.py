"""Bad input to bid submission: what is refused and how, that nothing accepted is lost or
altered by it, and that no answer tells anyone whether somebody else bid."""

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from bidding.auth.models import Role, User
from bidding.crypto import age
from bidding.db import utcnow
from bidding.settings import Settings
from bidding.tenders.models import Bid, LogEntry, Tender, TenderStatus
from tests.factories import bearer, create_user
from tests.support.bids import OCTETS, open_tender, padded_header, post_scope, sealed, submit
from tests.tenders.conftest import TENDERS, Cast, create_tender, reload

# Small, so that the limit is cheap to cross; honest bids here are a few hundred bytes.
LIMIT = 256 * 1024


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, demo=False, max_bid_bytes=LIMIT)


# --- helpers -------------------------------------------------------------------------------


def header_of(file: bytes) -> bytes:
    """The age header at the start of a sealed file."""
    length = age.header_length(file)
    assert length is not None
    return file[:length]


def sealed_of_size(size: int) -> bytes:
    """A real age header with random bytes after it: what the server sees of a big bid."""
    header = header_of(sealed())
    return header + os.urandom(size - len(header))


def scrypt_only() -> bytes:
    """A passphrase-sealed file: a valid age v1 header, but no X25519 stanza."""
    salt = age.b64encode(os.urandom(16))
    stanza = age.Stanza("scrypt", (salt, "18"), os.urandom(32))
    return age.encode_header([stanza], os.urandom(16)) + os.urandom(age.NONCE_SIZE + 64)


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def stored(settings: Settings) -> list[Path]:
    """Every file the uploads left behind: staged or in the blob store."""
    return files_under(settings.data_dir / "staging") + files_under(settings.data_dir / "blobs")


async def bid_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Bid)) or 0


async def bidder_headers(session: AsyncSession) -> dict[str, str]:
    return await bearer(session, await create_user(session, role=Role.bidder))


async def log_state(session: AsyncSession, tender: Tender) -> list[tuple[Any, ...]]:
    """Every bid version and every log leaf of the tender, as stored now."""
    bids = await session.execute(
        select(Bid.id, Bid.version, Bid.status, Bid.sha256, Bid.size)
        .where(Bid.tender_id == tender.id)
        .order_by(Bid.bidder_id, Bid.version)
        .execution_options(populate_existing=True)
    )
    leaves = await session.execute(
        select(LogEntry.position, LogEntry.body, LogEntry.signature)
        .where(LogEntry.tender_id == tender.id)
        .order_by(LogEntry.position)
    )
    return [tuple(row) for row in bids] + [tuple(row) for row in leaves]


def without_clock(document: Any) -> Any:
    """A response body without the server's clock, which changes by itself."""
    if isinstance(document, dict):
        return {k: without_clock(v) for k, v in document.items() if k != "server_time"}
    if isinstance(document, list):
        return [without_clock(item) for item in document]
    return document


async def in_pieces(body: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


# --- what is not a sealed bid --------------------------------------------------------------


NOT_SEALED: dict[str, Callable[[], bytes]] = {
    "plaintext bid form": lambda: b'{"price": "1000000.00", "duration_days": 180}',
    "plaintext zip": lambda: b"PK\x03\x04" + os.urandom(200),
    "empty body": lambda: b"",
    "truncated after its header": lambda: header_of(sealed()),
    "one byte short of the smallest age file": lambda: sealed(b"")[:-1],
    "header cut before its MAC line": lambda: header_of(sealed())[:-50],
    "only a passphrase (scrypt) stanza": scrypt_only,
    "another age version": lambda: sealed().replace(
        b"age-encryption.org/v1", b"age-encryption.org/v2"
    ),
    "a header longer than age allows": lambda: (
        age.VERSION_LINE + (b"-> X25519 " + b"A" * 43 + b"\n" + b"B" * 43 + b"\n") * 2000
    ),
    "a header with no stanza": lambda: age.VERSION_LINE + b"--- " + b"A" * 43 + b"\n" + bytes(32),
}


class TestNotSealed:
    async def test_what_is_not_a_sealed_age_file_is_refused_with_422_and_leaves_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        for case, make in NOT_SEALED.items():
            response = await submit(client, tender, headers, make())
            assert response.status_code == 422, (case, response.text)
            assert response.json()["type"] == "not_sealed", case
            assert "bids must be sealed" in response.json()["detail"], case
        assert await bid_count(session) == 0
        assert (await reload(session, tender)).log_size == 0
        assert stored(settings) == []

    async def test_a_plaintext_stream_is_refused_without_reading_it_all(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        pulled = 0

        async def endless_plaintext() -> AsyncIterator[bytes]:
            nonlocal pulled
            while pulled < 100 * LIMIT:
                pulled += 4096
                yield b'{"price": "1.00"}'.ljust(4096)

        response = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=endless_plaintext(),
            headers={**OCTETS, **await bidder_headers(session)},
        )
        assert response.status_code == 422
        assert pulled <= 2 * 4096

    async def test_the_smallest_age_file_is_accepted(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # An empty plaintext sealed: header, nonce and one empty final chunk; one byte
        # less is refused (NOT_SEALED above).
        tender = await open_tender(session)
        body = sealed(b"")
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 201, response.text
        assert response.json()["body"]["size"] == len(body)

    async def test_a_file_sealed_to_any_x25519_key_is_accepted(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # The server cannot tell which key a bid is sealed to, and must not try: neither the
        # tender's recipient nor the bidder's own is required.
        tender = await open_tender(
            session, opening_recipient=str(age.Identity.generate().recipient)
        )
        strangers = [age.Identity.generate().recipient for _ in range(3)]
        body = age.seal_bytes(b'{"price": "1.00"}', strangers)
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 201, response.text

    async def test_a_malformed_x25519_stanza_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        broken = age.Stanza("X25519", (), b"")
        body = age.encode_header([broken], os.urandom(16)) + os.urandom(age.NONCE_SIZE + 64)
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 422


def with_stanzas(*stanzas: age.Stanza, header_length: int | None = None) -> bytes:
    """A file whose header holds these stanzas (padded to header_length if given) and is
    well formed, MAC included, followed by a payload-sized tail."""
    file_key = os.urandom(age.FILE_KEY_SIZE)
    if header_length is None:
        header = age.encode_header(list(stanzas), file_key)
    else:
        header = padded_header(list(stanzas), file_key, header_length)
    return header + os.urandom(age.NONCE_SIZE + 64)


def x25519_stanza() -> age.Stanza:
    return age.Identity.generate().recipient.wrap(os.urandom(age.FILE_KEY_SIZE))


async def log_rows(session: AsyncSession, tender: Tender) -> int:
    count = select(func.count()).select_from(LogEntry).where(LogEntry.tender_id == tender.id)
    return await session.scalar(count) or 0


class TestHeadersTheOpeningCannotRead:
    """A header that is well formed but that the opening (or the bidder's header download)
    would refuse is refused at upload, when the bidder can still seal again."""

    async def test_a_header_over_the_size_limit_is_refused_whole_or_in_pieces(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        body = with_stanzas(x25519_stanza(), header_length=age.MAX_HEADER_BYTES + 1)
        for piece in (None, 16 * 1024, 1024):
            content = body if piece is None else in_pieces(body, piece)
            response = await client.post(
                f"{TENDERS}/{tender.id}/bids", content=content, headers={**OCTETS, **headers}
            )
            assert response.status_code == 422, (piece, response.text)
            assert response.json()["type"] == "not_sealed", piece
            assert "header larger" in response.json()["detail"], piece
        assert await bid_count(session) == 0
        assert await log_rows(session, tender) == 0
        assert (await reload(session, tender)).log_size == 0
        assert stored(settings) == []

    async def test_a_header_of_exactly_the_size_limit_is_accepted_and_served_back(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        body = with_stanzas(x25519_stanza(), header_length=age.MAX_HEADER_BYTES)
        response = await submit(client, tender, headers, body)
        assert response.status_code == 201, response.text
        served = await client.get(f"{TENDERS}/{tender.id}/bids/mine/header", headers=headers)
        assert served.status_code == 200, served.text
        assert base64.b64decode(served.json()["header"]) == body[: age.MAX_HEADER_BYTES]

    @pytest.mark.parametrize(
        "stanzas",
        [
            pytest.param(
                lambda: [
                    age.Stanza("scrypt", (age.b64encode(os.urandom(16)), "18"), os.urandom(32)),
                    x25519_stanza(),
                ],
                id="scrypt beside X25519",
            ),
            pytest.param(
                lambda: [
                    age.Stanza("X25519", (age.b64encode(bytes(32)),), os.urandom(32)),
                    x25519_stanza(),
                ],
                id="X25519 share on a low-order point",
            ),
        ],
    )
    async def test_stanzas_no_identity_could_open_are_refused(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        settings: Settings,
        stanzas: Callable[[], list[age.Stanza]],
    ) -> None:
        # age refuses the whole file for either, whatever the other stanzas: the opening
        # would reject the bid as decrypt_failed, too late for the bidder to seal it again.
        tender = await open_tender(session)
        body = with_stanzas(*stanzas())
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "not_sealed"
        assert await bid_count(session) == 0
        assert await log_rows(session, tender) == 0
        assert stored(settings) == []


# --- media type and length -----------------------------------------------------------------


class TestMediaType:
    async def test_anything_but_octet_stream_is_415(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        url = f"{TENDERS}/{tender.id}/bids"
        for content_type in (None, "text/plain", "application/json", "multipart/form-data; b=x"):
            headers = await bidder_headers(session)
            if content_type is not None:
                headers["Content-Type"] = content_type
            response = await client.post(url, content=sealed(), headers=headers)
            assert response.status_code == 415, content_type
            assert response.json()["type"] == "unsupported_media_type"
        assert await bid_count(session) == 0
        assert stored(settings) == []

    async def test_octet_stream_with_parameters_or_capitals_is_accepted(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        url = f"{TENDERS}/{tender.id}/bids"
        for content_type in (
            "application/octet-stream; charset=binary",
            "Application/Octet-Stream",
        ):
            headers = {**await bidder_headers(session), "Content-Type": content_type}
            response = await client.post(url, content=sealed(), headers=headers)
            assert response.status_code == 201, (content_type, response.text)


class TestSizeLimit:
    async def test_a_bid_of_exactly_the_limit_is_accepted(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        body = sealed_of_size(LIMIT)
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 201, response.text
        assert response.json()["body"]["size"] == LIMIT

    async def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        pulled = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal pulled
            for piece in (header_of(sealed()), bytes(LIMIT)):
                pulled += len(piece)
                yield piece

        response = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=body(),
            headers={**OCTETS, **await bidder_headers(session), "Content-Length": str(LIMIT + 1)},
        )
        assert response.status_code == 413
        assert response.json() == {
            "type": "payload_too_large",
            "detail": f"a sealed bid may be at most {LIMIT} bytes",
            "limit": LIMIT,
        }
        assert pulled == 0
        assert await bid_count(session) == 0

    async def test_a_chunked_body_is_413_as_soon_as_it_passes_the_limit(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        piece = 16 * 1024
        pulled = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal pulled
            async for chunk in in_pieces(sealed_of_size(20 * LIMIT), piece):
                pulled += len(chunk)
                yield chunk

        response = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=body(),
            headers={**OCTETS, **await bidder_headers(session)},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["type"] == "payload_too_large"
        assert LIMIT < pulled <= LIMIT + piece
        assert await bid_count(session) == 0
        assert stored(settings) == []

    async def test_a_body_longer_than_its_declared_length_is_cut_off_at_the_limit(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        # A front end that does not hold the client to its Content-Length passes the lie on;
        # the limit is enforced on the bytes that arrive, not on the ones announced.
        tender = await open_tender(session)
        response = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=in_pieces(sealed_of_size(3 * LIMIT)),
            headers={**OCTETS, **await bidder_headers(session), "Content-Length": "1000"},
        )
        assert response.status_code == 413
        assert await bid_count(session) == 0
        assert stored(settings) == []

    async def test_a_content_length_that_is_no_length_is_400(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        for declared in ("-1", "abc", "1.5", "0x10", "1e3", " ", "1, 2", "+12"):
            headers = {**OCTETS, **await bidder_headers(session), "Content-Length": declared}
            response = await client.post(
                f"{TENDERS}/{tender.id}/bids", content=sealed(), headers=headers
            )
            assert response.status_code == 400, declared
            assert response.json()["type"] == "bad_length"
        assert await bid_count(session) == 0

    async def test_a_content_length_of_a_superscript_digit_is_400(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers: dict[str, Any] = {**OCTETS, **await bidder_headers(session)}
        headers["Content-Length"] = b"\xb2"
        response = await client.post(
            f"{TENDERS}/{tender.id}/bids", content=sealed(), headers=headers
        )
        assert response.status_code == 400


# --- the deadline, the tender's state, the caller's role -----------------------------------


class TestDeadline:
    async def test_a_deadline_that_passes_during_the_upload_refuses_the_bid(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        deadline = utcnow() + timedelta(seconds=1)
        tender = await open_tender(session, bid_deadline=deadline)
        body = sealed()
        started_at = []

        async def slow_upload() -> AsyncIterator[bytes]:
            started_at.append(utcnow())
            yield body[:100]
            await asyncio.sleep((deadline - utcnow()).total_seconds() + 0.1)
            yield body[100:]

        response = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=slow_upload(),
            headers={**OCTETS, **await bidder_headers(session)},
        )
        assert started_at[0] < deadline, "the upload must start before the deadline"
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "deadline_passed"
        assert await bid_count(session) == 0
        assert (await reload(session, tender)).log_size == 0
        assert stored(settings) == []

    async def test_a_bid_cannot_be_withdrawn_after_the_deadline(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        assert (await submit(client, tender, headers, sealed())).status_code == 201
        tender.bid_deadline = utcnow() - timedelta(seconds=1)
        await session.flush()
        response = await client.delete(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)
        assert response.status_code == 409
        assert response.json()["type"] == "deadline_passed"
        mine = (await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)).json()
        assert mine["bid"]["status"] == "active"
        assert len(mine["receipts"]) == 1


CLOSED = [TenderStatus.cancelled, TenderStatus.opening, TenderStatus.opened, TenderStatus.failed]


class TestTenderState:
    async def test_a_tender_not_taking_bids_refuses_submission_and_withdrawal(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        officer = await create_user(session, role=Role.officer)
        headers = await bidder_headers(session)
        for status in CLOSED:
            # A cancelled tender stays public when it had been published.
            tender = await create_tender(
                session, officer=officer, status=status, published_at=utcnow()
            )
            for response in (
                await submit(client, tender, headers, sealed()),
                await client.delete(f"{TENDERS}/{tender.id}/bids/mine", headers=headers),
            ):
                assert response.status_code == 409, (status, response.text)
                assert response.json()["type"] == "tender_not_open"
                assert status.value in response.json()["detail"]
        assert await bid_count(session) == 0
        assert stored(settings) == []

    async def test_a_draft_is_not_found_by_bidders(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        officer = await create_user(session, role=Role.officer)
        tender = await create_tender(session, officer=officer, status=TenderStatus.draft)
        headers = await bidder_headers(session)
        url = f"{TENDERS}/{tender.id}/bids"
        for response in (
            await submit(client, tender, headers, sealed()),
            await client.get(f"{url}/mine", headers=headers),
            await client.delete(f"{url}/mine", headers=headers),
        ):
            assert response.status_code == 404
            assert response.json()["type"] == "not_found"
        assert await bid_count(session) == 0
        assert stored(settings) == []

    async def test_an_unknown_tender_is_not_found(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        response = await client.post(
            f"{TENDERS}/00000000-0000-4000-8000-000000000000/bids",
            content=sealed(),
            headers={**OCTETS, **await bidder_headers(session)},
        )
        assert response.status_code == 404


class TestRoles:
    async def test_only_bidders_submit_withdraw_or_read_bids(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        url = f"{TENDERS}/{tender.id}/bids"
        expected = {"author": 403, "colleague": 403, "supervisor": 403, "other_officer": 403,
                    "other_supervisor": 403, "admin": 403, "anonymous": 401}  # fmt: skip
        for who, status in expected.items():
            headers = cast[who].headers
            for response in (
                await submit(client, tender, headers, sealed()),
                await client.get(f"{url}/mine", headers=headers),
                await client.delete(f"{url}/mine", headers=headers),
            ):
                assert response.status_code == status, (who, response.text)
        assert await bid_count(session) == 0
        assert (await reload(session, tender)).log_size == 0
        assert stored(settings) == []

    async def test_an_invalid_token_is_401(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        response = await submit(client, tender, {"Authorization": "Bearer nope"}, sealed())
        assert response.status_code == 401
        assert await bid_count(session) == 0

    async def test_a_bidder_without_an_organization_is_403(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        bidder: User = await create_user(session, role=Role.bidder)
        bidder.organization_id = None
        await session.flush()
        response = await submit(client, tender, await bearer(session, bidder), sealed())
        assert response.status_code == 403
        assert await bid_count(session) == 0


# --- idempotency, withdrawal: nothing accepted is lost -------------------------------------


class TestIdempotencyKey:
    async def test_a_key_replayed_with_another_body_is_409_and_changes_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        headers = {**await bidder_headers(session), "Idempotency-Key": "bid-2026-001"}
        first = await submit(client, tender, headers, sealed())
        assert first.status_code == 201
        before = await log_state(session, tender)
        blobs = stored(settings)
        response = await submit(client, tender, headers, sealed())
        assert response.status_code == 409
        assert response.json()["type"] == "idempotency_key_reused"
        assert await log_state(session, tender) == before
        assert stored(settings) == blobs
        mine = (await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)).json()
        assert mine["receipts"] == [first.json()]

    async def test_a_key_is_the_bidders_own(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # Another bidder's use of the same key is neither a conflict nor a replay: either
        # would tell it that somebody bid.
        tender = await open_tender(session)
        key = {"Idempotency-Key": "retry-1"}
        first = await submit(client, tender, {**await bidder_headers(session), **key}, sealed())
        other = await submit(client, tender, {**await bidder_headers(session), **key}, sealed())
        assert (first.status_code, other.status_code) == (201, 201)
        assert first.json()["body"]["bidder_id"] != other.json()["body"]["bidder_id"]

    async def test_a_key_whose_upload_failed_can_be_retried(
        self, app: FastAPI, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # The retry an Idempotency-Key exists for: the first attempt never arrived whole.
        tender = await open_tender(session)
        headers = {**await bidder_headers(session), "Idempotency-Key": "bid-after-a-drop"}
        body = sealed()
        url = f"{TENDERS}/{tender.id}/bids"
        await post_then_vanish(app, url, {**OCTETS, **headers}, [body[:100]])
        assert (await submit(client, tender, headers, header_of(body))).status_code == 422
        response = await submit(client, tender, headers, body)
        assert response.status_code == 201, response.text
        assert response.json()["body"]["version"] == 1

    async def test_a_late_retry_of_the_first_upload_does_not_undo_the_second(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        first_body = sealed()
        first = await submit(client, tender, {**headers, "Idempotency-Key": "one"}, first_body)
        second = await submit(client, tender, {**headers, "Idempotency-Key": "two"}, sealed())
        retry = await submit(client, tender, {**headers, "Idempotency-Key": "one"}, first_body)
        assert (first.status_code, second.status_code, retry.status_code) == (201, 201, 200)
        assert retry.json() == first.json()
        mine = (await client.get(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)).json()
        assert mine["bid"]["version"] == 2
        assert mine["receipts"] == [first.json(), second.json()]

    async def test_a_malformed_key_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        for key in ("", "has space", "é", "x" * 129):
            headers: dict[str, Any] = {**await bidder_headers(session)}
            headers["Idempotency-Key"] = key.encode("utf-8")
            response = await submit(client, tender, headers, sealed())
            assert response.status_code == 422, key
            assert response.json()["type"] == "validation_error"
        assert await bid_count(session) == 0


BAD_RETRIES: dict[str, dict[str, Any]] = {
    "plaintext": {"content": b'{"price": "1.00"}'},
    "header only": {"content": header_of(sealed())},
    "scrypt only": {"content": scrypt_only()},
    "oversized": {"content": sealed_of_size(LIMIT + 1)},
    "oversized, chunked": {"content": "chunked"},
    "wrong media type": {"content": sealed(), "headers": {"Content-Type": "text/plain"}},
    "bad length": {"content": sealed(), "headers": {"Content-Length": "-5"}},
}


class TestNothingAcceptedIsLost:
    async def test_a_refused_upload_leaves_the_earlier_bid_as_it_was(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        accepted = sealed()
        assert (await submit(client, tender, headers, accepted)).status_code == 201
        url = f"{TENDERS}/{tender.id}/bids"
        mine = (await client.get(f"{url}/mine", headers=headers)).json()
        before = await log_state(session, tender)
        blobs = stored(settings)

        for case, bad in BAD_RETRIES.items():
            content: Any = bad["content"]
            if content == "chunked":
                content = in_pieces(sealed_of_size(2 * LIMIT))
            response = await client.post(
                url, content=content, headers={**OCTETS, **headers, **bad.get("headers", {})}
            )
            assert 400 <= response.status_code < 500, case
            assert (await client.get(f"{url}/mine", headers=headers)).json() == mine, case
            assert await log_state(session, tender) == before, case
            assert stored(settings) == blobs, case
        (blob,) = files_under(settings.data_dir / "blobs")
        assert blob.read_bytes() == accepted


class TestWithdrawal:
    async def test_withdrawing_without_a_bid_is_409_and_takes_no_log_position(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        someone, nobody = await bidder_headers(session), await bidder_headers(session)
        url = f"{TENDERS}/{tender.id}/bids"
        assert (await submit(client, tender, someone, sealed())).status_code == 201
        response = await client.delete(f"{url}/mine", headers=nobody)
        assert response.status_code == 409
        assert response.json()["type"] == "no_bid"
        assert (await submit(client, tender, someone, sealed())).status_code == 201
        positions = await session.scalars(
            select(LogEntry.position).where(LogEntry.tender_id == tender.id).order_by("position")
        )
        assert positions.all() == [0, 1]
        assert (await reload(session, tender)).log_size == 2

    async def test_withdrawing_twice_is_409_the_second_time(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        url = f"{TENDERS}/{tender.id}/bids/mine"
        assert (await submit(client, tender, headers, sealed())).status_code == 201
        assert (await client.delete(url, headers=headers)).status_code == 200
        again = await client.delete(url, headers=headers)
        assert again.status_code == 409
        assert again.json()["type"] == "no_bid"
        assert (await reload(session, tender)).log_size == 2

    async def test_a_bid_after_a_withdrawal_counts_again(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        url = f"{TENDERS}/{tender.id}/bids/mine"
        assert (await submit(client, tender, headers, sealed())).status_code == 201
        assert (await client.delete(url, headers=headers)).status_code == 200
        body = sealed()
        again = await submit(client, tender, headers, body)
        assert again.json()["body"]["version"] == 2
        mine = (await client.get(url, headers=headers)).json()
        assert mine["bid"]["version"] == 2
        assert mine["bid"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert [r["body"]["kind"] for r in mine["receipts"]] == ["bid", "withdrawal", "bid"]


# --- a client going away mid-body ----------------------------------------------------------


async def post_then_vanish(
    app: FastAPI, path: str, headers: dict[str, str], pieces: list[bytes]
) -> list[Message]:
    """Call the app as a server would for a client that sends some pieces and disconnects."""
    messages: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(0)
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(post_scope(path, headers), receive, send)
    return sent


class TestInterruptedUpload:
    async def test_a_client_that_disconnects_mid_body_leaves_no_bid_and_no_file(
        self, app: FastAPI, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        body = sealed_of_size(LIMIT // 2)
        for declared in (True, False):
            headers = {**OCTETS, **await bidder_headers(session)}
            if declared:
                headers["Content-Length"] = str(len(body))
            sent = await post_then_vanish(
                app, f"{TENDERS}/{tender.id}/bids", headers, [body[:10_000], body[10_000:50_000]]
            )
            start = next(message for message in sent if message["type"] == "http.response.start")
            assert start["status"] == 400
            (answer,) = [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]
            assert json.loads(answer)["type"] == "upload_interrupted"
        assert await bid_count(session) == 0
        assert (await reload(session, tender)).log_size == 0
        assert stored(settings) == []


# --- what the others can learn -------------------------------------------------------------


class TestNothingLeaks:
    async def test_my_bid_never_shows_anyone_elses(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tender = await open_tender(session)
        alice, bob, carol = [await bidder_headers(session) for _ in range(3)]
        url = f"{TENDERS}/{tender.id}/bids/mine"
        carol_before = await client.get(url, headers=carol)
        alice_receipt = (await submit(client, tender, alice, sealed())).json()
        bob_receipt = (await submit(client, tender, bob, sealed())).json()

        alice_mine = (await client.get(url, headers=alice)).json()
        bob_mine = (await client.get(url, headers=bob)).json()
        assert alice_mine["receipts"] == [alice_receipt]
        assert bob_mine["receipts"] == [bob_receipt]
        assert alice_mine["bid"]["id"] == alice_receipt["body"]["bid_id"]
        carol_after = await client.get(url, headers=carol)
        assert carol_before.status_code == carol_after.status_code == 200
        assert carol_before.json() == carol_after.json() == {"bid": None, "receipts": []}

    async def test_no_endpoint_lists_bids(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        bid_routes = {
            (path, method) for path, methods in paths.items() if "bid" in path for method in methods
        }
        assert bid_routes == {
            ("/api/v1/tenders/{tender_id}/bids", "post"),
            ("/api/v1/tenders/{tender_id}/bids/mine", "get"),
            ("/api/v1/tenders/{tender_id}/bids/mine", "delete"),
            # The bidder's own sealed header, for its file key in online decryption.
            ("/api/v1/tenders/{tender_id}/bids/mine/header", "get"),
        }

    async def test_the_officers_refusals_are_the_same_whether_or_not_anyone_bid(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        with_bids = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        without = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        bidder = await bidder_headers(session)
        assert (await submit(client, with_bids, bidder, sealed())).status_code == 201

        async def answers(tender: Tender, who: str) -> list[tuple[int, Any]]:
            url = f"{TENDERS}/{tender.id}/bids"
            headers = cast[who].headers
            responses = [
                await client.get(f"{url}/mine", headers=headers),
                await client.delete(f"{url}/mine", headers=headers),
                await submit(client, tender, headers, sealed()),
                await submit(client, tender, headers, b"plaintext"),
            ]
            return [(r.status_code, r.json()) for r in responses]

        for who in ("author", "supervisor", "admin", "anonymous"):
            assert await answers(with_bids, who) == await answers(without, who)

    async def test_another_bidders_refusals_are_the_same_whether_or_not_anyone_bid(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        with_bids, without = await open_tender(session), await open_tender(session)
        assert (
            await submit(client, with_bids, await bidder_headers(session), sealed())
        ).status_code == 201
        nosy = await bidder_headers(session)

        async def answers(tender: Tender) -> list[tuple[int, Any]]:
            url = f"{TENDERS}/{tender.id}/bids"
            responses = [
                await client.get(f"{url}/mine", headers=nosy),
                await client.delete(f"{url}/mine", headers=nosy),
                await submit(client, tender, nosy, b"plaintext"),
                await submit(client, tender, {**nosy, "Content-Type": "text/plain"}, sealed()),
                await submit(client, tender, nosy, sealed_of_size(LIMIT + 1)),
            ]
            return [(r.status_code, r.json()) for r in responses]

        assert await answers(with_bids) == await answers(without)

    async def test_the_tender_reads_the_same_before_and_after_a_bid(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        # The tender row takes each bid's log position; nothing of that may show.
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)

        async def views() -> list[Any]:
            seen = []
            for who in ("author", "bidder", "anonymous"):
                headers = cast[who].headers
                one = await client.get(f"{TENDERS}/{tender.id}", headers=headers)
                listed = await client.get(TENDERS, params={"q": tender.reference}, headers=headers)
                assert one.status_code == listed.status_code == 200
                seen += [one.json(), listed.json(), dict(one.headers), dict(listed.headers)]
            views: list[Any] = without_clock(seen)
            return views

        before = await views()
        bidder = await bidder_headers(session)
        await asyncio.sleep(0.01)  # a later clock reading, should anything record one
        assert (await submit(client, tender, bidder, sealed())).status_code == 201
        assert await views() == before
        assert (await submit(client, tender, bidder, sealed_of_size(LIMIT))).status_code == 201
        assert await views() == before
        withdrawn = await client.delete(f"{TENDERS}/{tender.id}/bids/mine", headers=bidder)
        assert withdrawn.status_code == 200
        assert await views() == before


# --- where the bytes go ---------------------------------------------------------------------


class TestBlobStore:
    async def test_a_bid_is_stored_under_its_digest_exactly_as_uploaded(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        body = sealed(os.urandom(100_000))
        response = await submit(client, tender, await bidder_headers(session), body)
        assert response.status_code == 201
        digest = hashlib.sha256(body).hexdigest()
        assert response.json()["body"]["sha256"] == digest
        blob = settings.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
        assert files_under(settings.data_dir / "blobs") == [blob]
        assert blob.read_bytes() == body
        assert files_under(settings.data_dir / "staging") == []

    async def test_identical_bytes_are_stored_once_and_receipted_twice(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        tender = await open_tender(session)
        headers = await bidder_headers(session)
        body = sealed()
        first = (await submit(client, tender, headers, body)).json()
        second = (await submit(client, tender, headers, body)).json()
        assert (first["body"]["version"], second["body"]["version"]) == (1, 2)
        assert first["body"]["sha256"] == second["body"]["sha256"]
        (blob,) = files_under(settings.data_dir / "blobs")
        assert blob.read_bytes() == body
        assert files_under(settings.data_dir / "staging") == []
