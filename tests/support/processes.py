"""The `bidding` command in real processes: one-off commands, and `bidding serve` until it
answers its health check."""

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.factories import credit_code


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bidding_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its BIDDING_ settings, on the data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDDING_")}
    return {**env, "BIDDING_DATA_DIR": str(data_dir), **extra}


def platform_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """bidding_env for a platform under test: no demo data, bidding periods as short as
    wanted, and openings found within a second."""
    return bidding_env(
        data_dir,
        BIDDING_DEMO="0",
        BIDDING_MIN_BIDDING_PERIOD_SECONDS="0",
        BIDDING_SCHEDULER_SYNC_SECONDS="1",
        **settings,
    )


def bidding(
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[bytes]:
    """Run `bidding ARGS` (after the prefix command, if any) to its end."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bidding", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The one line the command wrote to stderr."""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@dataclass
class Served:
    """`bidding serve` in its own process, its output in a file."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def alive(self) -> bool:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            return http.get("/api/v1/health").status_code == 200

    def create_officer(self) -> tuple[str, str]:
        email, password = f"officer-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(16)
        command = [sys.executable, "-m", "bidding", "users", "create", "--email", email]
        command += ["--password-stdin", "--role", "officer", "--name", "Officer"]
        command += ["--org-name", f"Bureau {secrets.token_hex(3)}", "--org-code", credit_code()]
        done = subprocess.run(
            command, input=f"{password}\n", env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return email, password


def start_serving(env: dict[str, str], *options: str, logs: Path) -> Served:
    """`bidding serve` started on a free port, its output in a file in logs; not waited for."""
    port = free_port()
    log = logs / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bidding", "serve", "--port", str(port), *options],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Served(f"http://127.0.0.1:{port}", port, process, log, env)


@contextmanager
def serving(
    env: dict[str, str], *options: str, logs: Path, seconds: float = 60
) -> Iterator[Served]:
    """`bidding serve` once it answers its health check; stopped at the end of the block."""
    served = start_serving(env, *options, logs=logs)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if served.alive():
                    break
            except httpx.TransportError:
                pass
            assert served.process.poll() is None, served.output()
            assert time.monotonic() < deadline, f"the server did not start:\n{served.output()}"
            time.sleep(0.2)
        yield served
    finally:
        served.process.terminate()
        served.process.wait(timeout=30)


@contextmanager
def platform_serving(data_dir: Path, *options: str, **settings: str) -> Iterator[Served]:
    """`bidding serve` on the data folder with platform_env's settings and these, its log
    beside the folder."""
    with serving(platform_env(data_dir, **settings), *options, logs=data_dir.parent) as served:
        yield served
