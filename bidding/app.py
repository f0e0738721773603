"""The web application: create_app() wires settings, database, keys, routers and errors."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding import demo, frontend, security
from bidding.audit.endpoints import router as audit_router
from bidding.auth import mail
from bidding.auth.endpoints import router as auth_router
from bidding.db import Session, create_engine, create_session_factory, utcnow
from bidding.errors import ERROR_RESPONSES, install_error_handlers
from bidding.keys import load_platform_keys
from bidding.keys import router as keys_router
from bidding.opening import lease
from bidding.opening.endpoints import router as opening_router
from bidding.opening.live import Hub
from bidding.opening.scheduler import OpeningScheduler, instance_name
from bidding.ratelimit import RateLimits
from bidding.settings import Settings
from bidding.tenders.bids import Arrivals
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.dependencies import DeadlineWatcher
from bidding.tenders.endpoints import router as tenders_router

API_PREFIX = "/api/v1"
# Deadlines are decided by this process's clock; a database clock further off than this is
# worth a warning (the two are compared once, at start-up).
CLOCK_TOLERANCE = timedelta(seconds=1)

logger = logging.getLogger(__name__)

health_router = APIRouter(tags=["health"])


@health_router.get("/health")
async def health(session: Session) -> dict[str, Any]:
    """Whether the service and its database answer."""
    try:
        await session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # reported, not raised: a health check must answer
        database = f"unreachable: {type(exc).__name__}"
    return {"status": "ok" if database == "ok" else "degraded", "database": database,
            "server_time": utcnow()}  # fmt: skip


async def database_clock_offset(engine: AsyncEngine) -> tuple[datetime, datetime]:
    """The database's clock and the platform's (utcnow) at the same moment, as aware UTC."""
    if engine.dialect.name == "sqlite":
        # SQLite's CURRENT_TIMESTAMP is UTC text without a zone, to the second; this has ms.
        query = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
    else:
        # now() is when the transaction began; clock_timestamp() when the clock was read.
        query = "SELECT clock_timestamp()"
    async with engine.connect() as connection:
        before = utcnow()
        value = (await connection.execute(text(query))).scalar_one()
        after = utcnow()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    database = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # The database read its clock somewhere in the round trip: compare with the middle of it.
    return database, before + (after - before) / 2


async def check_database_clock(engine: AsyncEngine) -> timedelta:
    """Warn when the database's clock is off from the platform's by more than a second.

    Only the platform's clock decides deadlines (acceptance and opening alike), so nothing
    goes wrong; but the database's own timestamps, and anyone reading them, would disagree.
    """
    database, platform = await database_clock_offset(engine)
    difference = database - platform
    if abs(difference) > CLOCK_TOLERANCE:
        logger.warning(
            "the database's clock reads %s while this server's reads %s: %+.3f s apart. "
            "Deadlines follow this server's clock; synchronize both with NTP.",
            database.isoformat(),
            platform.isoformat(),
            difference.total_seconds(),
        )
    return difference


def create_app(settings: Settings | None = None, *, manage_state: bool = True) -> FastAPI:
    """Build the application. With manage_state=False the caller fills app.state (tests)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not manage_state:
            yield
            return
        engine = create_engine(settings.resolved_database_url)
        app.state.engine = engine
        await check_database_clock(engine)
        app.state.session_factory = create_session_factory(engine)
        app.state.keys = load_platform_keys(settings)
        url = settings.resolved_database_url
        # On SQLite the rooms read on connections of their own that never wait for a writer.
        reader = create_engine(url, reading=True) if url.startswith("sqlite") else engine
        hub = Hub(create_session_factory(reader), database_url=url)
        app.state.hub = hub
        openings = OpeningScheduler(
            lease.Context(
                session_factory=app.state.session_factory,
                keys=app.state.keys,
                blobs=app.state.blobs,
                arrivals=app.state.arrivals,
                instance=instance_name(),
                lease=timedelta(seconds=settings.opening_lease_seconds),
                workers=settings.opening_workers,
                announce=hub.notify,
            ),
            sync_every=timedelta(seconds=settings.scheduler_sync_seconds),
            anchor_every=timedelta(seconds=settings.audit_anchor_seconds),
        )
        deadline_watcher: DeadlineWatcher = openings
        app.state.deadline_watcher = deadline_watcher
        background: list[asyncio.Task[None]] = []
        if settings.demo and settings.environment != "production":
            background.append(
                asyncio.create_task(
                    demo.run_bidders(
                        session_factory=app.state.session_factory,
                        keys=app.state.keys,
                        blobs=app.state.blobs,
                        settings=settings,
                    ),
                    name="demo-bidders",
                )
            )
        transport = mail.transport_for(settings)
        outbox = None
        if transport is not None:
            outbox = mail.Deliverer(session_factory=app.state.session_factory, transport=transport)
            outbox.start()
        app.state.outbox = outbox
        await hub.start()
        await openings.start()
        # What start-up made (modules, models, keys) lives as long as the process: kept out
        # of the collector's full passes, it no longer lengthens their pauses of the event loop.
        gc.freeze()
        try:
            yield
        finally:
            await openings.stop()
            await hub.stop()
            if outbox is not None:
                await outbox.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await engine.dispose()
            await reader.dispose()

    app = FastAPI(
        title="Contactless bidding",
        summary="Sealed bids, automatic openings, live and verifiable results.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limits = RateLimits.of(
        sign_in=settings.rate_limit_sign_in,
        registration=settings.rate_limit_registration,
        submission=settings.rate_limit_submission,
    )
    install_error_handlers(app, headers_of_500=security.HEADERS)
    app.state.blobs = FilesystemBlobStore(settings.data_dir / "blobs")
    app.state.arrivals = Arrivals()
    for router in (health_router, auth_router, tenders_router, opening_router, keys_router):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(audit_router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    site = frontend.pages()
    if site is None:
        logger.warning(
            "the web pages are missing: not in the package (a wheel built without them), nor "
            "built in the source tree (`cd frontend && npm ci && npm run build`); "
            "only the API is served"
        )
    else:
        # What no route answers (the API, its docs, any route added later) is a page.
        app.router.default = site
    # The first added is the innermost: headers go on every answer, CORS preflights included.
    app.add_middleware(
        security.BodyLimit,
        max_bytes=settings.max_json_bytes,
        idle_seconds=settings.upload_idle_seconds,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url)
    app.add_middleware(
        security.SecurityHeaders,
        always_hsts=settings.environment == "production",
        docs_paths=frozenset(path for path in docs if path),
    )
    return app
