"""Settings and the platform keys: safe defaults, and no default secret in production."""

from pathlib import Path

import pytest

from bidding.keys import load_platform_keys
from bidding.settings import Settings


class TestSettings:
    def test_cookies_are_secure_by_default_only_in_production(self) -> None:
        assert Settings(environment="production").secure_cookies
        assert not Settings(environment="development").secure_cookies
        assert not Settings(environment="production", cookie_secure=False).secure_cookies

    def test_the_default_database_is_sqlite_in_the_data_dir(self, tmp_path: Path) -> None:
        url = Settings(data_dir=tmp_path).resolved_database_url
        assert url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/bidding.sqlite3"
        given = "postgresql+asyncpg://db/bidding"
        assert Settings(database_url=given).resolved_database_url == given


class TestPlatformKeys:
    def test_production_refuses_to_invent_a_master_key(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError, match="BIDDING_MASTER_KEY"):
            load_platform_keys(Settings(environment="production", data_dir=tmp_path))
        assert not (tmp_path / "keys" / "master.key").exists()

    def test_development_keys_are_created_once_and_reused(self, tmp_path: Path) -> None:
        first = load_platform_keys(Settings(data_dir=tmp_path))
        again = load_platform_keys(Settings(data_dir=tmp_path))
        assert first.master == again.master
        assert first.signing.key_id == again.signing.key_id
        assert (tmp_path / "keys" / "master.key").stat().st_mode & 0o077 == 0
