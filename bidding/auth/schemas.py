"""Request and response bodies of the accounts API."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bidding.auth import uscc
from bidding.auth.models import Role
from bidding.auth.names import clean_name
from bidding.auth.service import (
    DISPLAY_NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    check_organization_name,
    check_password,
    normalize_email,
)


def _name(max_length: int) -> AfterValidator:
    return AfterValidator(lambda value: clean_name(value, max_length=max_length))


def _organization_name(value: str) -> str:
    name, _key = check_organization_name(value)
    return name


# Raw bounds keep hostile input small; the validators (shared with the command line) say
# what exactly is wrong.
Email = Annotated[
    str, Field(max_length=320, examples=["li.wei@example.com"]),
    AfterValidator(normalize_email),
]  # fmt: skip
Password = Annotated[
    str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    AfterValidator(check_password),
]  # fmt: skip
CreditCode = Annotated[
    str, Field(max_length=32, examples=["91350100M000100Y43"]), AfterValidator(uscc.validate)
]


class RequestBody(BaseModel):
    """Base of request bodies: an unknown field is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class OrganizationCreate(RequestBody):
    name: Annotated[
        str,
        Field(
            max_length=1000,
            description="NFKC-normalized; no control, invisible or direction-changing character",
        ),
        AfterValidator(_organization_name),
    ]
    code: CreditCode


class Registration(RequestBody):
    """A bidder signing up for itself and its organization."""

    email: Email
    password: Password
    display_name: Annotated[str, Field(max_length=1000), _name(DISPLAY_NAME_MAX_LENGTH)]
    organization: OrganizationCreate


REGISTRATION_ACCEPTED = (
    "A message about this registration is on its way to the email address given: follow it "
    "to go on. Nothing else is told here, whether the address or the organization is new or "
    "not."
)


class RegistrationAccepted(BaseModel):
    """The one answer to every well-formed registration, whatever comes of it."""

    status: Literal["check_your_mailbox"] = "check_your_mailbox"
    detail: str = REGISTRATION_ACCEPTED


# The token of an activation link: 32 random bytes in URL-safe base64 (43 characters).
ActivationToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{20,100}$")]


class Activation(RequestBody):
    """The token of the link mailed at registration, and the password chosen then."""

    token: ActivationToken
    password: Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)]


class OutboxMessageRead(BaseModel):
    """A message of the outbox as an administrator sees it; the body is gone once an SMTP
    server has taken it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    to_address: str
    kind: str
    subject: str
    body: str | None
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    sent_via: str | None
    last_error: str | None


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    code: str


class UserRead(BaseModel):
    """An account as its owner sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    organization: OrganizationRead | None


class TokenRead(BaseModel):
    """The answer to a sign-in, shaped as OAuth2 (RFC 6749 §5.1) expects."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 scheme name)
    expires_in: int = Field(description="seconds until the token expires")
    csrf_token: str | None = Field(
        default=None,
        description="cookie sessions only: send it as X-CSRF-Token on every state change",
    )


# --- a bidder's own key (online decryption) ------------------------------------------------


class KeyRegistration(RequestBody):
    """The organization's age recipient (age1…); its identity stays with the bidder."""

    recipient: Annotated[str, Field(max_length=200, examples=["age1…"])]


class BidderKeyRead(BaseModel):
    """One registered recipient: when, by whom, whether its holder proved it, when retired."""

    model_config = ConfigDict(from_attributes=True)

    recipient: str
    registered_at: datetime
    registered_by_id: uuid.UUID
    verified_at: datetime | None
    retired_at: datetime | None


class BidderKeys(BaseModel):
    """The organization's key in use and every key it had before."""

    current: BidderKeyRead | None
    history: list[BidderKeyRead]


class KeyChallenge(BaseModel):
    """A random value sealed to the key in use (base64 of the age file), to be answered."""

    challenge: str
    expires_at: datetime


class KeyChallengeAnswer(RequestBody):
    """The plaintext of the challenge, unsealed with the organization's identity."""

    answer: Annotated[str, Field(max_length=200)]
