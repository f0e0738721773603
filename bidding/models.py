"""Every model, imported once so that the metadata Alembic compares is complete."""

from bidding.audit.models import AuditChain, AuditEntry
from bidding.auth.models import (
    AccessToken,
    BidderKey,
    LoginFailure,
    Organization,
    OutboxMessage,
    User,
)
from bidding.db import Base
from bidding.opening.models import Opening, OpeningEvent
from bidding.tenders.models import Bid, LogEntry, Tender, TenderAmendment

__all__ = [
    "AccessToken",
    "AuditChain",
    "AuditEntry",
    "Base",
    "Bid",
    "BidderKey",
    "LogEntry",
    "LoginFailure",
    "Opening",
    "OpeningEvent",
    "Organization",
    "OutboxMessage",
    "Tender",
    "TenderAmendment",
    "User",
]
