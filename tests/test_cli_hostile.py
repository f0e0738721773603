"""Every command given a hostile file, or a hostile server, fails with one clear line.

Each command runs as a bidder or operator runs it (a real process) on real files built to break
a reader: JSON nested past any stack, numbers beyond any float or of 100000 digits, wrong
types, binary, invalid UTF-8, empty files, folders, files that vanished, huge sparse files. A
tiny HTTP server on 127.0.0.1 answers the client with garbage, deep, huge or compressed JSON.
"""

import contextlib
import gzip
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bidding.crypto import age
from bidding.crypto.receipts import make_receipt
from bidding.crypto.signing import SigningKey
from tests.support.platform import FORM, sign_in
from tests.support.processes import bidding, bidding_env, free_port
from tests.tenders.conftest import TENDERS, tender_body

pytestmark = pytest.mark.process

TENDER_ID = "8d0c3f4e-2b1a-4c5d-9e8f-7a6b5c4d3e2f"
MIB = 1024 * 1024


def assert_one_clear_line(
    result: subprocess.CompletedProcess[bytes], *names: str | tuple[str, ...]
) -> str:
    """One `bidding: error:` line from a check rather than the last guard, naming each of names
    (a tuple: one of its alternatives)."""
    stderr = result.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("bidding: error: "), stderr
    assert "unexpected" not in lines[0], lines[0]  # a check refused it, not main's last guard
    assert len(lines[0]) < 600, lines[0]
    for name in names:
        alternatives = name if isinstance(name, tuple) else (name,)
        assert any(alternative in lines[0] for alternative in alternatives), lines[0]
    assert result.returncode == 1, result
    return lines[0]


# --- hostile files -------------------------------------------------------------------------


def _vanished(path: Path) -> None:
    gone = path.with_name(f"{path.name}.gone")
    gone.write_text("{}")
    path.symlink_to(gone)
    gone.unlink()


def _huge(path: Path) -> None:
    with path.open("wb") as file:
        file.truncate(64 * MIB)  # sparse: no disk, but 64 MiB to whoever reads it all


def _text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content, encoding="utf-8")


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


HOSTILE_FILES: dict[str, Callable[[Path], None]] = {
    "deep-array": _text("[" * 100_000 + "]" * 100_000),
    "deep-object": _text('{"a":' * 50_000 + "1" + "}" * 50_000),
    "deep-within-the-stack": _text('{"price": ' + "[" * 500 + "]" * 500 + "}"),
    "huge-float": _text('{"price": 1e999999, "body": 1e999999}'),
    "long-integer": _text('{"price": ' + "7" * 100_000 + "}"),
    "wrong-type": _text('["price", "1180000.50"]'),
    "float-price": _text('{"price": 1180000.5, "duration_days": 180}'),
    "lone-surrogate": _text('{"price": "\\ud800", "duration_days": 180}'),
    "binary": _bytes(bytes(range(256)) * 16),
    "invalid-utf8": _bytes(b'{"price": "\xff\xfe\xfd"}'),
    "empty": _bytes(b""),
    "directory": lambda path: path.mkdir(),
    "vanished": _vanished,
    "huge": _huge,
}
# Any bytes are a plaintext to seal or a document to attach: only what cannot be read fails.
UNREADABLE = ["directory", "vanished"]


@pytest.fixture(params=sorted(HOSTILE_FILES))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"hostile-{request.param}"
    HOSTILE_FILES[request.param](path)
    return path


@pytest.fixture(params=UNREADABLE)
def unreadable(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"hostile-{request.param}"
    HOSTILE_FILES[request.param](path)
    return path


@pytest.fixture
def identity_file(tmp_path: Path) -> tuple[Path, age.Identity]:
    identity = age.Identity.generate()
    path = tmp_path / "bidder.key"
    path.write_text(f"{identity}\n")
    return path, identity


@dataclass
class Tender:
    server: str
    id: str
    token: str


@pytest.fixture(scope="module")
def tender(server: str) -> Tender:
    officer = {"Authorization": f"Bearer {sign_in(server, 'officer@example.com')}"}
    draft = httpx.post(f"{server}{TENDERS}", json=tender_body(), headers=officer)
    assert draft.status_code == 201, draft.text
    published = httpx.post(f"{server}{TENDERS}/{draft.json()['id']}/publish", headers=officer)
    assert published.status_code == 200, published.text
    return Tender(server, published.json()["id"], sign_in(server, "bidder@example.com"))


class TestHostileFiles:
    """Each file the command line reads, in each command that reads it."""

    def test_unseal_identity(self, hostile: Path, identity_file: tuple[Path, age.Identity]) -> None:
        sealed = age.seal_bytes(b"bid", [identity_file[1].recipient])
        assert_one_clear_line(bidding("unseal", "-i", str(hostile), stdin=sealed), str(hostile))

    def test_unseal_input(self, hostile: Path, identity_file: tuple[Path, age.Identity]) -> None:
        result = bidding("unseal", "-i", str(identity_file[0]), str(hostile))
        assert_one_clear_line(result, str(hostile))

    def test_seal_input(self, unreadable: Path) -> None:
        recipient = str(age.Identity.generate().recipient)
        result = bidding("seal", "-r", recipient, "-o", str(unreadable) + ".age", str(unreadable))
        assert_one_clear_line(result, str(unreadable))
        assert not Path(str(unreadable) + ".age").exists()

    def test_check_key_identity(self, hostile: Path) -> None:
        # Nothing listens there: the identity is refused before anything is sent.
        server_url = f"http://127.0.0.1:{free_port()}"
        result = bidding("check-key", "--server", server_url, "--token", "t", "-i", str(hostile))
        assert_one_clear_line(result, str(hostile))

    def test_reveal_identity(self, hostile: Path) -> None:
        server_url = f"http://127.0.0.1:{free_port()}"
        result = bidding(
            "reveal", "--server", server_url, "--tender", TENDER_ID, "--token", "t",
            "-i", str(hostile),
        )  # fmt: skip
        assert_one_clear_line(result, str(hostile))

    def test_submit_sealed_file(self, hostile: Path, tender: Tender) -> None:
        result = bidding(
            "submit", "--server", tender.server, "--tender", tender.id, f"--token={tender.token}",
            str(hostile),
        )  # fmt: skip
        assert_one_clear_line(result, str(hostile))

    def test_submit_bid_form(self, hostile: Path, tender: Tender) -> None:
        result = bidding(
            "submit", "--server", tender.server, "--tender", tender.id, f"--token={tender.token}",
            "--seal", "--form", str(hostile),
        )  # fmt: skip
        assert_one_clear_line(result, str(hostile))

    def test_submit_attachment(self, unreadable: Path, tender: Tender, tmp_path: Path) -> None:
        form = tmp_path / "bid.json"
        form.write_text(json.dumps(FORM))
        result = bidding(
            "submit", "--server", tender.server, "--tender", tender.id, f"--token={tender.token}",
            "--seal", "--form", str(form), "--attach", str(unreadable),
        )  # fmt: skip
        assert_one_clear_line(result, str(unreadable))

    def test_verify_receipt(self, hostile: Path, tender: Tender) -> None:
        result = bidding("verify-receipt", str(hostile), "--server", tender.server)
        assert_one_clear_line(result, str(hostile))


class TestSpecificAnswers:
    """What the line says, for the cases that used to end in a traceback or a useless line."""

    @pytest.mark.parametrize(
        ("kind", "says"),
        [
            ("deep-array", "nested too deeply"),
            ("deep-within-the-stack", "nested more than 64 levels deep"),
            ("huge-float", "the number 1e999999 is out of range"),
            ("long-integer", "a number of 100000 digits"),
            ("float-price", "float 1180000.5 is not allowed in canonical JSON"),
            ("lone-surrogate", "lone surrogates"),
            ("huge", "too large for a bid form (at most 1 MiB)"),
        ],
    )
    def test_a_bid_form(self, tmp_path: Path, kind: str, says: str) -> None:
        form = tmp_path / "bid.json"
        HOSTILE_FILES[kind](form)
        # Nothing listens there: the form is refused before anything is sent.
        server_url = f"http://127.0.0.1:{free_port()}"
        result = bidding(
            "submit", "--server", server_url, "--tender", TENDER_ID, "--token", "t",
            "--seal", "--form", str(form),
        )  # fmt: skip
        assert_one_clear_line(result, f"{form}: ", says)

    @pytest.mark.parametrize(
        ("kind", "says"),
        [
            ("deep-object", "not a JSON receipt (nested too deeply)"),
            ("huge-float", "not a JSON receipt (the number 1e999999 is out of range)"),
            ("huge", "too large for a receipt (at most 1 MiB)"),
        ],
    )
    def test_a_receipt(self, tmp_path: Path, kind: str, says: str) -> None:
        receipt = tmp_path / "receipt.json"
        HOSTILE_FILES[kind](receipt)
        server_url = f"http://127.0.0.1:{free_port()}"
        result = bidding("verify-receipt", str(receipt), "--server", server_url)
        assert_one_clear_line(result, f"{receipt}: {says}")

    def test_a_huge_identity_file_is_not_read_whole(self, tmp_path: Path) -> None:
        key = tmp_path / "bidder.key"
        _huge(key)
        result = bidding("unseal", "-i", str(key), stdin=b"")
        assert_one_clear_line(result, f"{key}: too large for an identity file (at most 1 MiB)")

    def test_an_identity_given_through_a_pipe_still_works(
        self, identity_file: tuple[Path, age.Identity], tmp_path: Path
    ) -> None:
        # Read as a stream: `-i <(pass show bidder-key)` is how a careful bidder gives it.
        path, identity = identity_file
        fifo = tmp_path / "key.fifo"
        os.mkfifo(fifo)

        def feed() -> None:
            with fifo.open("wb") as writer:
                writer.write(path.read_bytes())

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        sealed = age.seal_bytes(b"the bid", [identity.recipient])
        result = bidding("unseal", "-i", str(fifo), stdin=sealed)
        feeder.join(timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"the bid"

    def test_an_unsealed_input_file_is_named(
        self, identity_file: tuple[Path, age.Identity], tmp_path: Path
    ) -> None:
        plain = tmp_path / "bid.json"
        plain.write_text(json.dumps(FORM))
        result = bidding("unseal", "-i", str(identity_file[0]), str(plain))
        assert_one_clear_line(
            result, f"{plain}: not an age file: missing 'age-encryption.org/v1' line"
        )


class TestHostileDataFolder:
    """The operator's commands, on a data folder whose database or keys are not what they seem."""

    @pytest.mark.parametrize(
        "args",
        [["db", "upgrade"], ["users", "create", "--email", "a@example.com", "--role", "admin",
                             "--password-stdin"]],
    )  # fmt: skip
    def test_a_database_file_that_is_not_one(self, tmp_path: Path, args: list[str]) -> None:
        (tmp_path / "bidding.sqlite3").write_bytes(bytes(range(256)) * 64)
        result = bidding(*args, stdin=b"a long enough passphrase\n", env=bidding_env(tmp_path))
        assert_one_clear_line(result, "cannot use the database: file is not a database")

    def test_a_data_folder_that_is_a_file(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        data.write_text("not a folder")
        result = bidding("db", "upgrade", env=bidding_env(data))
        assert_one_clear_line(result, f"BIDDING_DATA_DIR: {data} is not a folder")

    def test_serve_with_a_key_file_that_is_not_a_key(self, tmp_path: Path) -> None:
        (tmp_path / "keys").mkdir(mode=0o700)
        master = tmp_path / "keys" / "master.key"
        master.write_bytes(bytes(range(256)))
        master.chmod(0o600)
        port = free_port()
        result = bidding("serve", "--port", str(port), env=bidding_env(tmp_path, BIDDING_DEMO="0"))
        assert_one_clear_line(result, f"secret key file {master} does not hold base64 text")


# --- hostile servers -----------------------------------------------------------------------


@dataclass
class Answer:
    """What the hostile server answers: a body, sent with its length or until the line closes."""

    body: bytes
    headers: dict[str, str]
    delimited_by_close: bool = False


def _compressed_zeros() -> Answer:
    # 64 MiB once unpacked, which a client that unpacks it holds in memory.
    return Answer(gzip.compress(bytes(64 * MIB), compresslevel=9), {"Content-Encoding": "gzip"})


# Made when a test asks: some are tens of megabytes.
HOSTILE_ANSWERS: dict[str, Callable[[], Answer]] = {
    "garbage": lambda: Answer(b"\x00\xffnot json at all<html>", {}),
    "deep-array": lambda: Answer(b"[" * 100_000, {}),
    "deep-within-the-stack": lambda: Answer(b'{"keys": ' + b"[" * 500 + b"]" * 500 + b"}", {}),
    "huge-float": lambda: Answer(b'{"keys": [{"x": 1e999999}], "access_token": 1e999999}', {}),
    "long-integer": lambda: Answer(b'{"keys": ' + b"9" * 100_000 + b"}", {}),
    "wrong-types": lambda: Answer(b'{"keys": "all", "access_token": 5, "current": [1]}', {}),
    "a-list": lambda: Answer(b"[1, 2, 3]", {}),
    "huge": lambda: Answer(b"[" + b"0," * (10 * MIB) + b"0]", {}),
    "huge-unannounced": lambda: Answer(b" " * (20 * MIB) + b"{}", {}, delimited_by_close=True),
    "compressed-bomb": _compressed_zeros,
}


class HostileServer:
    """A real HTTP server on 127.0.0.1 answering every request with the same hostile answer,
    except the published keys when it is given a key to publish."""

    def __init__(self, answer: Answer, key: SigningKey | None = None) -> None:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.close_connection = True
                if key is not None and self.path == "/api/v1/keys":
                    body = json.dumps({"keys": [key.public_key.to_dict()]}).encode()
                    chosen = Answer(body, {})
                else:
                    chosen = hostile.answer
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                for name, value in chosen.headers.items():
                    self.send_header(name, value)
                if not chosen.delimited_by_close:
                    self.send_header("Content-Length", str(len(chosen.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading, rightly
                    self.wfile.write(chosen.body)

            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def do_PUT(self) -> None:
                self.answer()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.answer = answer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=sorted(HOSTILE_ANSWERS))
def hostile_server(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    with HostileServer(HOSTILE_ANSWERS[request.param]()) as hostile:
        yield hostile


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def receipt_file(tmp_path: Path, signing_key: SigningKey) -> Path:
    body = {
        "kind": "bid", "tender_id": TENDER_ID, "bidder_id": "0b7c2b8e-8d6f-4f0e-9a51-3f1c2d9e7a10",
        "bid_id": "5f2a9c1d-3e4b-4a6c-8d7e-9f0a1b2c3d4e", "version": 1,
        "sha256": hashlib.sha256(b"sealed").hexdigest(), "size": 6,
        "received_at": "2026-11-27T05:22:11.120Z",
    }  # fmt: skip
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(make_receipt(body, signing_key)))
    return path


@pytest.fixture
def sealed_file(tmp_path: Path) -> Path:
    path = tmp_path / "bid.age"
    path.write_bytes(age.seal_bytes(b'{"price": "1.00"}', [age.Identity.generate().recipient]))
    return path


class TestHostileServers:
    """Every command that parses the server's JSON, against every hostile answer."""

    def test_verify_receipt_keys(self, hostile_server: HostileServer, receipt_file: Path) -> None:
        result = bidding("verify-receipt", str(receipt_file), "--server", hostile_server.url)
        assert_one_clear_line(result, ("fetching the platform's keys", "GET /api/v1/keys"))

    @pytest.mark.parametrize("kind", sorted(HOSTILE_ANSWERS))
    def test_verify_receipt_log(
        self, kind: str, signing_key: SigningKey, receipt_file: Path
    ) -> None:
        with HostileServer(HOSTILE_ANSWERS[kind](), key=signing_key) as hostile_server:
            result = bidding("verify-receipt", str(receipt_file), "--server", hostile_server.url)
        assert_one_clear_line(result, ("reading the tender's log", "/log/head"))

    def test_submit_upload(
        self, hostile_server: HostileServer, sealed_file: Path, tmp_path: Path
    ) -> None:
        receipt = tmp_path / "receipt.json"
        result = bidding(
            "submit", "--server", hostile_server.url, "--tender", TENDER_ID, "--token", "t",
            "-o", str(receipt), str(sealed_file),
        )  # fmt: skip
        line = assert_one_clear_line(
            result,
            ("uploading the bid", f"POST /api/v1/tenders/{TENDER_ID}/bids", "does not check out"),
        )
        # An answer that is a JSON object is kept as the evidence of what was answered.
        assert receipt.exists() == ("does not check out" in line)

    def test_submit_sign_in(self, hostile_server: HostileServer, sealed_file: Path) -> None:
        result = bidding(
            "submit", "--server", hostile_server.url, "--tender", TENDER_ID,
            "--email", "bidder@example.com", "--password-stdin", str(sealed_file),
            stdin=b"a long enough passphrase\n",
        )  # fmt: skip
        assert_one_clear_line(result, ("signing in", "POST /api/v1/auth/token"))

    def test_submit_tender(self, hostile_server: HostileServer, tmp_path: Path) -> None:
        form = tmp_path / "bid.json"
        form.write_text(json.dumps(FORM))
        result = bidding(
            "submit", "--server", hostile_server.url, "--tender", TENDER_ID, "--token", "t",
            "--seal", "--form", str(form),
        )  # fmt: skip
        assert_one_clear_line(result, (f"reading tender {TENDER_ID}", f"/tenders/{TENDER_ID}"))

    def test_check_key(
        self, hostile_server: HostileServer, identity_file: tuple[Path, age.Identity]
    ) -> None:
        result = bidding(
            "check-key", "--server", hostile_server.url, "--token", "t",
            "-i", str(identity_file[0]),
        )  # fmt: skip
        assert_one_clear_line(result, ("reading your keys", "GET /api/v1/me/keys"))

    def test_reveal(
        self,
        hostile_server: HostileServer,
        identity_file: tuple[Path, age.Identity],
        tmp_path: Path,
    ) -> None:
        # The bidder's own receipt is checked with the platform's keys before the header is
        # asked for: the hostile answer meets the client there.
        receipt = tmp_path / f"receipt-{TENDER_ID}-v1.json"
        body = {"kind": "bid", "tender_id": TENDER_ID, "version": 1, "header_sha256": "0" * 64}
        receipt.write_text(json.dumps({"body": body, "key_id": "k", "signature": "s"}))
        result = bidding(
            "reveal", "--server", hostile_server.url, "--tender", TENDER_ID, "--token", "t",
            "-i", str(identity_file[0]),
            cwd=tmp_path,
        )  # fmt: skip
        assert_one_clear_line(result, ("fetching the platform's keys", "GET /api/v1/keys"))


class TestSpecificServerAnswers:
    """What the line says when the server's answer is too big, compressed or too deep."""

    @pytest.mark.parametrize(
        ("kind", "says"),
        [
            ("huge", "the server's answer to GET /api/v1/keys is larger than 16 MiB"),
            ("huge-unannounced", "the server's answer to GET /api/v1/keys is larger than 16 MiB"),
            (
                "compressed-bomb",
                "the server's answer to GET /api/v1/keys is compressed (gzip) when asked not to be",
            ),
            (
                "deep-array",
                "fetching the platform's keys: the server's answer is not JSON (nested too deeply)",
            ),
            (
                "long-integer",
                "fetching the platform's keys: the server's answer is not JSON "
                "(a number of 100000 digits)",
            ),
            ("garbage", "fetching the platform's keys: the server's answer is not JSON (not UTF-8"),
        ],
    )
    def test_verify_receipt(self, receipt_file: Path, kind: str, says: str) -> None:
        with HostileServer(HOSTILE_ANSWERS[kind]()) as hostile:
            result = bidding("verify-receipt", str(receipt_file), "--server", hostile.url)
        assert_one_clear_line(result, f"bidding: error: {says}")
