"""Anchors: the chains' heads signed with the platform's key, so that a chain recomputed by
whoever may write the database no longer verifies.

Every BIDDING_AUDIT_ANCHOR_SECONDS each instance signs the head of every chain that moved
since its last anchor (anchor_moved_chains); the chain's head row, locked while it is signed,
and the unique (chain, size) make one anchor per head however many instances race. The
platform's chain is anchored whenever it moved. A tender's chain is anchored only once its
opening record is out, and the record itself carries the chain's head at that moment: before
it, a tender's chain grows with every bid, and its anchors, which are public, would tell that
somebody bid (docs/security.md, the fact of bidding).

Anchors are published (GET /api/v1/audit/anchors) so that copies kept outside the database
(`bidding audit verify --anchors FILE`) show a rewrite even when the anchors table is
rewritten too: an anchor cannot be forged without the signing key, only removed.
"""

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.audit import service as audit
from bidding.audit.models import AuditAnchor, AuditChain, AuditEntry
from bidding.crypto.signing import SigningKey, VerifyKey, verify_document
from bidding.db import iso_utc, utcnow

ANCHOR_KIND = "audit_anchor"
# Bound parameters per IN list: SQLite allows few.
_CHUNK = 500

# Of these tenders, those whose opening record is out: their chains may be anchored.
Recorded = Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[Iterable[uuid.UUID]]]
# A signed opening record: its tender, the record as stored, its key id and signature.
SignedRecord = tuple[uuid.UUID, str | None, str | None, str | None]
# Every signed opening record, read page by page.
SignedRecords = Callable[[AsyncSession, int], AsyncIterator[SignedRecord]]


@dataclass(frozen=True)
class Anchor:
    """An anchor as published: the signed head and its signature."""

    chain: str
    size: int
    head: str
    anchored_at: str
    key_id: str
    signature: str
    id: int | None = None

    def body(self) -> dict[str, Any]:
        """What the signature covers, as canonical JSON."""
        return anchor_body(
            chain=self.chain, size=self.size, head=self.head, anchored_at=self.anchored_at
        )

    def to_dict(self) -> dict[str, Any]:
        """The published form, as GET /api/v1/audit/anchors serves it."""
        return {
            "id": self.id,
            "chain": self.chain,
            "size": self.size,
            "head": self.head,
            "anchored_at": self.anchored_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def anchor_body(*, chain: str, size: int, head: str, anchored_at: str) -> dict[str, Any]:
    """The document an anchor signs: the chain, its size, the hash of its entry at that size
    (its head then) and when it was signed."""
    return {
        "kind": ANCHOR_KIND,
        "chain": chain,
        "size": size,
        "head": head,
        "anchored_at": anchored_at,
    }


def published(row: AuditAnchor) -> Anchor:
    """A stored anchor as published."""
    return Anchor(
        chain=row.chain,
        size=row.size,
        head=row.head_hash,
        anchored_at=iso_utc(row.anchored_at),
        key_id=row.key_id,
        signature=row.signature,
        id=row.id,
    )


# --- anchoring -----------------------------------------------------------------------------


async def anchor_moved_chains(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    signing: SigningKey,
    recorded: Recorded,
    clock: Callable[[], datetime] = utcnow,
) -> list[Anchor]:
    """Sign the head of every chain that may be anchored and moved since its last anchor;
    returns the anchors made by this call (another instance may have made the others)."""
    async with session_factory() as session:
        moved = await _moved(session, recorded)
    made = []
    for chain in moved:
        anchor = await _anchor(session_factory, chain, signing, clock)
        if anchor is not None:
            made.append(anchor)
    return made


async def _moved(session: AsyncSession, recorded: Recorded) -> list[str]:
    """The chains longer than their last anchor: the platform's, then finished tenders'."""
    last = (
        select(func.max(AuditAnchor.size))
        .where(AuditAnchor.chain == AuditChain.chain)
        .scalar_subquery()
    )
    names = list(
        await session.scalars(
            select(AuditChain.chain).where(AuditChain.size > func.coalesce(last, 0))
        )
    )
    tenders = {
        tender_id: name for name in names if (tender_id := audit.tender_of(name)) is not None
    }
    finished: set[uuid.UUID] = set()
    ids = list(tenders)
    for start in range(0, len(ids), _CHUNK):
        finished |= set(await recorded(session, ids[start : start + _CHUNK]))
    anchorable = [name for name in names if name == audit.PLATFORM_CHAIN]
    return anchorable + sorted(tenders[tender_id] for tender_id in finished)


async def _anchor(
    session_factory: async_sessionmaker[AsyncSession],
    chain: str,
    signing: SigningKey,
    clock: Callable[[], datetime],
) -> Anchor | None:
    """Sign the chain's head unless it is anchored already; one transaction per chain, so that
    no appender waits for more than one signature."""
    async with session_factory() as session, session.begin():
        # Locked: a second instance waits here, then finds the anchor made and signs nothing.
        head = (
            await session.execute(
                select(AuditChain.size, AuditChain.head_hash)
                .where(AuditChain.chain == chain)
                .with_for_update()
            )
        ).first()
        if head is None or head.size < 1:
            return None
        size, head_hash = int(head.size), str(head.head_hash)
        taken = await session.scalar(
            select(AuditAnchor.id).where(AuditAnchor.chain == chain, AuditAnchor.size == size)
        )
        if taken is not None:
            return None
        now = clock()
        at = iso_utc(now)
        signed = signing.sign_document(
            anchor_body(chain=chain, size=size, head=head_hash, anchored_at=at)
        )
        dialect = session.get_bind().dialect.name
        insert_new = sqlite_insert if dialect == "sqlite" else postgresql_insert
        anchor_id = await session.scalar(
            insert_new(AuditAnchor)
            .values(
                chain=chain,
                size=size,
                head_hash=head_hash,
                anchored_at=now,
                key_id=signed["key_id"],
                signature=signed["signature"],
            )
            .on_conflict_do_nothing()
            .returning(AuditAnchor.id)
        )
        if anchor_id is None:
            return None
        return Anchor(chain, size, head_hash, at, signed["key_id"], signed["signature"], anchor_id)


# --- reading -------------------------------------------------------------------------------


async def after(
    *, session: AsyncSession, position: int, limit: int, chain: str | None = None
) -> list[Anchor]:
    """The anchors made after the one with this id, in order; of one chain, or all."""
    statement = select(AuditAnchor).where(AuditAnchor.id > position)
    if chain is not None:
        statement = statement.where(AuditAnchor.chain == chain)
    rows = await session.scalars(statement.order_by(AuditAnchor.id).limit(limit))
    return [published(row) for row in rows]


def parse_published(document: Any) -> list[Anchor]:
    """Anchors kept outside: a page as GET /api/v1/audit/anchors serves it, or the list of its
    "anchors"; ValueError naming the first malformed one."""
    items = document.get("anchors") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ValueError('expected the anchors as served: {"anchors": [...]} or a list')
    anchors = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"anchor {index}: not an object")
        texts = {key: item.get(key) for key in ("chain", "head", "anchored_at", "key_id")}
        texts["signature"] = item.get("signature")
        for key, value in texts.items():
            if not isinstance(value, str):
                raise ValueError(f"anchor {index}: {key} must be a string")
        size = item.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"anchor {index}: size must be a whole number from 1")
        anchors.append(
            Anchor(
                chain=str(texts["chain"]),
                size=size,
                head=str(texts["head"]),
                anchored_at=str(texts["anchored_at"]),
                key_id=str(texts["key_id"]),
                signature=str(texts["signature"]),
            )
        )
    return anchors


# --- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contradiction:
    """A signed head that the chain does not bear out, or a signature that does not hold."""

    chain: str
    size: int | None
    detail: str

    def __str__(self) -> str:
        where = f"chain {self.chain}"
        if self.size is not None:
            where += f", anchored size {self.size}"
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class AnchorCheck:
    """What the signed heads say about the chains."""

    contradictions: list[Contradiction]
    # Each chain's largest size that a signed head confirms.
    anchored: dict[str, int]
    checked: int


@dataclass(frozen=True)
class _Claim:
    """A head with a valid signature, to be borne out by its chain."""

    order: int
    chain: str
    size: int
    head: str
    source: str


async def check(
    *,
    session: AsyncSession,
    verification: audit.Verification,
    keys: Mapping[str, VerifyKey] | None,
    records: SignedRecords,
    outside: Sequence[Anchor] = (),
    page_size: int = 1000,
) -> AnchorCheck:
    """Check every signed head against the chains that verification walked: each stored
    anchor, each opening record's audit head, and each anchor kept outside; their
    signatures with the platform's keys (None: not at hand), and that the chain's entry at
    the signed size has the signed hash. An outside anchor missing from the database is a
    contradiction too: anchors are never removed."""
    heads = _SignedHeads(keys)
    await heads.stored(session, page_size)
    await heads.records(records(session, page_size))
    heads.outside(outside)
    found, anchored = await _compare(session, verification, heads.claims)
    # A chain that contradicts a head is the news; then heads altered or removed.
    problems = sorted(found, key=_first) + sorted(heads.problems, key=_first)
    return AnchorCheck(
        contradictions=[problem for _, problem in problems],
        anchored=anchored,
        checked=len(heads.claims),
    )


def _first(numbered: tuple[int, Contradiction]) -> int:
    return numbered[0]


@dataclass
class _SignedHeads:
    """The signed heads gathered in order: those whose signature holds, the others named."""

    keys: Mapping[str, VerifyKey] | None
    claims: list[_Claim] = field(default_factory=list)
    problems: list[tuple[int, Contradiction]] = field(default_factory=list)
    kept: dict[tuple[str, int], Anchor] = field(default_factory=dict)
    order: int = 0

    def _refused(self, body: Any, key_id: str, signature: str) -> str | None:
        """Why the signature does not hold, or None."""
        if self.keys is None:
            return "cannot be checked: the platform's public key is not at hand"
        if key_id not in self.keys:
            return f"is signed by key {key_id}, which is not the platform's"
        if not verify_document(body, key_id=key_id, signature=signature, keys=self.keys):
            return "does not carry the platform's signature: it was altered"
        return None

    def _problem(self, chain: str, size: int | None, detail: str) -> None:
        self.problems.append((self.order, Contradiction(chain, size, detail)))

    def _anchor(self, anchor: Anchor, source: str) -> bool:
        self.order += 1
        refused = self._refused(anchor.body(), anchor.key_id, anchor.signature)
        if refused is not None:
            self._problem(anchor.chain, anchor.size, f"{source} {refused}")
            return False
        self.claims.append(_Claim(self.order, anchor.chain, anchor.size, anchor.head, source))
        return True

    async def stored(self, session: AsyncSession, page_size: int) -> None:
        """The anchors table, in the order the anchors were made."""
        last = 0
        while True:
            page = await after(session=session, position=last, limit=page_size)
            for anchor in page:
                self.kept[(anchor.chain, anchor.size)] = anchor
                self._anchor(anchor, f"anchor {anchor.id} of {anchor.anchored_at}")
            if len(page) < page_size:
                return
            last = page[-1].id or last

    async def records(self, signed: AsyncIterator[SignedRecord]) -> None:
        """The audit head in each signed opening record."""
        async for tender_id, text, key_id, signature in signed:
            try:
                record = json.loads(text or "")
            except ValueError:
                record = text  # not JSON: its signature cannot hold
            self.order += 1
            stated = record.get("audit") if isinstance(record, dict) else None
            refused = self._refused(record, key_id or "", signature or "")
            if refused is not None:
                size = stated.get("size") if isinstance(stated, dict) else None
                self._problem(
                    audit.tender_chain(tender_id),
                    size if isinstance(size, int) else None,
                    f"the opening record {refused}",
                )
            elif isinstance(stated, dict):  # records signed before anchoring have none
                self.claims.append(
                    _Claim(
                        self.order,
                        stated["chain"],
                        stated["size"],
                        stated["head"],
                        "the signed opening record",
                    )
                )

    def outside(self, anchors: Sequence[Anchor]) -> None:
        """Copies kept outside the database: each must also be in the anchors table."""
        for anchor in anchors:
            source = f"the outside copy of the anchor of {anchor.anchored_at}"
            if not self._anchor(anchor, source):
                continue
            kept = self.kept.get((anchor.chain, anchor.size))
            if kept is None:
                detail = f"{source} is not among the database's anchors: it was removed"
                self._problem(anchor.chain, anchor.size, detail)
            elif (kept.head, kept.anchored_at, kept.signature) != (
                anchor.head,
                anchor.anchored_at,
                anchor.signature,
            ):
                detail = f"{source} differs from the database's anchor {kept.id}"
                self._problem(anchor.chain, anchor.size, detail)


async def _compare(
    session: AsyncSession, verification: audit.Verification, claims: Iterable[_Claim]
) -> tuple[list[tuple[int, Contradiction]], dict[str, int]]:
    """The claims the chains contradict, and each chain's largest size confirmed."""
    sizes = {head.chain: head.size for head in verification.chains}
    broken = {link.chain for link in verification.broken}
    wanted: dict[str, set[int]] = {}
    for claim in claims:
        if claim.chain in sizes and claim.size <= sizes[claim.chain]:
            wanted.setdefault(claim.chain, set()).add(claim.size)
    hashes = await _hashes_at(session, wanted)
    problems: list[tuple[int, Contradiction]] = []
    anchored: dict[str, int] = {}
    for claim in claims:
        if claim.chain in broken:
            continue  # its first broken link is the news
        size = sizes.get(claim.chain)
        if size is None:
            detail = f"{claim.source} signed it, but the chain is gone"
        elif claim.size > size:
            detail = (
                f"{claim.source} signed {claim.size} entries, but the chain has {size}: "
                "entries were removed"
            )
        elif (found := hashes.get((claim.chain, claim.size))) != claim.head:
            detail = (
                f"the entry there hashes to {found}, but "
                f"{claim.source} signed {claim.head}: the chain was rewritten"
            )
        else:
            anchored[claim.chain] = max(anchored.get(claim.chain, 0), claim.size)
            continue
        problems.append((claim.order, Contradiction(claim.chain, claim.size, detail)))
    return problems, anchored


async def _hashes_at(
    session: AsyncSession, wanted: Mapping[str, set[int]]
) -> dict[tuple[str, int], str]:
    """The stored hash of each chain's entries at these positions."""
    found: dict[tuple[str, int], str] = {}
    for chain, positions in wanted.items():
        ordered = sorted(positions)
        for start in range(0, len(ordered), _CHUNK):
            rows = await session.execute(
                select(AuditEntry.position, AuditEntry.entry_hash).where(
                    AuditEntry.chain == chain,
                    AuditEntry.position.in_(ordered[start : start + _CHUNK]),
                )
            )
            for position, entry_hash in rows:
                found[(chain, int(position))] = str(entry_hash)
    return found
