"""Request and response bodies of the tender API; money and weights are decimal strings."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bidding.db import utcnow
from bidding.rules import forms, scoring
from bidding.rules.forms import MAX_BID_FIELDS, PRICE_FIELD, BidFieldType
from bidding.rules.money import (
    DECIMAL_TEXT,
    is_decimal_text,
    is_whole_cents,
    money_text,
    plain_decimal_text,
)
from bidding.rules.terms import price_range_problem
from bidding.tenders.models import OpeningMode, TenderStatus

T = TypeVar("T")


def _refuse(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("invalid", message)


def _check(problem: str | None) -> None:
    """Refuse the value being validated with the problem a rule found in it, if any."""
    if problem is not None:
        raise _refuse(problem)


def _obeys(rule: Callable[[T], str | None]) -> AfterValidator:
    """A validator that refuses a value with the problem a rule finds in it."""

    def check(value: T) -> T:
        _check(rule(value))
        return value

    return AfterValidator(check)


# --- decimals ------------------------------------------------------------------------------

# Plain positional notation only: "1e3", "Infinity" and floats are refused, so the text a
# client sends is exactly the number it means.
_MONEY_INTEGER_DIGITS = 15


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):  # from our own code or the database, not from JSON
        return value
    if not isinstance(value, str):
        raise _refuse('must be a decimal number in a string, such as "1234.50"')
    if not is_decimal_text(value):
        raise _refuse('must be a decimal number written like "1234.50"')
    return Decimal(value)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise _refuse("must not be negative")
    return value


def _money(value: Decimal) -> Decimal:
    _non_negative(value)
    # Size first: a number too large is told so, whatever its decimal places.
    if value >= Decimal(10) ** _MONEY_INTEGER_DIGITS:
        raise _refuse(f"at most {_MONEY_INTEGER_DIGITS} digits before the decimal point")
    if not is_whole_cents(value):
        raise _refuse("at most 2 decimal places")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise _refuse("must be greater than 0")
    return value


DecimalText = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    PlainSerializer(plain_decimal_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": f"^{DECIMAL_TEXT.pattern}$", "examples": ["0.5"]}),
]
Money = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    AfterValidator(_money),
    PlainSerializer(money_text, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "examples": ["1234567.89"]}
    ),
]
PositiveMoney = Annotated[Money, AfterValidator(_positive)]

# --- text and time -------------------------------------------------------------------------

# One line of printable text: no control characters (newlines, NUL) in titles and references.
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=_ONE_LINE)
]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_ONE_LINE)
]
# Several lines allowed, but no NUL: PostgreSQL cannot store it in text (it was a 500).
_NO_NUL = r"^[^\x00]*$"
Description = Annotated[str, StringConstraints(max_length=20_000, pattern=_NO_NUL)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000, pattern=_NO_NUL)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


# The world's clocks run from UTC-12:00 to UTC+14:00: an offset outside that is a typo.
_EARLIEST_OFFSET, _LATEST_OFFSET = timedelta(hours=-12), timedelta(hours=14)


def _in_the_future(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is not None and not _EARLIEST_OFFSET <= offset <= _LATEST_OFFSET:
        raise _refuse("the UTC offset must be between -12:00 and +14:00")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59-01:00 is past the last moment a datetime can hold, and
        # 0001-01-01T00:00+14:00 before the first (each was a 500).
        raise _refuse("must be a time within the years 1 to 9999 in UTC") from None
    if value <= utcnow():
        raise _refuse("must be in the future")
    return value


FutureDeadline = Annotated[AwareDatetime, AfterValidator(_in_the_future)]

# --- scoring -------------------------------------------------------------------------------


class _Strict(BaseModel):
    """Unknown fields are refused: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class LowestPriceScoring(_Strict):
    """Rank by price, lowest first."""

    method: Literal["lowest_price"]


class ComprehensiveScoring(_Strict):
    """Price score out of price_weight points; technical scores are added later."""

    method: Literal["comprehensive"]
    price_weight: Annotated[DecimalText, _obeys(scoring.price_weight_problem)]


Deduction = Annotated[DecimalText, _obeys(scoring.deduction_problem)]


class BenchmarkScoring(_Strict):
    """Benchmark price (基准价法): score by distance from the trimmed mean lowered by K."""

    method: Literal["benchmark"]
    coefficient_choices: Annotated[
        list[DecimalText],
        Field(min_length=1, max_length=scoring.MAX_COEFFICIENT_CHOICES),
        _obeys(scoring.coefficient_choices_problem),
    ]
    trim_threshold: Annotated[
        StrictInt, Field(ge=scoring.MIN_TRIM_THRESHOLD, le=scoring.MAX_TRIM_THRESHOLD)
    ] = scoring.DEFAULT_TRIM_THRESHOLD
    deduct_above: Deduction = scoring.DEFAULT_DEDUCT_ABOVE
    deduct_below: Deduction = scoring.DEFAULT_DEDUCT_BELOW


Scoring = Annotated[
    LowestPriceScoring | ComprehensiveScoring | BenchmarkScoring, Field(discriminator="method")
]

# --- the bid form --------------------------------------------------------------------------


class BidField(_Strict):
    """One field of the bid form; min and max bound decimal and integer values."""

    name: Annotated[str, StringConstraints(pattern=forms.FIELD_NAME_PATTERN)]
    label: Annotated[str, StringConstraints(max_length=200, pattern=_ONE_LINE)] = ""
    type: BidFieldType
    required: StrictBool = True
    min: DecimalText | None = None
    max: DecimalText | None = None

    @field_validator("type")
    @classmethod
    def _type_fits_the_name(cls, value: BidFieldType, info: ValidationInfo) -> BidFieldType:
        _check(forms.field_type_problem(info.data.get("name", ""), value))
        return value

    @field_validator("required")
    @classmethod
    def _required_fits_the_name(cls, value: bool, info: ValidationInfo) -> bool:
        _check(forms.field_required_problem(info.data.get("name", ""), value))
        return value

    @field_validator("min", "max")
    @classmethod
    def _bounds_fit_the_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is None:
            return None
        _check(
            forms.field_bound_problem(
                info.data.get("type"), info.field_name or "", value, info.data.get("min")
            )
        )
        return value

    @model_validator(mode="after")
    def _label_defaults_to_name(self) -> "BidField":
        if not self.label:
            self.label = "Price" if self.name == PRICE_FIELD else self.name
        return self


def _with_price(fields: list[BidField]) -> list[BidField]:
    names = [field.name for field in fields]
    _check(forms.field_names_problem(names))
    if PRICE_FIELD not in names:
        fields = [BidField(name=PRICE_FIELD, type=BidFieldType.decimal), *fields]
    return fields


BidFields = Annotated[list[BidField], Field(max_length=MAX_BID_FIELDS), AfterValidator(_with_price)]


# --- requests ------------------------------------------------------------------------------

Deadline = Annotated[
    FutureDeadline,
    Field(description="ISO 8601 with a UTC offset, such as 2031-03-01T17:30:00+08:00"),
]
DecryptionWindow = Annotated[
    StrictInt, Field(ge=1, le=1440, description="bidder mode: minutes to reveal after the deadline")
]
BackupDecryption = Annotated[
    StrictBool, Field(description="bidder mode: bids are sealed to the tender's recipient too")
]
MinBids = Annotated[
    StrictInt, Field(ge=1, le=1000, description="fewer valid bids and the opening fails")
]
PublicOpening = Annotated[StrictBool, Field(description="anonymous visitors may watch the opening")]


class _TenderFields(_Strict):
    """The check that spans two fields, shared by creation and edits."""

    @field_validator("floor_price", check_fields=False)
    @classmethod
    def _floor_under_ceiling(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        # Only when both arrive together; an edit of one is checked against the stored other.
        ceiling = info.data.get("ceiling_price")
        if ceiling is not None:
            _check(price_range_problem(ceiling, value))
        return value


class TenderCreate(_TenderFields):
    """A new draft: everything a bidder needs to know before sealing a bid."""

    reference: Reference
    title: Title
    description: Description = ""
    buyer_name: Title
    currency: Currency = "CNY"
    ceiling_price: PositiveMoney
    floor_price: Money | None = None
    bid_deadline: Deadline
    opening_mode: OpeningMode = OpeningMode.platform
    decryption_window_minutes: DecryptionWindow = 30
    backup_decryption: BackupDecryption = False
    min_bids: MinBids = 3
    scoring: Scoring
    bid_fields: BidFields = Field(default_factory=lambda: _with_price([]))
    public_opening: PublicOpening = False


# What a published tender may still change; everything else is fixed at publication.
AMENDABLE_FIELDS = frozenset({"description", "bid_deadline"})
_NULLABLE_FIELDS = frozenset({"floor_price", "reason"})


class TenderUpdate(_TenderFields):
    """Changes to a draft (any field), or an amendment of a published tender."""

    reference: Reference | None = None
    title: Title | None = None
    description: Description | None = None
    buyer_name: Title | None = None
    currency: Currency | None = None
    ceiling_price: PositiveMoney | None = None
    floor_price: Money | None = None
    bid_deadline: Deadline | None = None
    opening_mode: OpeningMode | None = None
    decryption_window_minutes: DecryptionWindow | None = None
    backup_decryption: BackupDecryption | None = None
    min_bids: MinBids | None = None
    scoring: Scoring | None = None
    bid_fields: BidFields | None = None
    public_opening: PublicOpening | None = None
    reason: Reason | None = Field(default=None, description="why a published tender is amended")

    @field_validator("*", mode="after")
    @classmethod
    def _null_only_where_it_means_something(cls, value: Any, info: ValidationInfo) -> Any:
        # None as a default means "unchanged"; sent explicitly it would blank a required field.
        if value is None and info.field_name not in _NULLABLE_FIELDS:
            raise _refuse("may not be null")
        return value


class TenderCancel(_Strict):
    """Why a tender is cancelled; the reason is published with it."""

    reason: Annotated[Reason, StringConstraints(min_length=1)]


# --- responses -----------------------------------------------------------------------------


class OrganizationRef(BaseModel):
    """The organization that runs a tender."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class AmendmentRead(BaseModel):
    """One recorded amendment: each changed field with its value before and after."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    changes: dict[str, dict[str, Any]]
    reason: str
    amended_by_id: uuid.UUID
    amended_at: datetime


class DocumentRead(BaseModel):
    """A tender document: download it from /tenders/{id}/documents/{document_id}."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    content_type: str
    size: int
    sha256: str = Field(description="hex SHA-256 of the file, to check a download")
    uploaded_at: datetime


class TenderRead(BaseModel):
    """A tender as its viewers see it; the wrapped secrets never leave the server."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    title: str
    description: str
    buyer_name: str
    currency: str
    ceiling_price: Money
    floor_price: Money | None
    bid_deadline: datetime
    opening_mode: OpeningMode
    decryption_window_minutes: int
    backup_decryption: bool
    min_bids: int
    scoring: Scoring
    bid_fields: list[BidField]
    public_opening: bool
    status: TenderStatus
    organization: OrganizationRef
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    opening_recipient: str | None = Field(description="age recipient that bids are sealed to")
    coefficient_commitment: str | None = Field(description="hex SHA-256 of the coefficient seed")
    amendments: list[AmendmentRead]
    documents: list[DocumentRead]
    server_time: datetime = Field(description="the server's clock, for countdowns")


class TenderPage(BaseModel):
    """One page of tenders, sorted by deadline."""

    items: list[TenderRead]
    total: int
    page: int
    page_size: int
