"""Live opening rooms: one hub per process, a room per tender, each event encoded once for all.

A room reads its tender's events from the table (docs/architecture.md, Principles: the table is
the truth, the room a cache) whenever it is woken: by this process after a commit, by PostgreSQL
NOTIFY for commits on other instances, and by the room's own tick as a safety net. Because it
always reads "every seq above the last one it has", it delivers in order, without gaps or
duplicates, whatever the wake-ups (lost, late or repeated) were.

Each watcher may fall only so far behind. The room never waits for a watcher: one that cannot
keep up is told to resume with `after=N` and dropped, so a slow reader never slows the others.
"""

import asyncio
import collections
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding.auth.models import AccessToken, User
from bidding.db import iso_utc, utcnow
from bidding.opening import events as ev

logger = logging.getLogger(__name__)

MAX_CLIENT_FRAME_BYTES = 64 * 1024
QUEUE_FRAMES = 1024
TICK_SECONDS = 5.0
_PAGE = 500
_IDLE_ROOM_SECONDS = 60.0
_LISTEN_BACKOFF_FIRST = 0.5
_LISTEN_BACKOFF_MOST = 10.0

_MOST_CONTROL_MESSAGES = 64


def encode(message: dict[str, Any]) -> str:
    """The JSON text of a message, as sent (compact, UTF-8 kept)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _resolve(future: "asyncio.Future[None]", *_args: object) -> None:
    if not future.done():
        future.set_result(None)


class Watcher:
    """One connection's place in its room: how far it has been sent, and a few other messages.

    The events themselves are not copied per watcher: the sender reads them from the room's
    list, so a new event costs each watcher one wake-up, not a queue entry.
    """

    def __init__(self, room: "Room", *, after: int, most_behind: int) -> None:
        self.room = room
        self.sent_seq = after  # the last event handed to the connection
        # Events up to here were there when the watcher came: it replays them at its pace.
        # Of those that come later, at most `most_behind` may wait for it.
        self.joined_at = len(room.frames)
        self.most_behind = most_behind
        self.control: collections.deque[str] = collections.deque()
        self.wake = asyncio.Event()
        self.wake.set()
        self.fell_behind = asyncio.Event()

    def next_event(self) -> str | None:
        """The next event to send, if any (the sender counts it once it is sent)."""
        if self.sent_seq >= len(self.room.frames):
            return None
        return self.room.frames[self.sent_seq]

    def more(self) -> None:
        """The room has new events: wake the sender, unless the watcher fell too far behind."""
        waiting = len(self.room.frames) - max(self.sent_seq, self.joined_at)
        if waiting > self.most_behind:
            self.fell_behind.set()
        else:
            self.wake.set()

    def say(self, text: str) -> None:
        """Send a message that is not an event (a tick, a pong, an error)."""
        if len(self.control) >= _MOST_CONTROL_MESSAGES:
            self.fell_behind.set()
            return
        self.control.append(text)
        self.wake.set()


class Room:
    """A tender's events in memory, in seq order, and the watchers they go to."""

    def __init__(self, hub: "Hub", tender_id: uuid.UUID) -> None:
        self.hub = hub
        self.tender_id = tender_id
        self.frames: list[str] = []  # frames[i] is the event with seq i + 1
        self.watchers: set[Watcher] = set()
        self.loaded = asyncio.Event()
        self.idle_since: float | None = None
        self._wake = asyncio.Event()
        self._wake.set()
        self._task = asyncio.create_task(self._pump(), name=f"room-{tender_id}")

    def wake(self) -> None:
        """Read the table again: there may be new events."""
        self._wake.set()

    def join(self, after: int) -> Watcher:
        """A new watcher that has seen the events up to `after`."""
        watcher = Watcher(self, after=after, most_behind=self.hub.queue_frames)
        self.watchers.add(watcher)
        self.idle_since = None
        return watcher

    def leave(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        if not self.watchers:
            self.idle_since = asyncio.get_running_loop().time()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception:  # the database may be back at the next wake-up
                logger.warning("room %s: reading events failed", self.tender_id, exc_info=True)
                await asyncio.sleep(1)
                self._wake.set()
                continue
            self.loaded.set()

    async def _catch_up(self) -> None:
        while True:
            async with self.hub.session_factory() as session:
                events = await ev.after(
                    session=session, tender_id=self.tender_id, seq=len(self.frames), limit=_PAGE
                )
            for event in events:
                if event.seq != len(self.frames) + 1:
                    # Cannot happen (seq is gapless and commits follow it); never send a gap.
                    logger.error("room %s: event %d out of order", self.tender_id, event.seq)
                    break
                self.frames.append(encode(ev.envelope(event)))
            if events:
                for watcher in tuple(self.watchers):
                    watcher.more()
            if len(events) < _PAGE:
                return


SIGNED_OUT = "the session ended: signed out"
REVOKED = "the session was revoked: sign in again"
_SESSION_PAGE = 500


class SessionWatch:
    """A connection's view of the session that admitted it: ended, and why."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()
        self.reason = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()


async def _live_sessions(
    factory: async_sessionmaker[AsyncSession], token_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the tokens that are still good: not revoked, not expired, their user active."""
    live: set[uuid.UUID] = set()
    async with factory() as session:
        for start in range(0, len(token_ids), _SESSION_PAGE):
            page = token_ids[start : start + _SESSION_PAGE]
            found = await session.scalars(
                select(AccessToken.id)
                .join(AccessToken.user)
                .where(
                    AccessToken.id.in_(page),
                    AccessToken.revoked_at.is_(None),
                    AccessToken.expires_at > utcnow(),
                    User.is_active.is_(True),
                )
            )
            live.update(found)
    return live


class Hub:
    """The rooms of this process, their ticks, the PostgreSQL listener, and the sessions that
    admitted connections."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        database_url: str,
        queue_frames: int = QUEUE_FRAMES,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.queue_frames = queue_frames
        self.tick_seconds = tick_seconds
        self.rooms: dict[uuid.UUID, Room] = {}
        self._database_url = database_url
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        # The sessions (access tokens) that admitted connections, and their watches.
        self._sessions: dict[uuid.UUID, set[SessionWatch]] = {}
        self._session_checks: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._tick(), name="hub-tick"))
        if make_url(self._database_url).get_backend_name() == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen(), name="hub-listen"))

    async def stop(self) -> None:
        if self._session_checks is not None:
            self._tasks.append(self._session_checks)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()

    def notify(self, tender_id: uuid.UUID) -> None:
        """New events were committed for the tender: its room, if open here, reads them."""
        room = self.rooms.get(tender_id)
        if room is not None:
            room.wake()

    @contextlib.contextmanager
    def session_watch(self, token_id: uuid.UUID, *, check_seconds: float) -> Iterator[SessionWatch]:
        """A watch that ends when the session does: at once on a sign-out in this process,
        within check_seconds on one elsewhere (every watched token is read in one query)."""
        if self._session_checks is None or self._session_checks.done():
            self._session_checks = asyncio.create_task(
                self._check_sessions(check_seconds), name="hub-sessions"
            )
        watch = SessionWatch()
        self._sessions.setdefault(token_id, set()).add(watch)
        try:
            yield watch
        finally:
            watching = self._sessions.get(token_id, set())
            watching.discard(watch)
            if not watching:
                self._sessions.pop(token_id, None)

    def end_session(self, token_id: uuid.UUID, reason: str = SIGNED_OUT) -> None:
        """The session ended (its end committed): its connections here close at once."""
        for watch in tuple(self._sessions.get(token_id, ())):
            watch.end(reason)

    async def _check_sessions(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            watched = list(self._sessions)
            try:
                live = await _live_sessions(self.session_factory, watched)
            except Exception:  # the database may be back at the next check
                logger.warning(
                    "live rooms: checking %d sessions failed", len(watched), exc_info=True
                )
                continue
            for token_id in watched:
                if token_id not in live:
                    self.end_session(token_id, REVOKED)

    def _wake_all(self) -> None:
        for room in self.rooms.values():
            room.wake()

    async def join(self, tender_id: uuid.UUID, after: int) -> tuple[Room, Watcher]:
        """Enter the tender's room having seen the events up to `after`."""
        room = self.rooms.get(tender_id)
        if room is None:
            room = self.rooms[tender_id] = Room(self, tender_id)
        await room.loaded.wait()
        return room, room.join(after)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_seconds)
            text = encode({"type": "tick", "server_time": iso_utc(utcnow())})
            for tender_id, room in list(self.rooms.items()):
                idle = room.idle_since
                if idle is not None and loop.time() - idle > _IDLE_ROOM_SECONDS:
                    del self.rooms[tender_id]
                    await room.close()
                    continue
                for watcher in tuple(room.watchers):
                    watcher.say(text)
                room.wake()  # a safety net: a missed notification costs a tick, no more

    async def _listen(self) -> None:
        """LISTEN on a connection of its own; after losing it, reconnect and catch up."""
        url = make_url(self._database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        backoff = _LISTEN_BACKOFF_FIRST
        while True:
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("live rooms: cannot listen (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _LISTEN_BACKOFF_MOST)
                continue
            self._listener = connection
            try:
                connection.add_termination_listener(functools.partial(_resolve, lost))
                await connection.add_listener(ev.CHANNEL, self._notified)
                backoff = _LISTEN_BACKOFF_FIRST
                self.listening.set()
                # Whatever was committed while no one listened is read from the table now.
                self._wake_all()
                await self._until_lost(connection, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("live rooms: the listening connection failed: %s", exc)
            finally:
                self.listening.clear()
                self._listener = None
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
            logger.warning("live rooms: lost the listening connection; reconnecting")

    async def _until_lost(
        self, connection: asyncpg.Connection, lost: "asyncio.Future[None]"
    ) -> None:
        # A half-open connection tells nothing: ask it something now and then.
        while not lost.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(lost), self.tick_seconds)
                return
            await connection.execute("SELECT 1", timeout=self.tick_seconds)

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        tender, _, _seq = payload.partition(":")
        try:
            tender_id = uuid.UUID(tender)
        except ValueError:
            return
        self.notify(tender_id)
