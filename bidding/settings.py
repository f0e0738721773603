"""Settings from the environment (prefix BIDDING_), with embedded defaults for one machine."""

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from fastapi import Depends
from fastapi.requests import HTTPConnection
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bidding.ratelimit import Rate

MIB = 1024 * 1024
GIB = 1024 * MIB

# Written COUNT/UNIT in the environment, e.g. BIDDING_RATE_LIMIT_SUBMISSION=10/minute.
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)]


def _check_origin(origin: Any) -> None:
    """An origin exactly as a browser sends it: scheme://host[:port], lower case, no path."""
    parts = urlsplit(origin) if isinstance(origin, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or origin != f"{parts.scheme}://{parts.netloc}".lower()
        or "*" in origin
    ):
        raise ValueError(f"{origin!r}: an origin is scheme://host[:port] in lower case, no more")


# Registration by email: how messages leave, and what the links in them point to.
SMTP_SCHEMES = ("smtps", "smtp+starttls", "smtp")


def _check_smtp_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise ValueError(
            "an SMTP URL is smtps://user:password@host:465, smtp+starttls://user:password@"
            "host:587 or smtp://host:25"
        )
    if parts.scheme == "smtp" and (parts.username or parts.password):
        # A password over a connection without TLS is a password for anyone on the way.
        raise ValueError("smtp:// has no TLS: give credentials only with smtps or smtp+starttls")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an SMTP URL has no path, query or fragment")
    _ = parts.port  # ValueError for a port that is not a number in range


def _check_public_url(value: str) -> None:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "*" in value
    ):
        raise ValueError(f"{value!r}: the pages' address is http(s)://host[:port][/path]")


class Settings(BaseSettings):
    """Everything the platform reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="BIDDING_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, description="default: SQLite in the data dir; postgresql+asyncpg://… too"
    )
    master_key: SecretStr | None = Field(
        default=None, description="base64 of 32 bytes; default: a 0600 key file in the data dir"
    )
    max_bid_bytes: int = Field(default=GIB, gt=0)
    max_document_bytes: int = Field(default=100 * MIB, gt=0)
    max_json_bytes: int = Field(
        default=MIB, gt=0, description="largest body of any request but a bid or a document"
    )
    upload_idle_seconds: float = Field(
        default=60,
        gt=0,
        description="a request body (a bid, a document, JSON) that stops "
        "coming for this long is refused with 400",
    )
    token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    min_bidding_period_seconds: int = Field(default=60, ge=0)
    max_deadline_days: int = Field(
        default=365,
        gt=0,
        le=3650,
        description="how far ahead a bid deadline may be set or amended to, in days",
    )
    # --- signing in (README, Security: "Sign-in throttle" and "Sessions") ---
    login_max_failures: int = Field(
        default=5, gt=0, description="failed sign-ins per account and address in the window"
    )
    login_window_seconds: int = Field(default=900, gt=0)
    login_max_failures_per_address: int = Field(
        default=20, gt=0, description="failed sign-ins per address over all accounts"
    )
    login_delay_max_seconds: float = Field(
        default=10,
        ge=0,
        description="the longest wait that failures on an account impose on a sign-in to it "
        "from an address it was not recently signed in from",
    )
    login_known_address_days: int = Field(
        default=30, ge=0, description="how long an address stays known after a sign-in"
    )
    session_check_seconds: float = Field(
        default=5,
        gt=0,
        description="how often a live-room connection checks that its session was not revoked",
    )
    # --- end of signing in ---
    cookie_secure: bool | None = Field(
        default=None, description="default: true in production; always over HTTPS"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins allowed to call the API from their pages, comma-separated; "
        "default: none",
    )
    rate_limit_sign_in: RateSetting = Field(
        default=Rate(burst=60, period=60), description="sign-in attempts per client address"
    )
    rate_limit_registration: RateSetting = Field(
        default=Rate(burst=20, period=3600), description="registrations per client address"
    )
    rate_limit_submission: RateSetting = Field(
        default=Rate(burst=10, period=60),
        description="bid uploads per bidding organization and tender",
    )
    demo: bool = True
    opening_lease_seconds: float = Field(
        default=15, gt=0, description="an instance that stops renewing is taken over after this"
    )
    scheduler_sync_seconds: float = Field(
        default=10, gt=0, description="how often the jobs are checked against the database"
    )
    opening_workers: int = Field(default=2, ge=1, le=64, description="threads that open bids")
    audit_anchor_seconds: float = Field(
        default=3600,
        gt=0,
        description="how often the audit chains' heads that moved are signed as anchors",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="where messages are sent: smtps://user:password@host:465, "
        "smtp+starttls://user:password@host:587 or smtp://host:25 (no TLS, no credentials); "
        "without it, messages are written to the log in development and registration is "
        "closed in production",
    )
    mail_from: str | None = Field(
        default=None, description="the From of messages; required with an SMTP URL"
    )
    public_url: str | None = Field(
        default=None,
        description="the pages' address, for the links in messages (https://bidding.example.cn); "
        "required with an SMTP URL; else the address a request came to",
    )
    activation_ttl_seconds: int = Field(
        default=48 * 3600, gt=0, description="how long an activation link works"
    )

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_smtp_url(value.get_secret_value())
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_email(value, check_deliverability=False)
            except EmailNotValidError as exc:
                raise ValueError(f"{value!r} is no email address: {exc}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None:
            _check_public_url(value)
            value = value.rstrip("/")
        return value

    @model_validator(mode="after")
    def _links_need_an_address(self) -> "Settings":
        # Without it a link would be made from the request's Host header, which the sender
        # chooses: a message could then send its reader to another site.
        if self.smtp_url is not None and self.public_url is None:
            raise ValueError("BIDDING_SMTP_URL needs BIDDING_PUBLIC_URL for its links")
        if self.smtp_url is not None and self.mail_from is None:
            raise ValueError("BIDDING_SMTP_URL needs BIDDING_MAIL_FROM, the messages' sender")
        return self

    @property
    def registration_open(self) -> bool:
        """Whether bidders may register: messages can reach them, or it is development (where
        they are written to the log for the developer to read)."""
        return self.smtp_url is not None or self.environment != "production"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _exact_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                _check_origin(origin)
        return value

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies carry the Secure flag: as set, else only in production."""
        if self.cookie_secure is None:
            return self.environment == "production"
        return self.cookie_secure

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, SQLite in the data dir unless one is given."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bidding.sqlite3').resolve()}"

    @property
    def master_key_path(self) -> Path:
        """Where the master key file lives when no key is given in the environment."""
        return self.data_dir / "keys" / "master.key"

    @property
    def signing_key_path(self) -> Path:
        """Where the platform's Ed25519 signing key lives."""
        return self.data_dir / "keys" / "signing.key"


def get_settings(connection: HTTPConnection) -> Settings:
    """Dependency: the settings the app was built with."""
    settings: Settings = connection.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]
