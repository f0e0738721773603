"""Recording security-relevant actions in hash chains, reading them, and verifying them.

Each tender has a chain of its own ("tender:<id>"), and accounts and the platform's own work
share one ("platform"). An entry is appended in the transaction of the action it records, so
an action that rolls back leaves none, and a committed one always has its entry. Appending
locks the chain's head row: positions stay gapless and follow time, and since a bid already
holds its tender's row lock, the rush at a deadline waits for no other tender's chain.

entry_hash = SHA-256(bytes of prev_hash || canonical JSON of content(entry)); the first
entry of a chain links to GENESIS. Nothing secret is recorded: no password, token, file key
or plaintext, only what an auditor needs (who, what, when, and digests).
"""

import enum
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bidding.audit.models import AuditChain, AuditEntry
from bidding.crypto.canonical import canonical_json
from bidding.db import utcnow

PLATFORM_CHAIN = "platform"
_TENDER_CHAIN = "tender:"
GENESIS = "0" * 64
_ACTOR = "bidding.audit.actor"
# How far from its place a moved entry is looked for, when telling "moved" from "edited".
_MOST_MOVED = 1000


def tender_chain(tender_id: uuid.UUID) -> str:
    """The name of a tender's chain."""
    return f"{_TENDER_CHAIN}{tender_id}"


def tender_of(chain: str) -> uuid.UUID | None:
    """The tender whose chain this is; None for the platform's, or a name no chain has."""
    if not chain.startswith(_TENDER_CHAIN):
        return None
    try:
        return uuid.UUID(chain.removeprefix(_TENDER_CHAIN))
    except ValueError:
        return None


# --- recording -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who an entry is by: a user, with the role and organization it acted in."""

    id: uuid.UUID
    role: str
    organization_id: uuid.UUID | None


class _Default(enum.Enum):
    SESSION_ACTOR = "the user the session acts for"


SESSION_ACTOR = _Default.SESSION_ACTOR


def act_as(session: AsyncSession, actor: Actor | None) -> None:
    """Name the user this session's unit of work acts for (the request's signed-in user):
    what it records is theirs unless a service names another actor."""
    session.info[_ACTOR] = actor


async def record(
    *,
    session: AsyncSession,
    action: str,
    tender_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
    actor: Actor | _Default | None = SESSION_ACTOR,
) -> AuditEntry:
    """Append an entry to the tender's chain (the platform's without a tender), in the
    session's transaction. The actor is by default the user the session acts for, or none
    (the platform itself). Returns the entry as written (not added to the session)."""
    by: Actor | None = session.info.get(_ACTOR) if isinstance(actor, _Default) else actor
    chain = PLATFORM_CHAIN if tender_id is None else tender_chain(tender_id)
    # The action's own writes go first, so that the chain's lock is the last one taken.
    await session.flush()
    # Core statements on the session's connection: the ORM's bookkeeping would cost more
    # than the rest of the entry, on every bid of a deadline rush.
    connection = await session.connection()
    size, prev_hash = await _lock_head(connection, chain)
    entry = AuditEntry(
        chain=chain,
        position=size + 1,
        # Read once the head is locked, so that times follow positions.
        at=utcnow(),
        actor_user_id=None if by is None else by.id,
        actor_role=None if by is None else by.role,
        actor_organization_id=None if by is None else by.organization_id,
        action=action,
        tender_id=tender_id,
        details=dict(details or {}),
        prev_hash=prev_hash,
    )
    entry.entry_hash = entry_hash(prev_hash, content(entry))
    await connection.execute(
        update(AuditChain)
        .where(AuditChain.chain == chain)
        .values(size=entry.position, head_hash=entry.entry_hash)
    )
    await connection.execute(
        insert(AuditEntry).values({name: getattr(entry, name) for name in _COLUMNS})
    )
    return entry


_COLUMNS = tuple(column.key for column in AuditEntry.__table__.columns)


async def _lock_head(connection: AsyncConnection, chain: str) -> tuple[int, str]:
    """The chain's size and head hash, its row locked until the transaction ends."""
    statement = (
        select(AuditChain.size, AuditChain.head_hash)
        .where(AuditChain.chain == chain)
        .with_for_update()
    )
    head = (await connection.execute(statement)).first()
    if head is None:
        dialect = connection.dialect.name
        insert_new = sqlite_insert if dialect == "sqlite" else postgresql_insert
        await connection.execute(
            insert_new(AuditChain)
            .values(chain=chain, size=0, head_hash=GENESIS)
            .on_conflict_do_nothing()
        )
        head = (await connection.execute(statement)).one()
    return int(head.size), str(head.head_hash)


def _time(moment: datetime) -> str:
    # Full precision, as stored: the hash must be recomputable from the row.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def content(entry: AuditEntry) -> dict[str, Any]:
    """What an entry's hash covers: everything in it but the hashes."""
    actor = None
    if (entry.actor_user_id, entry.actor_role, entry.actor_organization_id) != (None,) * 3:
        actor = {
            "user_id": _text(entry.actor_user_id),
            "role": entry.actor_role,
            "organization_id": _text(entry.actor_organization_id),
        }
    return {
        "chain": entry.chain,
        "position": entry.position,
        "at": _time(entry.at),
        "actor": actor,
        "action": entry.action,
        "tender_id": _text(entry.tender_id),
        "details": entry.details,
    }


def entry_hash(prev_hash: str, entry_content: dict[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's canonical content, in hex."""
    try:
        prev = bytes.fromhex(prev_hash)
    except ValueError:
        prev = prev_hash.encode("utf-8", "surrogatepass")  # not a hash: never matches one
    return hashlib.sha256(prev + canonical_json(entry_content)).hexdigest()


# --- reading -------------------------------------------------------------------------------


async def after(
    *, session: AsyncSession, chain: str, position: int = 0, limit: int | None = None
) -> list[AuditEntry]:
    """The chain's entries after a position, in order."""
    statement = (
        select(AuditEntry)
        .where(AuditEntry.chain == chain, AuditEntry.position > position)
        .order_by(AuditEntry.position)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list(await session.scalars(statement))


async def head(*, session: AsyncSession, chain: str) -> dict[str, Any]:
    """The chain's committed head, as a signed document states it: {"chain", "size", "head"}
    (size 0 and GENESIS for a chain without entries)."""
    row = (
        await session.execute(
            select(AuditChain.size, AuditChain.head_hash).where(AuditChain.chain == chain)
        )
    ).first()
    size, head_hash = (0, GENESIS) if row is None else (int(row.size), str(row.head_hash))
    return {"chain": chain, "size": size, "head": head_hash}


def envelope(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the API serves it: its content exactly as hashed, and both hashes."""
    return content(entry) | {"prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash}


# --- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainHead:
    """A chain that verified: its entries and the hash of its last."""

    chain: str
    size: int
    head_hash: str


@dataclass(frozen=True)
class BrokenLink:
    """The first place where a chain is not what was written.

    problem is one of: edited (an entry or the head differs from what was hashed), missing
    (an entry was removed), reordered (entries moved), inserted (an entry that was never
    appended).
    """

    chain: str
    position: int
    problem: str
    detail: str

    def __str__(self) -> str:
        return f"chain {self.chain}, position {self.position}: {self.problem} ({self.detail})"


@dataclass(frozen=True)
class Verification:
    """Every chain that verified, and the first broken link of each that did not."""

    chains: list[ChainHead]
    broken: list[BrokenLink]


async def verify(*, session: AsyncSession, page_size: int = 1000) -> Verification:
    """Walk every chain in order, recompute each hash and check positions and links.

    Read it in one snapshot (REPEATABLE READ, or an SQLite read transaction), or entries
    appended meanwhile may look inserted.
    """
    heads = {head.chain: head for head in await session.scalars(select(AuditChain))}
    names = set(heads) | set(await session.scalars(select(AuditEntry.chain).distinct()))
    ordered = sorted(names, key=lambda name: (name != PLATFORM_CHAIN, name))
    chains: list[ChainHead] = []
    broken: list[BrokenLink] = []
    for name in ordered:
        outcome = await _ChainCheck(session, name, heads.get(name), page_size).run()
        if isinstance(outcome, BrokenLink):
            broken.append(outcome)
        else:
            chains.append(outcome)
    return Verification(chains=chains, broken=broken)


@dataclass
class _ChainCheck:
    session: AsyncSession
    chain: str
    head: AuditChain | None
    page_size: int

    async def run(self) -> ChainHead | BrokenLink:
        expected, prev = 1, GENESIS
        async for entry in self._walk():
            broken = await self._check(entry, expected, prev)
            if broken is not None:
                return broken
            expected, prev = expected + 1, entry.entry_hash
        size = expected - 1
        if self.head is None:
            return self._broken(size, "missing", "the chain's head row is gone")
        if size < self.head.size:
            return self._broken(
                size + 1,
                "missing",
                f"the chain ends at {size} but its head counts {self.head.size} entries",
            )
        if self.head.head_hash != prev:
            return self._broken(
                size,
                "edited",
                "the last entry's hash is not the chain's head: it was changed and rehashed",
            )
        return ChainHead(self.chain, size, prev)

    async def _walk(self) -> AsyncIterator[AuditEntry]:
        last: int | None = None
        while True:
            statement = select(AuditEntry).where(AuditEntry.chain == self.chain)
            if last is not None:
                statement = statement.where(AuditEntry.position > last)
            page = list(
                await self.session.scalars(
                    statement.order_by(AuditEntry.position).limit(self.page_size)
                )
            )
            for entry in page:
                yield entry
            self.session.expunge_all()  # memory stays flat over a long chain
            if len(page) < self.page_size:
                return
            last = page[-1].position

    def _broken(self, position: int, problem: str, detail: str) -> BrokenLink:
        return BrokenLink(self.chain, position, problem, detail)

    async def _check(self, entry: AuditEntry, position: int, prev: str) -> BrokenLink | None:
        if entry.position > position:
            return self._broken(
                position, "missing", f"there is no entry; the next one is at {entry.position}"
            )
        if entry.position < position:  # below 1: no append writes there
            return self._broken(entry.position, "inserted", "a position outside the chain")
        if self.head is not None and position > self.head.size:
            return self._broken(
                position, "inserted", f"beyond the chain's head, which counts {self.head.size}"
            )
        if entry_hash(entry.prev_hash, content(entry)) != entry.entry_hash:
            return await self._misplaced_or_edited(entry, position, prev)
        if entry.prev_hash != prev:
            return await self._relinked(entry, position)
        return None

    async def _misplaced_or_edited(self, entry: AuditEntry, position: int, prev: str) -> BrokenLink:
        """An entry that does not hash at its position: written elsewhere, or changed."""
        written = await self._written_at(entry, position)
        if written is None:
            return self._broken(
                position, "edited", "the entry does not match its hash: its content was changed"
            )
        if written < position:
            return self._broken(
                written,
                "inserted",
                f"never appended: it pushes the entry appended at {written} to {position}",
            )
        # The entry appended here is either elsewhere in the chain (moved) or gone.
        for candidate in await self.session.scalars(
            select(AuditEntry).where(AuditEntry.chain == self.chain, AuditEntry.prev_hash == prev)
        ):
            if candidate.entry_hash == entry_hash(
                prev, content(candidate) | {"position": position}
            ):
                return self._broken(
                    position,
                    "reordered",
                    f"it holds the entry appended at {written}, and the one appended here is "
                    f"at {candidate.position}",
                )
        return self._broken(
            position,
            "missing",
            f"the entry appended here is gone and later ones were moved up: it holds the one "
            f"appended at {written}",
        )

    async def _written_at(self, entry: AuditEntry, position: int) -> int | None:
        """The position at which the entry's hash was computed, if any: nearest first."""
        last = await self.session.scalar(
            select(func.max(AuditEntry.position)).where(AuditEntry.chain == self.chain)
        )
        bound = max(last or 0, self.head.size if self.head else 0) + 1
        body = content(entry)
        for distance in range(1, min(bound, _MOST_MOVED) + 1):
            for candidate in (position + distance, position - distance):
                if 1 <= candidate <= bound and entry.entry_hash == entry_hash(
                    entry.prev_hash, body | {"position": candidate}
                ):
                    return candidate
        return None

    async def _relinked(self, entry: AuditEntry, position: int) -> BrokenLink:
        """An entry intact in itself whose link is not the entry before it."""
        linked: int | None = 0
        if entry.prev_hash != GENESIS:
            linked = await self.session.scalar(
                select(AuditEntry.position).where(
                    AuditEntry.chain == self.chain, AuditEntry.entry_hash == entry.prev_hash
                )
            )
        if linked is None and position == 1:
            return self._broken(position, "edited", "the first entry does not link to GENESIS")
        if linked is None:
            return self._broken(
                position - 1,
                "edited",
                f"the entry was changed and rehashed: the one at {position} links to a hash "
                "that no entry has",
            )
        if linked == position - 2:
            return self._broken(
                position - 1,
                "inserted",
                f"never appended: the entry at {position} links past it to {linked}",
            )
        return self._broken(
            position,
            "reordered",
            f"it follows the entry at {linked}, not the one at {position - 1}",
        )
