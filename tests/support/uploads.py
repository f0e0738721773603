"""A real `bidding serve` taking uploads for a published tender, and raw HTTP against it:
request heads written by hand, chunks, and answers read off the socket."""

import contextlib
import json
import select
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bidding.crypto import age
from tests.factories import PASSWORD, credit_code
from tests.support.processes import Served, bidding, serving
from tests.tenders.conftest import TENDERS, tender_body

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


@contextlib.contextmanager
def serving_a_tender(
    env: dict[str, str], data_dir: Path, accounts: dict[str, str]
) -> Iterator[tuple[Served, dict[str, Any], dict[str, dict[str, str]]]]:
    """`bidding serve` on the data folder, with the accounts (role: email) created by the CLI
    and a tender its officer published: the server, the tender, each role's headers."""
    upgraded = bidding("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    for role, email in accounts.items():
        created = bidding(
            "users", "create", "--email", email, "--password-stdin", "--role", role,
            "--org-name", f"{role} organization", "--org-code", credit_code(),
            stdin=f"{PASSWORD}\n".encode(), env=env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    with (
        serving(env, logs=data_dir.parent) as served,
        httpx.Client(base_url=served.url, timeout=WAIT) as client,
    ):
        tokens = {}
        for role, email in accounts.items():
            answer = client.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            assert answer.status_code == 200, answer.text
            tokens[role] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        draft = client.post(TENDERS, json=tender_body(), headers=tokens["officer"])
        assert draft.status_code == 201, draft.text
        published = client.post(
            f"{TENDERS}/{draft.json()['id']}/publish", headers=tokens["officer"]
        )
        assert published.status_code == 200, published.text
        yield served, published.json(), tokens


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


def wait_for(condition: Any, what: str) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < WAIT, f"timed out waiting until {what}"
        time.sleep(0.02)


def header_of(file: bytes) -> bytes:
    length = age.header_length(file)
    assert length is not None
    return file[:length]
