"""The opening of a tender: who runs it (the lease), its numbered events, its signed record."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bidding.db import Base, UTCDateTime


class Opening(Base):
    """One row per tender that has begun opening: the lease, the event counter, the record."""

    __tablename__ = "openings"

    tender_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenders.id", ondelete="RESTRICT"), primary_key=True
    )
    # The instance that runs the opening, until lease_expires_at unless it renews the lease.
    # Every pipeline event is written under the condition that this is still the writer, so an
    # instance that lost its lease cannot write a step twice.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The seq of the latest event. Claiming the next seq is an UPDATE of this row, whose row
    # lock keeps seq gapless and makes commit order follow it.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The row may come first with an event before the opening (a check-in), so this is unset.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the opening must be looked at again although nobody holds it: the close of a
    # bidder-mode decryption window (sooner if every bid is decrypted before).
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The signed opening record: exactly the canonical JSON that was signed.
    record: Mapped[str | None] = mapped_column(Text)
    record_key_id: Mapped[str | None] = mapped_column(String(16))
    record_signature: Mapped[str | None] = mapped_column(String(100))


class OpeningEvent(Base):
    """One step of an opening as every watcher sees it: seq is 1, 2, 3… per tender."""

    __tablename__ = "opening_events"
    __table_args__ = (UniqueConstraint("tender_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The unique (tender_id, seq) index serves reading a tender's events in order.
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
