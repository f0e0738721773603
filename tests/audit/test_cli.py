"""`bidding audit verify` and `bidding users create` as an operator runs them: real processes
against a data folder (SQLite) or a database URL (PostgreSQL), the trail tampered with in
the database as its administrator could."""

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding.audit import service as audit
from bidding.audit.models import AuditChain, AuditEntry
from bidding.db import create_engine, create_session_factory
from bidding.migrations import upgrade
from tests.audit.test_service import (
    CHAIN,
    TENDER,
    Tampering,
    delete_one,
    edit_details,
    forge_in_the_middle,
    swap_two,
)
from tests.conftest import fresh_postgres_database


@dataclass
class Place:
    """A migrated database of its own: the environment that points the command at it."""

    env: dict[str, str]
    engine: AsyncEngine
    backend: str

    def bidding(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bidding", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(params=["sqlite", "postgresql"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BIDDING_")}
    env["BIDDING_DATA_DIR"] = str(tmp_path)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bidding.sqlite3'}"
        engine = create_engine(url)
        await upgrade(engine)
        yield Place(env, engine, "sqlite")
        await engine.dispose()
        return
    async with fresh_postgres_database("bidding_audit") as url:
        engine = create_engine(url)
        await upgrade(engine)
        yield Place(env | {"BIDDING_DATABASE_URL": url}, engine, "postgresql")
        await engine.dispose()


async def fill(place: Place) -> None:
    """A platform chain of three entries and a tender's chain of five, committed."""
    async with create_session_factory(place.engine)() as session:
        for number in range(3):
            await audit.record(
                session=session, action="auth.sign_in_failed", details={"email": f"x{number}@y.cn"}
            )
        for number in range(5):
            details = {"bid_id": str(uuid.uuid4()), "sha256": f"{number:064x}", "size": number}
            await audit.record(
                session=session, action="bid.submitted", tender_id=TENDER, details=details
            )
        await session.commit()


async def tampered(place: Place, tamper: Tampering) -> None:
    """Tamper as the database's administrator: its guard switched off first."""
    async with create_session_factory(place.engine)() as session:
        if place.backend == "postgresql":
            await session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        await tamper(session)
        if place.backend == "postgresql":
            await session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        await session.commit()


class TestVerify:
    async def test_an_untouched_trail_verifies_and_prints_each_chain_and_its_head(
        self, place: Place
    ) -> None:
        await fill(place)
        async with create_session_factory(place.engine)() as session:
            heads = {
                head.chain: head.head_hash for head in await session.scalars(select(AuditChain))
            }

        result = place.bidding("audit", "verify")

        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == (
            f"audit trail intact: 8 entries in 2 chains: platform 3 (head {heads['platform']}), "
            f"{CHAIN} 5 (head {heads[CHAIN]})\n"
        )

    @pytest.mark.parametrize(
        ("tamper", "position", "problem"),
        [
            (edit_details, 3, "edited"),
            (delete_one, 2, "missing"),
            (swap_two, 2, "reordered"),
            (forge_in_the_middle, 3, "inserted"),
        ],
        ids=["edited", "deleted", "swapped", "forged"],
    )
    async def test_tampering_exits_1_naming_the_first_broken_link(
        self, place: Place, tamper: Tampering, position: int, problem: str
    ) -> None:
        await fill(place)
        await tampered(place, tamper)

        result = place.bidding("audit", "verify")

        assert (result.returncode, result.stdout) == (1, "")
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            f"bidding: error: audit trail broken: chain {CHAIN}, position {position}: {problem} ("
        ), lines[0]

    async def test_an_empty_trail_verifies(self, place: Place) -> None:
        result = place.bidding("audit", "verify")
        assert (result.returncode, result.stdout) == (
            0,
            "audit trail intact: 0 entries in 0 chains\n",
        )


class TestUsersCreate:
    async def test_an_account_made_on_the_command_line_is_recorded_by_nobody_via_the_cli(
        self, place: Place
    ) -> None:
        password = "a long enough passphrase"
        created = place.bidding(
            "users", "create", "--email", "Admin@Example.com", "--password-stdin",
            "--role", "admin", stdin=f"{password}\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr

        async with create_session_factory(place.engine)() as session:
            (entry,) = await session.scalars(select(AuditEntry))
        assert (entry.chain, entry.action, entry.actor_user_id, entry.actor_role) == (
            "platform",
            "auth.user_created",
            None,
            None,
        )
        assert entry.details == {
            "user_id": entry.details["user_id"],
            "email": "admin@example.com",
            "role": "admin",
            "organization_id": None,
            "organization_created": False,
            "via": "cli",
        }
        assert password not in str(entry.details)
        verified = place.bidding("audit", "verify")
        assert verified.returncode == 0, verified.stderr
