"""Lies in the HTTP framing against a real `bidding serve`, from raw sockets:
a Content-Length smaller or larger than the body, a chunked body that never ends, a negative
or non-numeric length, a claimed 2 GiB upload streamed in part. Each ends in 413 or 400 (from
the app, or from the HTTP parser before the app), the staging folder is emptied, nothing is
recorded, the server goes on serving, and its resident memory stays flat: the growth of the
server process's RSS is bounded by a few MiB however much is claimed or sent.
"""

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bidding.crypto import age
from bidding.errors import BadRequest
from bidding.tenders import uploads
from tests.support.processes import bidding_env
from tests.support.uploads import (
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

pytestmark = pytest.mark.process

MIB = 1024 * 1024
GIB = 1024 * MIB
CLAIMED = 2 * GIB
BID_LIMIT = 4 * GIB  # above the claim: the claimed upload is taken and streamed to disk
IDLE_SECONDS = 2  # an upload that sends nothing for this long is given up
STREAMED = 256 * MIB
RSS_BOUND = 8 * MIB
WAIT = 30.0


@dataclass
class RunningServer(Server):
    """The server and its process id, whose memory is watched."""

    pid: int = 0

    def rss(self) -> int:
        """The server process's resident set, in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`bidding serve` on SQLite taking bids of up to 4 GiB, a published tender, a bidder."""
    data_dir = tmp_path_factory.mktemp("framing") / "var"
    env = bidding_env(
        data_dir,
        BIDDING_DEMO="0",
        BIDDING_MAX_BID_BYTES=str(BID_LIMIT),
        BIDDING_UPLOAD_IDLE_SECONDS=str(IDLE_SECONDS),
        BIDDING_RATE_LIMIT_SUBMISSION="100000/second",
        BIDDING_RATE_LIMIT_SIGN_IN="100000/second",
        BIDDING_RATE_LIMIT_REGISTRATION="100000/second",
    )
    accounts = {"officer": "officer@framing.example", "bidder": "bidder@framing.example"}
    with serving_a_tender(env, data_dir, accounts) as (served, tender, tokens):
        yield RunningServer(
            port=served.port,
            data_dir=data_dir,
            tender_id=tender["id"],
            recipient=age.Recipient.parse(tender["opening_recipient"]),
            bidder=tokens["bidder"],
            pid=served.process.pid,
        )


def raw_answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one answer, whatever its type; (0, b"") if the server hung up."""
    sock.settimeout(WAIT)
    buffer = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return 0, b""
            buffer += data
    if b"\r\n\r\n" not in buffer:
        return 0, b""
    head_bytes, _, body = buffer.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in lines[1:])}
    length = int(fields.get("content-length", "0"))
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                break
            body += data
    return int(lines[0].split()[1]), body


def still_serving(server: Server) -> None:
    """The server answers a plain request and takes a real bid after the attack."""
    with httpx.Client(base_url=server.url, timeout=WAIT) as client:
        assert client.get("/api/v1/health").json()["database"] == "ok"
        response = client.post(
            server.bids_path,
            content=server.sealed(),
            headers={"Content-Type": "application/octet-stream", **server.bidder},
        )
    assert response.status_code == 201, response.text


_BLOCK = os.urandom(MIB)


def send(sock: socket.socket, framing: str, data: bytes) -> None:
    sock.sendall(chunk(data) if framing == "chunked" else data)


# --- lengths that lie ----------------------------------------------------------------------


class TestLengths:
    @pytest.mark.parametrize(
        "length",
        ["-1", "abc", "1e3", "0x10", "+5", "1,000", " ", "\u00b2", "99999999999999999999999999"],
    )
    def test_a_length_that_is_no_length_is_400_and_nothing_is_read(
        self, server: RunningServer, length: str
    ) -> None:
        before = server.rows()
        with connect(server) as sock:
            sock.sendall(head(server, Content_Length=length) + server.sealed())
            status, _ = raw_answer(sock)
        assert status in (400, 413), (length, status)
        assert server.rows() == before
        assert server.staged() == []

    @pytest.mark.parametrize(
        "fields",
        [
            "Content-Length: {n}\r\nContent-Length: {more}",
            "Content-Length: {n}, {more}",
            "Transfer-Encoding: chunked, identity",
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        ],
    )
    def test_two_readings_of_one_body_are_400(self, server: Server, fields: str) -> None:
        # The classic request-smuggling frames: the server must not pick one reading.
        before = server.rows()
        body = server.sealed()
        fields = fields.format(n=len(body), more=len(body) + 10)
        request = head(server).replace(b"\r\n\r\n", f"\r\n{fields}\r\n\r\n".encode())
        with connect(server) as sock:
            sock.sendall(request + chunk(body) + chunk(b""))
            status, _ = raw_answer(sock)
        assert status in (400, 501), (fields, status)
        assert server.rows() == before
        still_serving(server)

    def test_a_length_beside_chunks_is_400_and_the_connection_closed(self, server: Server) -> None:
        # RFC 9112 6.1: the server must close the connection after answering, so that no
        # proxy in front reads the body the other way. The HTTP server read it as chunks and
        # kept the connection until its keep-alive timeout (5 s): now it is refused at once.
        before = server.rows()
        body = server.sealed()
        fields = f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked"
        request = head(server).replace(b"\r\n\r\n", f"\r\n{fields}\r\n\r\n".encode())
        with connect(server) as sock:
            sock.sendall(request + chunk(body) + chunk(b""))
            status, answer = raw_answer(sock)
            assert status == 400, answer
            assert json.loads(answer)["type"] == "bad_length"
            sock.settimeout(2)  # well before the keep-alive timeout
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b"", "the connection stayed open"
        assert server.rows() == before
        still_serving(server)

    def test_a_length_smaller_than_the_body_takes_what_it_says_and_no_more(
        self, server: RunningServer
    ) -> None:
        body = server.sealed()
        before = server.rows()
        with connect(server) as sock:
            # The declared bytes are a whole bid; what follows is a "next request" of garbage.
            sock.sendall(head(server, Content_Length=str(len(body))) + body + os.urandom(4096))
            status, receipt = read_response(sock)
        assert status == 201, receipt
        assert receipt["body"]["size"] == len(body)
        server.assert_rows(before[0] + 1, before[1] + 1)
        still_serving(server)

    @pytest.mark.parametrize("framing", ["content-length", "chunked"])
    def test_a_body_that_stops_coming_is_given_up_and_freed(
        self, server: RunningServer, framing: str
    ) -> None:
        # The client keeps the connection open and sends nothing more: the server may not
        # wait for ever holding a staging file.
        before = server.rows()
        body = server.sealed(os.urandom(MIB))
        with connect(server) as sock:
            if framing == "chunked":
                sock.sendall(head(server, Transfer_Encoding="chunked") + chunk(body[: MIB // 2]))
            else:
                sock.sendall(head(server, Content_Length=str(len(body) + 1000)) + body)
            wait_for(lambda: len(server.staged()) == 1, "the upload is being staged")
            started = time.monotonic()
            status, answer = raw_answer(sock)
            waited = time.monotonic() - started
        assert status in (0, 400, 408), (status, answer)
        assert waited < IDLE_SECONDS + 10, f"the server waited {waited:.1f} s"
        wait_for(lambda: server.staged() == [], "the staging folder is empty")
        assert server.rows() == before
        still_serving(server)

    @pytest.mark.parametrize("framing", ["content-length", "chunked"])
    def test_a_json_body_that_stops_coming_is_given_up(self, server: Server, framing: str) -> None:
        # Far smaller than a bid, but a request waiting for ever all the same: a thousand of
        # them would hold a thousand connections.
        register = b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
        register += b"Content-Type: application/json\r\n"
        part = b'{"email": "stalled@example.com", '
        with connect(server) as sock:
            if framing == "chunked":
                sock.sendall(register + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(part))
            else:
                sock.sendall(register + b"Content-Length: 1000\r\n\r\n" + part)
            started = time.monotonic()
            status, answer = raw_answer(sock)
            waited = time.monotonic() - started
        assert status == 400, answer
        assert json.loads(answer)["type"] == "body_stalled"
        assert IDLE_SECONDS - 0.5 < waited < IDLE_SECONDS + 10, f"answered after {waited:.1f} s"
        still_serving(server)


# --- memory --------------------------------------------------------------------------------


class TestMemory:
    def test_a_claimed_upload_over_the_limit_is_413_before_any_body(
        self, server: RunningServer
    ) -> None:
        before, rss_before = server.rows(), server.rss()
        with connect(server) as sock:
            sock.sendall(head(server, Content_Length=str(BID_LIMIT + 1)))
            status, answer = read_response(sock)
        assert status == 413, answer
        assert server.rows() == before
        assert server.rss() - rss_before < RSS_BOUND

    @pytest.mark.parametrize("framing", ["content-length", "chunked"])
    def test_a_claimed_2_gib_upload_streamed_in_part_keeps_memory_flat(
        self, server: RunningServer, framing: str
    ) -> None:
        still_serving(server)  # warm: every code path of an upload has run once
        before = server.rows()
        baseline = peak = server.rss()
        sent = 0
        with connect(server) as sock:
            framed = {"Transfer_Encoding": "chunked"} if framing == "chunked" else {}
            sock.sendall(head(server, **(framed or {"Content_Length": str(CLAIMED)})))
            send(sock, framing, header_of(server.sealed()))
            while sent < STREAMED:
                for _ in range(16):
                    send(sock, framing, _BLOCK)
                sent += 16 * MIB
                peak = max(peak, server.rss())
                assert not answered(sock), "the server answered mid-upload"
            wait_for(
                lambda: sum(p.stat().st_size for p in server.staged()) >= STREAMED * 3 // 4,
                "most of what was sent is staged on disk",
            )
            peak = max(peak, server.rss())
            # Then the client stops sending, the connection open: given up, and freed.
            status, _ = raw_answer(sock)
        assert status in (0, 400, 408), status
        wait_for(lambda: server.staged() == [], "the staging folder is empty")
        assert server.rows() == before
        growth = peak - baseline
        assert growth < RSS_BOUND, f"RSS grew {growth / MIB:.1f} MiB for {sent / MIB:.0f} MiB"
        still_serving(server)

    def test_json_bodies_that_claim_or_stream_too_much_are_413_and_memory_stays_flat(
        self, server: RunningServer
    ) -> None:
        baseline = peak = server.rss()
        register = b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
        json_type = b"Content-Type: application/json\r\n"
        with connect(server) as sock:
            sock.sendall(register + json_type + b"Content-Length: %d\r\n\r\n" % CLAIMED)
            status, _ = raw_answer(sock)
        assert status == 413
        sent = 0
        with connect(server) as sock:
            sock.sendall(register + json_type + b"Transfer-Encoding: chunked\r\n\r\n")
            sock.sendall(chunk(b'{"email": "'))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while sent < 64 * MIB and not answered(sock):
                    sock.sendall(chunk(_BLOCK))
                    sent += MIB
                    peak = max(peak, server.rss())
            status, _ = raw_answer(sock)
        assert status == 413
        assert sent < 16 * MIB, f"the answer came after {sent / MIB:.0f} MiB"
        assert peak - baseline < RSS_BOUND
        still_serving(server)


async def test_an_upload_that_stops_coming_is_given_up_in_process(tmp_path: Path) -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield header_of(age.seal_bytes(b"", [age.Identity.generate().recipient]))
        yield os.urandom(64 * 1024)
        await asyncio.Event().wait()  # and nothing more, ever
        yield b""

    started = time.monotonic()
    with pytest.raises(BadRequest) as refused:
        await uploads.receive(
            stalls(), staging=tmp_path / "staging", max_bytes=GIB, idle_seconds=0.2
        )
    assert refused.value.type == "upload_stalled"
    assert time.monotonic() - started < 5
    assert list((tmp_path / "staging").iterdir()) == []
