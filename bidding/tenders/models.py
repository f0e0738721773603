"""Tenders and their amendments."""

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.db import Base, UTCDateTime, utcnow
from bidding.rules.terms import Terms


class TenderStatus(enum.StrEnum):
    """The lifecycle of docs/architecture.md, "The life of a tender"."""

    draft = "draft"
    published = "published"
    opening = "opening"
    opened = "opened"
    failed = "failed"
    cancelled = "cancelled"


class OpeningMode(enum.StrEnum):
    """Who decrypts the bids at the opening."""

    platform = "platform"
    bidder = "bidder"


class Tender(Base):
    """A call for bids. Money is kept as decimal text, exact on every backend."""

    __tablename__ = "tenders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    buyer_name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    ceiling_price: Mapped[str] = mapped_column(String(32))
    floor_price: Mapped[str | None] = mapped_column(String(32))
    bid_deadline: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    opening_mode: Mapped[OpeningMode] = mapped_column(
        Enum(OpeningMode, native_enum=False, length=16), default=OpeningMode.platform
    )
    decryption_window_minutes: Mapped[int] = mapped_column(Integer, default=30)
    backup_decryption: Mapped[bool] = mapped_column(Boolean, default=False)
    min_bids: Mapped[int] = mapped_column(Integer, default=3)
    scoring: Mapped[dict[str, Any]] = mapped_column(JSON)
    bid_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    public_opening: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[TenderStatus] = mapped_column(
        Enum(TenderStatus, native_enum=False, length=16), default=TenderStatus.draft, index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # Set at publication: the public halves, and the secrets wrapped under the master key.
    opening_recipient: Mapped[str | None] = mapped_column(String(100))
    coefficient_commitment: Mapped[str | None] = mapped_column(String(64))
    opening_identity_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    coefficient_seed_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Leaves in the tender's receipt log. Claiming the next position is a conditional
    # UPDATE of this row, which also takes the row lock that keeps positions gapless.
    log_size: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    amendments: Mapped[list["TenderAmendment"]] = relationship(
        back_populates="tender", order_by="TenderAmendment.number", lazy="selectin"
    )
    documents: Mapped[list["TenderDocument"]] = relationship(
        order_by="TenderDocument.uploaded_at", lazy="selectin"
    )

    @property
    def terms(self) -> Terms:
        """What the opening holds this tender's bids to."""
        return Terms.of(
            bid_fields=self.bid_fields,
            ceiling_price=self.ceiling_price,
            floor_price=self.floor_price,
            scoring=self.scoring,
        )


class TenderAmendment(Base):
    """One recorded change to a published tender: which fields, from what, to what."""

    __tablename__ = "tender_amendments"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tender_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenders.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    amended_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amended_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    tender: Mapped[Tender] = relationship(back_populates="amendments")


class TenderDocument(Base):
    """A file of the tender (its conditions, drawings, a bill of quantities), public with it.

    The bytes live in the blob store under their SHA-256, like sealed bids.
    """

    __tablename__ = "tender_documents"
    __table_args__ = (UniqueConstraint("tender_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tender_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenders.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BidStatus(enum.StrEnum):
    """Only the latest version of a bidder's bid counts; a withdrawal ends it."""

    active = "active"
    superseded = "superseded"
    withdrawn = "withdrawn"


class Bid(Base):
    """One version of an organization's sealed bid; the ciphertext lives in the blob store."""

    __tablename__ = "bids"
    __table_args__ = (
        UniqueConstraint("tender_id", "bidder_id", "version"),
        UniqueConstraint("tender_id", "bidder_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tender_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenders.id", ondelete="RESTRICT"), index=True
    )
    # The bidder is the organization: a company hands in one bid, whoever uploads it.
    bidder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    submitted_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[BidStatus] = mapped_column(
        Enum(BidStatus, native_enum=False, length=16), default=BidStatus.active
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # Bidder mode: wrong file keys revealed for this bid; a few are allowed, not a search.
    reveal_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LogEntry(Base):
    """A leaf of a tender's append-only receipt log: the signed receipt of a bid or withdrawal."""

    __tablename__ = "log_entries"
    __table_args__ = (UniqueConstraint("tender_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tender_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenders.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    bid_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bids.id", ondelete="RESTRICT"), index=True
    )
    bidder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    # Exactly the canonical JSON that was hashed and signed, so proofs never re-encode.
    body: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(100))
