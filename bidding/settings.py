"""Settings from the environment (prefix BIDDING_), with embedded defaults for one machine."""

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from pydantic import BeforeValidator, Field, SecretStr, field_validator
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


def get_settings(request: Request) -> Settings:
    """Dependency: the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]
