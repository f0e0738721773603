"""Migration 0010 on a database that already has organizations, look-alikes among them."""

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bidding.auth.names import name_key
from bidding.db import create_engine
from bidding.migrations import upgrade
from tests.conftest import fresh_postgres_database
from tests.factories import credit_code


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
        return
    async with fresh_postgres_database("bidding_migration") as url:
        yield url


async def test_existing_organizations_get_keys_and_look_alikes_are_kept_apart(
    empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(empty_database)
    try:
        await upgrade(engine, "0008")
        start = datetime(2024, 1, 1, tzinfo=UTC)
        names = [
            "Demo Construction Co., Ltd",  # the oldest of three look-alikes
            "Demo Constructi0n Co Ltd",
            "DEMO CONSTRUCTION CO., LTD.",
            "演示建设有限公司",
        ]
        ids = [uuid.uuid4() for _ in names]
        async with engine.begin() as connection:
            for number, (organization_id, name) in enumerate(zip(ids, names, strict=True)):
                await connection.execute(
                    text(
                        "INSERT INTO organizations (id, name, code, created_at) "
                        "VALUES (:id, :name, :code, :created_at)"
                    ),
                    {
                        "id": organization_id
                        if empty_database.startswith("postgresql")
                        else organization_id.hex,
                        "name": name,
                        "code": credit_code(),
                        "created_at": start + timedelta(days=number),
                    },
                )
        caplog.set_level(logging.WARNING)
        await upgrade(engine)
        warned = [r.getMessage() for r in caplog.records if "looks the same" in r.getMessage()]
        assert len(warned) == 2, "each later look-alike is named for an administrator"
        assert all(str(ids[0]) in line for line in warned)

        async with engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT name, name_key FROM organizations"))
            ).all()
            keys = dict(rows)
            key = name_key("Demo Construction Co., Ltd")
            assert keys["Demo Construction Co., Ltd"] == key
            # The later look-alikes keep their names and accounts, under keys of their own.
            assert keys["Demo Constructi0n Co Ltd"].startswith(f"{key} ")
            assert keys["DEMO CONSTRUCTION CO., LTD."].startswith(f"{key} ")
            assert len(set(keys.values())) == len(names)
            assert keys["演示建设有限公司"] == name_key("演示建设有限公司")
            # And the key is unique: a new look-alike cannot be written next to them.
            with pytest.raises(IntegrityError):
                await connection.execute(
                    text(
                        "INSERT INTO organizations (id, name, code, created_at, name_key) "
                        "VALUES (:id, 'Dem0 Construction', :code, :created_at, :key)"
                    ),
                    {
                        "id": uuid.uuid4().hex,
                        "code": credit_code(),
                        "created_at": start,
                        "key": key,
                    },
                )
    finally:
        await engine.dispose()
