"""Uploads as a real server sees them: a uvicorn process, raw sockets that send too much,
lie about their length or vanish mid-body; and memory that stays flat whatever the size."""

import contextlib
import hashlib
import os
import socket
import struct
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bidding.crypto import age
from bidding.crypto.receipts import receipt_problems
from bidding.crypto.signing import VerifyKey
from bidding.tenders import uploads
from tests.support.processes import bidding_env
from tests.support.uploads import (
    WAIT,
    Server,
    answered,
    chunk,
    connect,
    head,
    header_of,
    read_response,
    serving_a_tender,
    wait_for,
)

MIB = 1024 * 1024
LIMIT = 1 * MIB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on 127.0.0.1 with its own SQLite database and a 1 MiB bid limit."""
    data_dir = tmp_path_factory.mktemp("streaming") / "var"
    env = bidding_env(data_dir, BIDDING_DEMO="0", BIDDING_MAX_BID_BYTES=str(LIMIT))
    accounts = {"officer": "officer@buyer.example", "bidder": "bidder@builder.example"}
    with serving_a_tender(env, data_dir, accounts) as (served, tender, tokens):
        yield Server(
            port=served.port,
            data_dir=data_dir,
            tender_id=tender["id"],
            recipient=age.Recipient.parse(tender["opening_recipient"]),
            bidder=tokens["bidder"],
        )


# --- raw HTTP ------------------------------------------------------------------------------


def vanish(sock: socket.socket) -> None:
    """Close the way a crashed client does: a reset, not a goodbye."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def blob_path(server: Server, digest: str) -> Path:
    return server.data_dir / "blobs" / digest[:2] / digest[2:4] / digest


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.process
class TestRealServer:
    def test_a_sealed_bid_streams_into_the_blob_store_with_a_receipt(self, server: Server) -> None:
        before = server.rows()
        body = server.sealed(os.urandom(LIMIT - 4096))
        assert len(body) <= LIMIT
        with connect(server) as sock:
            sock.sendall(head(server, Transfer_Encoding="chunked"))
            for start in range(0, len(body), 50_000):
                sock.sendall(chunk(body[start : start + 50_000]))
            sock.sendall(chunk(b""))
            status, receipt = read_response(sock)
        assert status == 201, receipt
        digest = hashlib.sha256(body).hexdigest()
        assert receipt["body"]["sha256"] == digest
        assert receipt["body"]["size"] == len(body)
        assert blob_path(server, digest).read_bytes() == body
        assert server.staged() == []
        server.assert_rows(before[0] + 1, before[1] + 1)
        listed = httpx.get(f"{server.url}/api/v1/keys").json()["keys"]
        platform = {key["key_id"]: VerifyKey.from_dict(key) for key in listed}
        assert receipt_problems(receipt, platform) == []

    def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_sent(
        self, server: Server
    ) -> None:
        before = server.rows()
        total = 64 * MIB
        block = os.urandom(64 * 1024)
        sent = 0
        with connect(server) as sock:
            sock.sendall(head(server, Transfer_Encoding="chunked"))
            sock.sendall(chunk(header_of(server.sealed())))
            try:
                while sent < total and not answered(sock):
                    sock.sendall(chunk(block))
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may hang up once it has answered
            status, answer = read_response(sock)
        assert status == 413, answer
        assert answer["type"] == "payload_too_large"
        assert sent < total / 4, f"the answer came only after {sent} bytes"
        wait_for(lambda: server.staged() == [], "the staging folder is empty")
        assert server.rows() == before

    def test_a_declared_length_over_the_limit_is_refused_before_any_body(
        self, server: Server
    ) -> None:
        before = server.rows()
        with connect(server) as sock:
            sock.sendall(head(server, Content_Length=str(LIMIT + 1)))
            status, answer = read_response(sock)
        assert status == 413, answer
        assert answer["limit"] == LIMIT
        assert server.rows() == before

    def test_bytes_past_the_declared_length_are_not_part_of_the_bid(self, server: Server) -> None:
        # The client declares a small bid and goes on sending more than the limit: the bid is
        # what the declared length covers, and the rest is no bid at all.
        before = server.rows()
        body = server.sealed()
        with connect(server) as sock:
            sock.sendall(head(server, Content_Length=str(len(body))) + body)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(os.urandom(2 * LIMIT))
            status, receipt = read_response(sock)
        assert status == 201, receipt
        assert receipt["body"]["size"] == len(body)
        assert receipt["body"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert blob_path(server, receipt["body"]["sha256"]).read_bytes() == body
        server.assert_rows(before[0] + 1, before[1] + 1)
        wait_for(lambda: server.staged() == [], "the staging folder is empty")

    def test_a_body_shorter_than_its_declared_length_never_lands(self, server: Server) -> None:
        before = server.rows()
        body = server.sealed()
        with connect(server) as sock:
            sock.sendall(head(server, Content_Length=str(len(body) + 1000)) + body)
            wait_for(lambda: len(server.staged()) == 1, "the upload is being staged")
            sock.shutdown(socket.SHUT_WR)  # no more is coming
            status, _ = read_response(sock)
        assert status in (0, 400)
        wait_for(lambda: server.staged() == [], "the staging folder is empty")
        assert server.rows() == before

    @pytest.mark.parametrize("framing", ["content-length", "chunked"])
    def test_a_client_that_vanishes_mid_body_leaves_no_row_and_no_file(
        self, server: Server, framing: str
    ) -> None:
        before = server.rows()
        body = header_of(server.sealed()) + os.urandom(LIMIT // 2)
        with connect(server) as sock:
            if framing == "chunked":
                sock.sendall(head(server, Transfer_Encoding="chunked") + chunk(body[: LIMIT // 4]))
            else:
                sock.sendall(head(server, Content_Length=str(len(body))) + body[: LIMIT // 4])
            wait_for(lambda: len(server.staged()) == 1, "the upload is being staged")
            vanish(sock)
        wait_for(lambda: server.staged() == [], "the staging folder is empty")
        assert server.rows() == before
        assert not any(
            hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
            for path in (server.data_dir / "blobs").rglob("*")
            if path.is_file()
        )
        # And the server takes the next bid as if nothing had happened.
        response = httpx.post(
            f"{server.url}{server.bids_path}",
            content=server.sealed(),
            headers={"Content-Type": "application/octet-stream", **server.bidder},
            timeout=WAIT,
        )
        assert response.status_code == 201, response.text


# --- memory --------------------------------------------------------------------------------


async def test_memory_stays_flat_while_a_large_bid_streams_in(tmp_path: Path) -> None:
    header = header_of(age.seal_bytes(b"", [age.Identity.generate().recipient]))
    block = os.urandom(64 * 1024)
    blocks = 64 * MIB // len(block)
    expected = hashlib.sha256(header)
    for _ in range(blocks):
        expected.update(block)

    async def body() -> AsyncIterator[bytes]:
        yield header
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        staged = await uploads.receive(body(), staging=tmp_path / "staging", max_bytes=128 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.size == len(header) + 64 * MIB
    assert staged.sha256 == expected.hexdigest()
    assert staged.path.stat().st_size == staged.size
    assert peak < 2 * MIB, f"peak {peak / MIB:.1f} MiB while receiving 64 MiB"
