"""The `bidding` command as a user runs it: a real process, real files, real pipes."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bidding.crypto import age
from tests.support.processes import bidding, error_line

pytestmark = pytest.mark.process

CHUNK = age.CHUNK_SIZE


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, age.Identity]:
    path = tmp_path / "bidder.key"
    result = bidding("keygen", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path, age.parse_identities(path.read_text())[0]


class TestKeygen:
    def test_writes_a_private_identity_file_with_its_recipient(
        self, key: tuple[Path, age.Identity]
    ) -> None:
        path, identity = key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert f"# public key: {identity.recipient}\n" in text
        assert text.rstrip().endswith(str(identity))

    def test_refuses_to_overwrite_a_key(self, key: tuple[Path, age.Identity]) -> None:
        path, _ = key
        before = path.read_bytes()
        result = bidding("keygen", "-o", str(path))
        assert result.returncode == 1
        assert "already exists" in error_line(result)
        assert path.read_bytes() == before

    def test_prints_to_stdout_without_a_file(self) -> None:
        result = bidding("keygen")
        assert result.returncode == 0
        identities = age.parse_identities(result.stdout.decode())
        assert f"Public key: {identities[0].recipient}" in result.stderr.decode()


class TestSealAndUnseal:
    def test_round_trip_through_files(self, tmp_path: Path, key: tuple[Path, age.Identity]) -> None:
        path, identity = key
        plain = tmp_path / "bid.json"
        plain.write_bytes(os.urandom(2 * CHUNK + 7))
        sealed, opened = tmp_path / "bid.age", tmp_path / "opened.json"
        result = bidding("seal", "-r", str(identity.recipient), "-o", str(sealed), str(plain))
        assert result.returncode == 0, result.stderr
        result = bidding("unseal", "-i", str(path), "-o", str(opened), str(sealed))
        assert result.returncode == 0, result.stderr
        assert opened.read_bytes() == plain.read_bytes()

    def test_round_trip_through_pipes_with_two_recipients(
        self, key: tuple[Path, age.Identity], tmp_path: Path
    ) -> None:
        path, identity = key
        other = age.Identity.generate()
        data = b'{"price": "1234567.89", "duration_days": 180}'
        sealed = bidding(
            "seal", "-r", str(identity.recipient), "-r", str(other.recipient), stdin=data
        )
        assert sealed.returncode == 0
        assert age.unseal_bytes(sealed.stdout, [other]) == data
        opened = bidding("unseal", "-i", str(path), stdin=sealed.stdout)
        assert opened.returncode == 0 and opened.stdout == data

    def test_a_damaged_file_leaves_no_output_file(
        self, tmp_path: Path, key: tuple[Path, age.Identity]
    ) -> None:
        path, identity = key
        sealed = bytearray(age.seal_bytes(os.urandom(3 * CHUNK), [identity.recipient]))
        sealed[-100] ^= 1  # in the last chunk: two good chunks come before it
        damaged, opened = tmp_path / "bid.age", tmp_path / "opened"
        damaged.write_bytes(sealed)
        result = bidding("unseal", "-i", str(path), "-o", str(opened), str(damaged))
        assert result.returncode == 1
        assert "chunk 2 failed authentication" in error_line(result)
        assert sorted(tmp_path.iterdir()) == sorted([path, damaged])

    def test_the_wrong_identity_is_one_clear_line(
        self, tmp_path: Path, key: tuple[Path, age.Identity]
    ) -> None:
        path, _ = key
        sealed = age.seal_bytes(b"bid", [age.Identity.generate().recipient])
        result = bidding("unseal", "-i", str(path), stdin=sealed)
        assert result.returncode == 1 and result.stdout == b""
        assert (
            error_line(result) == "bidding: error: no identity matches any recipient of this file"
        )

    @pytest.mark.parametrize(
        ("args", "status", "message"),
        [
            (["seal", "-r", "age1notakey"], 1, "invalid recipient"),
            (["seal"], 2, "-r/--recipient"),
            (["unseal", "-i", "/nonexistent/key"], 1, "No such file or directory"),
            (["seal", "-r", "ssh-ed25519 AAAA"], 1, "unsupported recipient type"),
            (["frobnicate"], 2, "invalid choice"),
            ([], 2, "required"),
        ],
    )
    def test_every_failure_is_one_line_and_a_non_zero_status(
        self, args: list[str], status: int, message: str
    ) -> None:
        result = bidding(*args, stdin=b"x")
        assert result.returncode == status
        assert message in error_line(result)

    def test_not_an_age_file(self, key: tuple[Path, age.Identity]) -> None:
        path, _ = key
        result = bidding("unseal", "-i", str(path), stdin=b'{"price": "1"}')
        assert result.returncode == 1
        assert "not an age file" in error_line(result)

    def test_a_non_key_identity_file_is_refused(self, tmp_path: Path) -> None:
        bogus = tmp_path / "bogus.key"
        bogus.write_text("AGE-SECRET-KEY-1QQQQ\n")
        result = bidding("unseal", "-i", str(bogus), stdin=b"")
        assert result.returncode == 1
        assert error_line(result).startswith(f"bidding: error: {bogus}: line 1: invalid identity")


class TestProgress:
    def test_the_bar_reaches_the_full_size_on_a_single_line(self) -> None:
        import io

        from bidding.cli.bidder import _ProgressBar

        screen = io.StringIO()
        bar = _ProgressBar(64 * 1024 * 1024, screen)
        bar(1024 * 1024)
        bar(64 * 1024 * 1024)
        bar.finish()
        frames = screen.getvalue().split("\r")[1:]
        assert frames[0].startswith("[") and " 2%" in frames[0] and "1/64 MiB" in frames[0]
        assert frames[-1] == f"[{'#' * 30}] 100%  64/64 MiB\n"

    def test_no_bar_when_stderr_is_not_a_terminal(
        self, tmp_path: Path, key: tuple[Path, age.Identity]
    ) -> None:
        _, identity = key
        plain = tmp_path / "big"
        plain.write_bytes(bytes(9 * 1024 * 1024))
        result = bidding(
            "seal", "-r", str(identity.recipient), "-o", str(tmp_path / "o"), str(plain)
        )
        assert result.returncode == 0 and result.stderr == b""

    def test_a_closed_pipe_ends_quietly(self, key: tuple[Path, age.Identity]) -> None:
        path, identity = key
        sealed = age.seal_bytes(os.urandom(8 * CHUNK), [identity.recipient])
        process = subprocess.Popen(
            [sys.executable, "-m", "bidding", "unseal", "-i", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stdin is not None
        process.stdout.close()  # the reader goes away before reading anything
        _, stderr = process.communicate(sealed)
        assert process.returncode == 1
        assert stderr == b""
