"""`bidding db upgrade` and `bidding serve` as a newcomer runs them: real processes, real HTTP."""

import json
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bidding.migrations import alembic_config
from tests.support.processes import bidding, bidding_env, serving

pytestmark = pytest.mark.process


class TestDatabaseCommands:
    def test_upgrade_builds_the_embedded_database(self, tmp_path: Path) -> None:
        result = bidding("db", "upgrade", env=bidding_env(tmp_path / "var"))
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(tmp_path / "var" / "bidding.sqlite3") as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert {"users", "organizations", "tenders", "tender_amendments"} <= tables
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()

    def test_a_bad_setting_is_one_clear_line(self, tmp_path: Path) -> None:
        result = bidding("db", "upgrade", env=bidding_env(tmp_path, BIDDING_MAX_BID_BYTES="lots"))
        assert result.returncode == 1
        assert result.stderr.decode().startswith("bidding: error: BIDDING_MAX_BID_BYTES:")


class TestServe:
    def test_serves_health_and_docs_on_a_fresh_data_dir(self, tmp_path: Path) -> None:
        env = bidding_env(tmp_path / "var", BIDDING_DEMO="0")
        with serving(env, logs=tmp_path, seconds=30) as served:
            with urllib.request.urlopen(f"{served.url}/api/v1/health") as r:
                health = json.load(r)
            assert health["database"] == "ok"
            with urllib.request.urlopen(f"{served.url}/docs") as r:
                assert r.status == 200
            keys = tmp_path / "var" / "keys"
            assert (keys / "master.key").stat().st_mode & 0o077 == 0
            assert (keys / "signing.key").stat().st_mode & 0o077 == 0
