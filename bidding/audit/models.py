"""The audit trail's tables: one hash chain per tender plus the platform's, their heads, and
the heads signed as anchors."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from bidding.db import Base, UTCDateTime


class AuditChain(Base):
    """The head of one chain: how many entries it has and the hash of the last.

    Appending locks this row, which keeps positions gapless; a chain per tender means that
    submissions to different tenders never wait for each other here.
    """

    __tablename__ = "audit_chains"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One action, linked to the entry before it in its chain by prev_hash.

    entry_hash = SHA-256(prev_hash bytes || canonical JSON of the entry's content); see
    bidding.audit.service.content. No foreign keys: the trail outlives what it talks about
    and is checked on its own.
    """

    __tablename__ = "audit_entries"

    # The primary key (chain, position) is also how a chain is read: in order.
    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who acted; all null for the platform itself (the scheduler, the command line).
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_organization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    action: Mapped[str] = mapped_column(String(64))
    tender_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    """A chain's head at one size, signed with the platform's Ed25519 key.

    The signature covers bidding.audit.anchors.anchor_body: the chain, its size, the hash of
    its entry at that size and the time of signing. Whoever may write the database can
    recompute a chain but not sign its new head, nor remove a copy of an anchor kept outside.
    """

    __tablename__ = "audit_anchors"
    # One anchor per head, whatever the number of instances that race to sign it.
    __table_args__ = (UniqueConstraint("chain", "size"),)

    # The order anchors were made in: how they are paged.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    anchored_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(88))
