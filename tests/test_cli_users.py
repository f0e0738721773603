"""`bidding users create` takes the password from a terminal prompt or stdin, never argv.

A command line is readable by every user of the machine (ps, /proc/<pid>/cmdline) and stays in
shell histories; these run the real command on a fresh SQLite data folder.
"""

import fcntl
import os
import select
import sqlite3
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bidding.auth.passwords import verify_password
from tests.support.processes import bidding as run_bidding
from tests.support.processes import bidding_env, error_line

pytestmark = pytest.mark.process

PASSWORD = "a long enough passphrase"
EMAIL = "admin@example.com"
CREATE = ["users", "create", "--email", EMAIL, "--role", "admin"]


def bidding(data_dir: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return run_bidding(*args, stdin=stdin, env=bidding_env(data_dir))


def password_hash(data_dir: Path, email: str) -> str | None:
    """The stored hash of the account, None if there is no such account (or no database)."""
    database = data_dir / "bidding.sqlite3"
    if not database.exists():
        return None
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()
    return None if row is None else str(row[0])


def on_a_terminal(data_dir: Path, *args: str, answers: list[str]) -> tuple[int, bytes]:
    """Run the command with a new pseudo-terminal as its controlling terminal and stdin, type
    each answer once its prompt is shown; its exit status and stderr."""
    controller, terminal = os.openpty()

    def take_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "bidding", *args],
        env=bidding_env(data_dir),
        stdin=terminal,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=take_the_terminal,  # only an ioctl, in the child
    )
    os.close(terminal)
    shown = b""
    try:
        for answer in answers:
            # A prompt flushes pending input (TCSAFLUSH): each answer waits for its prompt.
            prompts = shown.count(b": ")
            deadline = time.monotonic() + 60
            while shown.count(b": ") == prompts:
                assert time.monotonic() < deadline, f"no prompt after {shown!r}"
                ready, _, _ = select.select([controller], [], [], 1)
                if ready:
                    shown += os.read(controller, 1024)
            os.write(controller, f"{answer}\n".encode())
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert b"Password for admin@example.com: " in shown
    return process.returncode, stderr


class TestUsersCreate:
    def test_the_password_is_read_from_stdin(self, tmp_path: Path) -> None:
        result = bidding(tmp_path, *CREATE, "--password-stdin", stdin=f"{PASSWORD}\n".encode())
        assert result.returncode == 0, result.stderr
        stored = password_hash(tmp_path, EMAIL)
        assert stored is not None and verify_password(stored, PASSWORD)

    @pytest.mark.parametrize("option", [["--password", PASSWORD], [f"--password={PASSWORD}"]])
    def test_a_password_on_the_command_line_is_refused_without_repeating_it(
        self, tmp_path: Path, option: list[str]
    ) -> None:
        result = bidding(tmp_path, *CREATE, *option)
        assert result.returncode == 2
        line = error_line(result)
        assert "--password is not taken" in line and "--password-stdin" in line
        assert PASSWORD not in line
        assert password_hash(tmp_path, EMAIL) is None

    def test_without_a_terminal_or_stdin_option_nothing_is_created(self, tmp_path: Path) -> None:
        result = bidding(tmp_path, *CREATE, stdin=f"{PASSWORD}\n".encode())
        assert result.returncode == 1
        assert error_line(result) == (
            "bidding: error: no terminal to ask the password on; pipe it in with --password-stdin"
        )
        assert password_hash(tmp_path, EMAIL) is None

    def test_on_a_terminal_the_password_is_asked_twice(self, tmp_path: Path) -> None:
        status, stderr = on_a_terminal(tmp_path, *CREATE, answers=[PASSWORD, PASSWORD])
        assert status == 0, stderr
        stored = password_hash(tmp_path, EMAIL)
        assert stored is not None and verify_password(stored, PASSWORD)

    def test_a_typo_in_the_second_password_creates_nothing(self, tmp_path: Path) -> None:
        status, stderr = on_a_terminal(tmp_path, *CREATE, answers=[PASSWORD, PASSWORD + "x"])
        assert status == 1
        assert stderr.decode().splitlines() == [
            "bidding: error: the two passwords differ; nothing was created"
        ]
        assert password_hash(tmp_path, EMAIL) is None
