"""Database plumbing: declarative base, engine and sessions, the request unit of work, the clock."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends
from fastapi.requests import HTTPConnection
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The one clock of the platform: aware UTC."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, as signed bodies and events write time."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone; it gets UTC back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: times are stored in UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every model; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, reading: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys, WAL and a busy timeout.

    Statement parameters are kept out of its logs and exception messages: they hold password
    and token hashes, emails and bid digests, and a failing statement's message reaches logs.

    With `reading` (SQLite only), an engine for reads alone: its transactions begin deferred,
    so in WAL mode they neither wait for the writer nor hold it up (the live rooms read this
    way while an opening writes).
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # The driver's own transaction handling begins late and turns a released
            # savepoint into a commit; SQLAlchemy's recipe hands transactions to SQLAlchemy.
            connection.isolation_level = None
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if reading:
                cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        if reading:

            @event.listens_for(engine.sync_engine, "begin")
            def _begin_deferred(connection: Any) -> None:
                connection.exec_driver_sql("BEGIN")

            return engine

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # IMMEDIATE takes the write lock up front: two transactions that read and then
            # write would otherwise fail with SQLITE_BUSY instead of waiting their turn.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if reading:
        raise ValueError("a reading engine is for SQLite; elsewhere share the writing engine")
    engine = create_async_engine(url, pool_pre_ping=True, hide_parameters=True)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _hide_row_values(context: ExceptionContext) -> None:
        # PostgreSQL's DETAIL of a violated constraint repeats the row's values ("Key
        # (token_hash)=(…) already exists", "Failing row contains (…)"), and the driver's error,
        # chained under SQLAlchemy's, prints it with every logged traceback.
        error: BaseException | None = context.original_exception
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            if isinstance(getattr(error, "detail", None), str):
                error.detail = "(hidden: it may repeat the statement's values)"  # type: ignore[attr-defined]
            error = error.__cause__ or error.__context__

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def session_factory(connection: HTTPConnection) -> async_sessionmaker[AsyncSession]:
    """Dependency: the sessions of the platform's database, made at start-up."""
    factory: async_sessionmaker[AsyncSession] = connection.app.state.session_factory
    return factory


SessionFactory = Annotated[async_sessionmaker[AsyncSession], Depends(session_factory)]


async def get_session(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit when the endpoint succeeds, roll back otherwise."""
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# "function" scope: the commit happens when the endpoint returns, before the response is sent,
# so nobody is ever told "accepted" (a receipt, a 201) for work that then fails to commit.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
