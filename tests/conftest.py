"""Shared fixtures: test data folders, databases built by the real migrations, the app, clients.

Every database test runs on SQLite and, when a server is reachable, on PostgreSQL too; under
CI=true PostgreSQL is required. Each test runs inside a transaction that is rolled back, so
tests see each other's data never; tests of concurrent requests use `committing_app` instead.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bidding.app import create_app
from bidding.crypto.custody import MasterKey
from bidding.crypto.signing import SigningKey
from bidding.db import create_engine, create_session_factory
from bidding.keys import PlatformKeys
from bidding.migrations import upgrade
from bidding.models import Base
from bidding.settings import Settings

# The fixtures every folder uses; their asserts explain themselves like a test's.
pytest.register_assert_rewrite("tests.support")
pytest_plugins = ["tests.support.cluster", "tests.support.platform", "tests.support.scene"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BROWSER_TESTS = PROJECT_ROOT / "tests" / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in tests/browser is marked `browser` (`make test-fast` leaves them out)."""
    for item in items:
        if item.path.is_relative_to(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


def shared_testdata(name: str, env_var: str) -> Path:
    """A folder of shared test data: from env_var, else ../shared/testdata/<name>.

    Under CI a missing folder fails the run instead of skipping the tests that need it.
    """
    default = PROJECT_ROOT.parent / "shared" / "testdata" / name
    folder = Path(os.environ.get(env_var, default))
    if not folder.is_dir():
        message = f"test data folder {folder} is missing (set {env_var})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


# --- databases -----------------------------------------------------------------------------


async def _postgres_reachable(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, empty database of each backend for the whole run."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    async with fresh_postgres_database("bidding_test") as url:
        yield url


@asynccontextmanager
async def fresh_postgres_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skipped when no server answers,
    except under CI=true, where that fails."""
    admin_url = os.environ.get("BIDDING_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)
    problem = await _postgres_reachable(admin_url)
    if problem is not None:
        message = f"PostgreSQL at {make_url(admin_url).render_as_string()} unreachable: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # Pinged before use: the database is dropped on a fresh connection even when the server
    # was restarted meanwhile (tests/reliability/test_database.py does).
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine of the run's database, its schema built by the real migrations."""
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def backend(engine: AsyncEngine) -> str:
    """'sqlite' or 'postgresql'."""
    return engine.dialect.name


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


def _savepoint_sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # A commit inside the test ends a savepoint, never the outer transaction.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session in the test's transaction."""
    async with _savepoint_sessions(connection)() as session:
        yield session


# --- the app -------------------------------------------------------------------------------


@pytest.fixture
def platform_keys() -> PlatformKeys:
    return PlatformKeys(master=MasterKey.generate(), signing=SigningKey.generate())


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, demo=False)


@pytest.fixture
def app(
    settings: Settings, connection: AsyncConnection, platform_keys: PlatformKeys
) -> Iterator[object]:
    """The app, its requests sharing the test's rolled-back transaction."""
    app = create_app(settings, manage_state=False)
    app.state.session_factory = _savepoint_sessions(connection)
    app.state.keys = platform_keys
    yield app


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def committing_app(
    settings: Settings, engine: AsyncEngine, platform_keys: PlatformKeys
) -> AsyncIterator[object]:
    """The app on real transactions, for tests of concurrent requests; emptied afterwards."""
    app = create_app(settings, manage_state=False)
    app.state.session_factory = create_session_factory(engine)
    app.state.keys = platform_keys
    try:
        yield app
    finally:
        async with engine.begin() as connection:
            # The audit trail refuses deletions on PostgreSQL: emptied as an administrator would.
            postgresql = connection.dialect.name == "postgresql"
            if postgresql:
                await connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
            if postgresql:
                await connection.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
