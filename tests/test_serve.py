"""`bidding db upgrade` and `bidding serve` as a newcomer runs them: real processes, real HTTP."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from alembic.script import ScriptDirectory

from bidding.migrations import alembic_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bidding_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDDING_")}
    return {**env, "BIDDING_DATA_DIR": str(data_dir), **extra}


class TestDatabaseCommands:
    def test_upgrade_builds_the_embedded_database(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bidding", "db", "upgrade"],
            env=bidding_env(tmp_path / "var"),
            capture_output=True,
        )
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(tmp_path / "var" / "bidding.sqlite3") as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert {"users", "organizations", "tenders", "tender_amendments"} <= tables
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()

    def test_a_bad_setting_is_one_clear_line(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bidding", "db", "upgrade"],
            env=bidding_env(tmp_path, BIDDING_MAX_BID_BYTES="lots"),
            capture_output=True,
        )
        assert result.returncode == 1
        assert result.stderr.decode().startswith("bidding: error: BIDDING_MAX_BID_BYTES:")


class TestServe:
    def test_serves_health_and_docs_on_a_fresh_data_dir(self, tmp_path: Path) -> None:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bidding", "serve", "--port", str(port)],
            env=bidding_env(tmp_path / "var", BIDDING_DEMO="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health") as r:
                        health = json.load(r)
                    break
                except OSError:
                    assert process.poll() is None, process.stdout.read() if process.stdout else ""
                    assert time.monotonic() < deadline, "the server did not come up in 30 s"
                    time.sleep(0.2)
            assert health["database"] == "ok"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs") as r:
                assert r.status == 200
            keys = tmp_path / "var" / "keys"
            assert (keys / "master.key").stat().st_mode & 0o077 == 0
            assert (keys / "signing.key").stat().st_mode & 0o077 == 0
        finally:
            process.terminate()
            process.wait(timeout=10)
