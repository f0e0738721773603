"""Uploads as a real server sees them: a uvicorn process, raw sockets that send too much,
lie about their length or vanish mid-body; and memory that stays flat whatever the size."""

import contextlib
import hashlib
import json
import os
import select
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bidding.crypto import age
from bidding.crypto.receipts import receipt_problems
from bidding.crypto.signing import VerifyKey
from bidding.tenders import uploads
from tests.factories import PASSWORD, credit_code
from tests.tenders.conftest import TENDERS, tender_body
from tests.test_serve import bidding_env, free_port

MIB = 1024 * 1024
LIMIT = 1 * MIB
WAIT = 20.0  # seconds; generous, the machine may be busy


@dataclass
class Server:
    """A running `bidding serve` with its data dir, a published tender and a bidder's token."""

    port: int
    data_dir: Path
    tender_id: str
    recipient: age.Recipient
    bidder: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bids_path(self) -> str:
        return f"{TENDERS}/{self.tender_id}/bids"

    def sealed(self, plaintext: bytes = b'{"price": "1000000.00"}') -> bytes:
        return age.seal_bytes(plaintext, [self.recipient])

    def staged(self) -> list[Path]:
        staging = self.data_dir / "staging"
        return sorted(staging.iterdir()) if staging.exists() else []

    def count(self, table: str) -> int:
        with sqlite3.connect(self.data_dir / "bidding.sqlite3") as db:
            (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(count)

    def rows(self) -> tuple[int, int]:
        """How many bid versions and log leaves the database holds."""
        return self.count("bids"), self.count("log_entries")

    def assert_rows(self, bids: int, leaves: int) -> None:
        # Checked right after the answer: a request commits before it answers.
        assert self.rows() == (bids, leaves)


def _cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.Popen[bytes]:
    reader = None
    if stdin is not None:
        # A pipe holding stdin (a password, a few bytes) that communicate() leaves alone.
        reader, writer = os.pipe()
        os.write(writer, stdin)
        os.close(writer)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bidding", *args],
            env=env,
            stdin=reader,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    finally:
        if reader is not None:
            os.close(reader)


def _finish(process: subprocess.Popen[bytes]) -> None:
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on 127.0.0.1 with its own SQLite database and a 1 MiB bid limit."""
    data_dir = tmp_path_factory.mktemp("streaming") / "var"
    env = bidding_env(data_dir, BIDDING_DEMO="0", BIDDING_MAX_BID_BYTES=str(LIMIT))
    _finish(_cli(env, "db", "upgrade"))
    accounts = {"officer": "officer@buyer.example", "bidder": "bidder@builder.example"}
    creating = [
        _cli(env, "users", "create", "--email", email, "--password-stdin", "--role", role,
             "--org-name", f"{role} organization", "--org-code", credit_code(),
             stdin=f"{PASSWORD}\n".encode())
        for role, email in accounts.items()
    ]  # fmt: skip
    port = free_port()
    process = _cli(env, "serve", "--port", str(port))
    try:
        for created in creating:
            _finish(created)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as client:
            started = time.monotonic()
            while True:
                try:
                    client.get("/api/v1/health").raise_for_status()
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stdout.read() if process.stdout else ""
                    assert time.monotonic() - started < WAIT, "the server did not come up"
                    time.sleep(0.1)
            tokens = {}
            for role, email in accounts.items():
                answer = client.post(
                    "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
                )
                assert answer.status_code == 200, answer.text
                tokens[role] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            draft = client.post(TENDERS, json=tender_body(), headers=tokens["officer"])
            assert draft.status_code == 201, draft.text
            tender_id = draft.json()["id"]
            published = client.post(f"{TENDERS}/{tender_id}/publish", headers=tokens["officer"])
            assert published.status_code == 200, published.text
        yield Server(
            port=port,
            data_dir=data_dir,
            tender_id=tender_id,
            recipient=age.Recipient.parse(published.json()["opening_recipient"]),
            bidder=tokens["bidder"],
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- raw HTTP ------------------------------------------------------------------------------


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    # Small buffers: what the client has sent is close to what the server has read.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    return sock


def head(server: Server, **headers: str) -> bytes:
    """A bid upload's request line and headers; keyword names use _ for -."""
    fields = {
        "Host": f"127.0.0.1:{server.port}",
        "Content-Type": "application/octet-stream",
        **server.bidder,
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    lines = [f"POST {server.bids_path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one response; (0, {}) if the server closed without one."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            assert not buffer, f"the connection closed inside a response: {buffer!r}"
            return 0, {}
        buffer += data
    header, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *field_lines = header.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in field_lines)}
    length = int(fields["content-length"])
    while len(body) < length:
        data = sock.recv(65536)
        assert data, "the connection closed inside a response body"
        body += data
    return int(status_line.split()[1]), json.loads(body[:length])


def answered(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def vanish(sock: socket.socket) -> None:
    """Close the way a crashed client does: a reset, not a goodbye."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_for(condition: Any, what: str) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < WAIT, f"timed out waiting until {what}"
        time.sleep(0.02)


def header_of(file: bytes) -> bytes:
    length = age.header_length(file)
    assert length is not None
    return file[:length]


def blob_path(server: Server, digest: str) -> Path:
    return server.data_dir / "blobs" / digest[:2] / digest[2:4] / digest


# --- the tests -----------------------------------------------------------------------------


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
