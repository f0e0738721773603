"""Organizations, users, access tokens, failed sign-ins, the addresses sign-ins came from and
the outbox of messages."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.audit import service as audit
from bidding.db import Base, UTCDateTime, utcnow

NAME_KEY_MAX_LENGTH = 800


class Role(enum.StrEnum):
    """What a user may do on the platform."""

    admin = "admin"
    officer = "officer"
    supervisor = "supervisor"
    bidder = "bidder"


class Organization(Base):
    """A legal entity identified by its unified social credit code (统一社会信用代码)."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(18), unique=True)
    # names.name_key(name): unique, so that two names that look the same cannot both be
    # registered, however close together. Set by every path that creates an organization
    # (auth.service); only rows written around it (test factories) have none.
    name_key: Mapped[str | None] = mapped_column(String(NAME_KEY_MAX_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A person who signs in; emails are stored lower-cased, so unique regardless of case."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A self-registration waits, inactive, until the link mailed to its address is followed:
    # the SHA-256 of the link's token, and when the link and the registration lapse.
    activation_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    activation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organization: Mapped[Organization | None] = relationship(lazy="joined")

    @property
    def actor(self) -> audit.Actor:
        """The user as the audit trail names who acted."""
        return audit.Actor(id=self.id, role=self.role.value, organization_id=self.organization_id)


class AccessToken(Base):
    """A bearer or cookie session; only the SHA-256 of the token is stored."""

    __tablename__ = "access_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Set for browser sessions: the cookie alone never authorizes a state change.
    csrf_token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Base):
    """One failed sign-in, counted per account and per client address for throttling.

    A row is written when an attempt is let through, before its password is checked, and
    removed if it succeeds: concurrent attempts count before any of them is answered."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_at", "email", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignInAddress(Base):
    """An address a user signed in from, and when last: other addresses' failures on the
    account neither delay nor throttle a sign-in from it while it is recent."""

    __tablename__ = "sign_in_addresses"
    __table_args__ = (UniqueConstraint("user_id", "client"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client: Mapped[str] = mapped_column(String(64))
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BidderKey(Base):
    """An organization's age recipient for sealing its own bids (online decryption), kept with
    its history: a new registration retires the one before, never deletes it."""

    __tablename__ = "bidder_keys"
    __table_args__ = (
        # One key in use per organization, whatever the races between registrations.
        Index(
            "uq_bidder_keys_current",
            "organization_id",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(100))
    registered_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The key-possession check: the SHA-256 of the value sealed to the recipient, until answered.
    challenge_sha256: Mapped[str | None] = mapped_column(String(64))
    challenge_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """A message to an email address, written in the transaction of what it tells, then
    delivered (SMTP, or the log in development) by whichever instance claims it first."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "sent_at", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    to_address: Mapped[str] = mapped_column(String(254), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    # Erased once an SMTP server has taken it: an activation link is not kept in clear.
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "smtp", or "log" (development without SMTP: the body stays here for an administrator).
    sent_via: Mapped[str | None] = mapped_column(String(8))
    last_error: Mapped[str | None] = mapped_column(String(500))
