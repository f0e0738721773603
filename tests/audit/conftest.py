"""Audit fixtures: what the trail gained, read back from the database."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.audit.models import AuditEntry
from bidding.audit.service import content
from bidding.crypto.canonical import canonical_json
from bidding.db import create_session_factory


async def every_entry(session: AsyncSession) -> list[AuditEntry]:
    """The whole trail as stored now, oldest first."""
    rows = await session.scalars(
        select(AuditEntry)
        .order_by(AuditEntry.at, AuditEntry.chain, AuditEntry.position)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def summary(entry: AuditEntry) -> tuple[Any, ...]:
    """What a test compares: the action, who, which tender, the details."""
    return (entry.action, entry.actor_user_id, entry.tender_id, entry.details)


@dataclass
class Trail:
    """The audit trail in the database: what it gained since the last look."""

    read: Callable[[], Awaitable[list[AuditEntry]]]
    seen: set[tuple[str, int]] = field(default_factory=set)

    async def new(self) -> list[AuditEntry]:
        """The entries written since the last call, oldest first."""
        fresh = [
            entry for entry in await self.read() if (entry.chain, entry.position) not in self.seen
        ]
        self.seen |= {(entry.chain, entry.position) for entry in fresh}
        return fresh

    async def text(self) -> str:
        """Everything the trail holds, as one string to search for secrets."""
        return "\n".join(canonical_json(content(entry)).decode() for entry in await self.read())


@pytest.fixture
def trail(session: AsyncSession) -> Trail:
    """The trail as the test's rolled-back transaction sees it."""
    return Trail(lambda: every_entry(session))


@pytest.fixture
def committed(engine: AsyncEngine) -> Trail:
    """The trail as committed, for tests on real transactions (`committing_app`)."""

    async def read() -> list[AuditEntry]:
        async with create_session_factory(engine)() as session:
            return await every_entry(session)

    return Trail(read)
