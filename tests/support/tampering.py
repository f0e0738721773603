"""The audit trail altered behind the platform's back, as an administrator with rights to the
database could: entries edited, deleted, swapped, forged, or a chain rewritten and rehashed."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit import service as audit
from bidding.audit.models import AuditChain, AuditEntry
from bidding.db import utcnow

TENDER = uuid.UUID("7169926e-5b0e-4b5c-9a57-64d1f0c3a0b1")
CHAIN = audit.tender_chain(TENDER)


async def chain_of(session: AsyncSession, chain: str) -> list[AuditEntry]:
    rows = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.chain == chain)
        .order_by(AuditEntry.position)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def at(chain: str, position: int) -> Any:
    return (AuditEntry.chain == chain) & (AuditEntry.position == position)


async def _forge(session: AsyncSession, position: int, prev_hash: str, *, rehash: bool) -> None:
    forged = AuditEntry(
        chain=CHAIN,
        position=position,
        at=utcnow(),
        action="bid.withdrawn",
        tender_id=TENDER,
        details={"bid_id": str(uuid.uuid4())},
        prev_hash=prev_hash,
    )
    forged.entry_hash = audit.entry_hash(prev_hash, audit.content(forged)) if rehash else "f" * 64
    values = {column.name: getattr(forged, column.name) for column in AuditEntry.__table__.columns}
    await session.execute(insert(AuditEntry).values(**values))


async def _renumber(session: AsyncSession, *, from_position: int, by: int) -> None:
    later = (AuditEntry.chain == CHAIN) & (AuditEntry.position >= from_position)
    await session.execute(update(AuditEntry).where(later).values(position=-AuditEntry.position))
    await session.execute(
        update(AuditEntry)
        .where((AuditEntry.chain == CHAIN) & (AuditEntry.position < 0))
        .values(position=-AuditEntry.position + by)
    )


async def _hash_of(session: AsyncSession, position: int) -> str:
    found = await session.scalar(select(AuditEntry.entry_hash).where(at(CHAIN, position)))
    assert found is not None
    return found


async def edit_details(session: AsyncSession) -> None:
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 3)).values(details={"sha256": "0" * 64, "size": 2})
    )


async def edit_actor(session: AsyncSession) -> None:
    await session.execute(
        update(AuditEntry)
        .where(at(audit.PLATFORM_CHAIN, 2))
        .values(actor_user_id=uuid.uuid4(), actor_role="admin")
    )


async def edit_time(session: AsyncSession) -> None:
    moved = (await chain_of(session, CHAIN))[3].at - timedelta(hours=1)
    await session.execute(update(AuditEntry).where(at(CHAIN, 4)).values(at=moved))


async def delete_one(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 2)))


async def delete_the_last(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 5)))


async def delete_and_close_the_gap(session: AsyncSession) -> None:
    await session.execute(delete(AuditEntry).where(at(CHAIN, 2)))
    await _renumber(session, from_position=3, by=-1)
    await session.execute(update(AuditChain).where(AuditChain.chain == CHAIN).values(size=4))


async def swap_two(session: AsyncSession) -> None:
    await session.execute(update(AuditEntry).where(at(CHAIN, 2)).values(position=-1))
    await session.execute(update(AuditEntry).where(at(CHAIN, 3)).values(position=2))
    await session.execute(update(AuditEntry).where(at(CHAIN, -1)).values(position=3))


async def forge_at_the_end(session: AsyncSession) -> None:
    await _forge(session, 6, await _hash_of(session, 5), rehash=True)


async def forge_at_the_end_badly(session: AsyncSession) -> None:
    await _forge(session, 6, "e" * 64, rehash=False)


async def forge_in_the_middle(session: AsyncSession) -> None:
    prev = await _hash_of(session, 2)
    await _renumber(session, from_position=3, by=1)
    await _forge(session, 3, prev, rehash=True)


async def edit_and_rehash(session: AsyncSession) -> None:
    entry = (await chain_of(session, CHAIN))[2]
    entry.details = {"sha256": "0" * 64, "size": 2}
    new_hash = audit.entry_hash(entry.prev_hash, audit.content(entry))
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 3)).values(details=entry.details, entry_hash=new_hash)
    )
    session.expunge_all()


async def edit_and_rehash_the_last(session: AsyncSession) -> None:
    entry = (await chain_of(session, CHAIN))[4]
    entry.details = {"sha256": "0" * 64, "size": 4}
    new_hash = audit.entry_hash(entry.prev_hash, audit.content(entry))
    await session.execute(
        update(AuditEntry).where(at(CHAIN, 5)).values(details=entry.details, entry_hash=new_hash)
    )
    session.expunge_all()


async def rewrite_from(session: AsyncSession, chain: str, position: int) -> str:
    """Change an entry and recompute it and every later one and the chain's head, as an
    administrator who knows the formula would: the chain is consistent again. The new head."""
    entries = await chain_of(session, chain)
    prev = audit.GENESIS if position == 1 else entries[position - 2].entry_hash
    for entry in entries[position - 1 :]:
        details = entry.details | ({"rewritten": True} if entry.position == position else {})
        new_hash = audit.entry_hash(prev, audit.content(entry) | {"details": details})
        await session.execute(
            update(AuditEntry)
            .where(at(chain, entry.position))
            .values(details=details, prev_hash=prev, entry_hash=new_hash)
        )
        prev = new_hash
    await session.execute(
        update(AuditChain).where(AuditChain.chain == chain).values(head_hash=prev)
    )
    session.expunge_all()
    return prev


async def drop_the_head(session: AsyncSession) -> None:
    await session.execute(delete(AuditChain).where(AuditChain.chain == CHAIN))


Tampering = Callable[[AsyncSession], Awaitable[None]]
