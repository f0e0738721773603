"""Opening endpoints: state, events, record, results, the sealed receipt log, the actions in
the room, and the live room itself (WebSocket)."""

import asyncio
import base64
import collections
import contextlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bidding import security
from bidding.auth.dependencies import (
    SESSION_COOKIE,
    Bidder,
    CurrentUser,
    Officer,
    OptionalUser,
    find_access_token,
)
from bidding.auth.models import AccessToken, User
from bidding.crypto import age
from bidding.db import Session, SessionFactory, iso_utc, utcnow
from bidding.errors import InvalidInput
from bidding.opening import actions, decryption, live, payloads
from bidding.opening import events as ev
from bidding.opening import service as opening_service
from bidding.opening.dependencies import LiveHub, OptionalHub
from bidding.settings import AppSettings
from bidding.tenders.dependencies import Blobs, Deadlines, ManagedTender, VisibleTender
from bidding.tenders.models import Tender

router = APIRouter(prefix="/tenders", tags=["opening"])

Responses = dict[int | str, dict[str, Any]]
_WATCH: Responses = {
    401: {"description": "not signed in, and the opening is not public"},
    403: {"description": "not a participant of the tender"},
    404: {"description": "no such tender"},
}
_NOT_YET: Responses = {409: {"description": "not available yet at this stage of the opening"}}
_LOG: Responses = {404: {"description": "no such tender"}, **_NOT_YET}

MAX_EVENTS_PAGE = 1000
# seq and log positions are 32-bit integers in the database.
MAX_SEQ = 2**31 - 1
MAX_LEAVES_PAGE = 1000


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


@router.get("/{tender_id}/opening", responses=_WATCH)
async def read_opening(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """Where the opening stands: status, when it started and ended, the latest event's seq."""
    await opening_service.check_watcher(session=session, tender=tender, viewer=viewer)
    opening = await opening_service.opening_of(session=session, tender_id=tender.id)
    return {
        "tender_id": str(tender.id),
        "status": tender.status.value,
        "bid_deadline": iso_utc(tender.bid_deadline),
        "started_at": _time(opening.started_at if opening else None),
        "completed_at": _time(opening.completed_at if opening else None),
        "last_seq": 0 if opening is None else opening.last_seq,
        "server_time": iso_utc(utcnow()),
    }  # fmt: skip


@router.get("/{tender_id}/opening/events", responses=_WATCH)
async def list_events(
    tender: VisibleTender,
    viewer: OptionalUser,
    session: Session,
    after: Annotated[
        # At most the database's 32-bit integer: a larger value failed there with a 500.
        int, Query(ge=0, le=MAX_SEQ, description="return the events after this seq")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 500,
) -> dict[str, Any]:
    """The opening's events after a seq, in order: {seq, type, at, data}, as the live room."""
    await opening_service.check_watcher(session=session, tender=tender, viewer=viewer)
    page = await ev.after(session=session, tender_id=tender.id, seq=after, limit=limit + 1)
    more = len(page) > limit
    events = [ev.envelope(event) for event in page[:limit]]
    return {
        "events": events,
        "has_more": more,
        "next_after": events[-1]["seq"] if events else after,
    }


@router.get("/{tender_id}/opening/record", responses=_WATCH | _NOT_YET)
async def read_record(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """The signed opening record: canonical JSON of everything the opening decided."""
    await opening_service.check_outcome_reader(session=session, tender=tender, viewer=viewer)
    return await opening_service.record(session=session, tender=tender)


@router.get("/{tender_id}/results", responses=_WATCH | _NOT_YET)
async def read_results(
    tender: VisibleTender, viewer: OptionalUser, session: Session
) -> dict[str, Any]:
    """The ranking with prices and scores, or why the opening failed."""
    await opening_service.check_outcome_reader(session=session, tender=tender, viewer=viewer)
    return await opening_service.results(session=session, tender=tender)


@router.get("/{tender_id}/log/head", responses=_LOG)
async def read_tree_head(tender: VisibleTender, session: Session) -> dict[str, Any]:
    """The receipt log's tree head, signed when the log was sealed at the deadline."""
    sealed = await opening_service.tree_head(session=session, tender_id=tender.id)
    return sealed.to_data()


@router.get("/{tender_id}/log/proof", responses=_LOG)
async def read_inclusion_proof(
    tender: VisibleTender,
    session: Session,
    leaf_hash: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="from the receipt")],
) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of a receipt's leaf under the sealed tree head."""
    return await opening_service.inclusion(
        session=session, tender_id=tender.id, leaf_hash=leaf_hash
    )


@router.get("/{tender_id}/log/leaves", responses=_LOG)
async def read_leaves(
    tender: VisibleTender,
    session: Session,
    start: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LEAVES_PAGE)] = MAX_LEAVES_PAGE,
) -> dict[str, Any]:
    """Every signed receipt of the sealed log, once the opening has ended: recompute the root."""
    return await opening_service.leaves(session=session, tender=tender, start=start, limit=limit)


# --- actions in the room -------------------------------------------------------------------


class RoomText(BaseModel):
    """What a participant writes in the room: an objection or an answer."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _announce(hub: OptionalHub, background: BackgroundTasks, tender: Tender) -> None:
    """After the commit, this instance's room reads the new event (others hear of it by NOTIFY)."""
    if hub is not None:
        background.add_task(hub.notify, tender.id)


_ACT: Responses = _WATCH | {409: {"description": "not at this stage of the opening"}}


@router.post("/{tender_id}/opening/check-in", responses=_ACT)
async def check_in(
    tender: VisibleTender,
    user: CurrentUser,
    session: Session,
    hub: OptionalHub,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """签到: a participant says it is present; bidders from the deadline on. Returns the event."""
    event = await actions.check_in(session=session, tender=tender, user=user)
    _announce(hub, background, tender)
    return event


@router.post("/{tender_id}/opening/objections", status_code=201, responses=_ACT)
async def raise_objection(
    body: RoomText,
    tender: VisibleTender,
    bidder: Bidder,
    session: Session,
    hub: OptionalHub,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """异议: a bidder whose bid is being opened objects, while the opening runs."""
    event = await actions.raise_objection(
        session=session, tender=tender, bidder=bidder, text=body.text
    )
    _announce(hub, background, tender)
    return event


@router.post(
    "/{tender_id}/opening/objections/{objection_id}/answer", status_code=201, responses=_ACT
)
async def answer_objection(
    objection_id: uuid.UUID,
    body: RoomText,
    tender: ManagedTender,
    officer: Officer,
    session: Session,
    hub: OptionalHub,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """The tender's officer answers an objection, once."""
    event = await actions.answer_objection(
        session=session, tender=tender, officer=officer, objection_id=objection_id, text=body.text
    )
    _announce(hub, background, tender)
    return event


@router.post("/{tender_id}/opening/record/confirm", status_code=201, responses=_ACT)
async def confirm_record(
    tender: VisibleTender,
    bidder: Bidder,
    session: Session,
    hub: OptionalHub,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """A bidder whose bid was opened confirms the published record, once."""
    event = await actions.confirm_record(session=session, tender=tender, bidder=bidder)
    _announce(hub, background, tender)
    return event


# --- the live room -------------------------------------------------------------------------

# Close codes of the room, besides the standard ones.
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FELL_BEHIND = 4008
AUTH_TIMEOUT_SECONDS = 10.0
# A watcher has little to say: more than this many messages in the window is a flood.
MAX_CLIENT_MESSAGES = 30
CLIENT_WINDOW_SECONDS = 10.0


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _same_origin(websocket: WebSocket) -> bool:
    # A browser sends the session cookie with a WebSocket opened by any site; only a page of
    # ours may use it (Cross-Site WebSocket Hijacking). A browser always sends Origin here.
    origin = websocket.headers.get("origin")
    return origin is None or security.own_origin(origin, host=websocket.headers.get("host"))


async def _session_for(factory: async_sessionmaker[AsyncSession], token: str) -> AccessToken | None:
    async with factory() as session:
        return await find_access_token(session=session, token=token)


async def _user_for(factory: async_sessionmaker[AsyncSession], token: str) -> User | None:
    access = await _session_for(factory, token)
    return None if access is None else access.user


def _message(kind: str, **fields: Any) -> str:
    return live.encode({"type": kind, **fields})


async def _first_message_token(websocket: WebSocket) -> str:
    """The token of an auth message, which must come first and soon."""
    try:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        raise _Close(CLOSE_UNAUTHENTICATED, 'sign in: send {"type": "auth", "token": …}') from None
    text = message.get("text")
    if message["type"] == "websocket.disconnect" or not text or len(text) > 4096:
        raise _Close(CLOSE_UNAUTHENTICATED, "the first message must be the auth message")
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if (
            isinstance(data, dict)
            and data.get("type") == "auth"
            and isinstance(data.get("token"), str)
        ):
            token: str = data["token"]
            return token
    raise _Close(CLOSE_UNAUTHENTICATED, "the first message must be the auth message")


async def _admit(
    websocket: WebSocket, tender_id: str, factory: async_sessionmaker[AsyncSession]
) -> tuple[uuid.UUID, int, AccessToken | None]:
    """Which tender is watched from where, and the session that was needed to watch it (None
    for a public opening); _Close when it may not be watched. The factory's sessions only read.
    """
    after_text = websocket.query_params.get("after", "0")
    if not (after_text.isascii() and after_text.isdigit() and len(after_text) <= 12):
        raise _Close(CLOSE_BAD_REQUEST, "after must be a non-negative integer")
    if int(after_text) > MAX_SEQ:
        raise _Close(CLOSE_BAD_REQUEST, f"after must be at most {MAX_SEQ}")
    try:
        tender_uuid = uuid.UUID(tender_id)
    except ValueError:
        raise _Close(CLOSE_NOT_FOUND, f"no tender {tender_id}") from None
    access = None
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(websocket):
        access = await _session_for(factory, cookie)
    # No session is open while the client is waited for: a silent client must hold no
    # connection of the pool, and on SQLite no write lock.
    async with factory() as session:
        tender = await opening_service.watchable(
            session=session, tender_id=tender_uuid, viewer=None if access is None else access.user
        )
    if tender is None:
        raise _Close(CLOSE_NOT_FOUND, f"no tender {tender_id}")
    if tender.public_opening:
        # Anyone may watch: a session adds nothing, and its end takes nothing away.
        return tender_uuid, int(after_text), None
    if access is None:
        access = await _session_for(factory, await _first_message_token(websocket))
        if access is None:
            raise _Close(CLOSE_UNAUTHENTICATED, "the token is invalid, expired or revoked")
    async with factory() as session:
        if not await opening_service.is_participant(
            session=session, tender=tender, viewer=access.user
        ):
            raise _Close(CLOSE_FORBIDDEN, "only the tender's participants may watch its opening")
    return tender_uuid, int(after_text), access


async def _watch_session(access: AccessToken, watch: live.SessionWatch) -> None:
    """Raise _Close(4401) when the session that admitted the connection ends: at its expiry
    (a timer), or when the hub says it was signed out or revoked."""
    while True:
        left = (access.expires_at - utcnow()).total_seconds()
        if left <= 0:
            raise _Close(CLOSE_UNAUTHENTICATED, "the session expired: sign in again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.ended.wait(), left)
        if watch.ended.is_set():
            raise _Close(CLOSE_UNAUTHENTICATED, watch.reason)


async def _send(websocket: WebSocket, watcher: live.Watcher) -> None:
    while True:
        await watcher.wake.wait()
        watcher.wake.clear()
        while watcher.control:
            await websocket.send_text(watcher.control.popleft())
        while (text := watcher.next_event()) is not None:
            await websocket.send_text(text)
            watcher.sent_seq += 1


async def _receive(
    websocket: WebSocket, watcher: live.Watcher, factory: async_sessionmaker[AsyncSession]
) -> None:
    """Answer the watcher's few messages; _Close on a flood or an oversized message."""
    loop = asyncio.get_running_loop()
    recent: collections.deque[float] = collections.deque()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        recent.append(loop.time())
        while recent and recent[0] < recent[-1] - CLIENT_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) > MAX_CLIENT_MESSAGES:
            raise _Close(1008, "too many messages")
        text = message.get("text")
        size = len(text.encode("utf-8")) if text is not None else len(message.get("bytes") or b"")
        if size > live.MAX_CLIENT_FRAME_BYTES:
            raise _Close(1009, "message too big")
        data: Any = None
        if text is not None:
            with contextlib.suppress(ValueError):
                data = json.loads(text)
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            watcher.say(_message("pong", server_time=iso_utc(utcnow())))
        elif kind == "auth" and isinstance(data.get("token"), str):
            user = await _user_for(factory, data["token"])
            if user is None:
                watcher.say(_message("error", detail="the token is invalid or expired"))
            else:
                watcher.say(_message("authenticated", user_id=str(user.id)))
        else:
            detail = 'messages are JSON objects: {"type": "ping"} or {"type": "auth", "token": …}'
            watcher.say(_message("error", detail=detail))


@router.websocket("/{tender_id}/opening/live")
async def live_room(
    websocket: WebSocket,
    tender_id: str,
    hub: LiveHub,
    settings: AppSettings,
    factory: SessionFactory,
) -> None:
    """The opening as it happens: every event after `after`, in order, then each as committed.

    Sign in with the session cookie or a first message {"type": "auth", "token": …}; anyone
    may watch a public opening. A {"type": "tick", "server_time": …} comes every 5 seconds.
    Closes with 4401 (unauthenticated, or the session that admitted the connection to a
    private opening expired or was revoked), 4403 (not a participant), 4404 (no such tender)
    and 4008 (fell behind: reconnect with the `after` given in the reason).
    """
    await websocket.accept()
    try:
        # The hub's sessions: for reads, and on SQLite ones that never wait for a writer.
        tender_uuid, after, access = await _admit(websocket, tender_id, hub.session_factory)
    except _Close as refused:
        await websocket.close(refused.code, refused.reason)
        return
    with contextlib.ExitStack() as stack:
        watch = None
        if access is not None:
            check_seconds = settings.session_check_seconds
            watch = stack.enter_context(hub.session_watch(access.id, check_seconds=check_seconds))
        await _serve(websocket, hub, factory, tender_uuid, after, access, watch)


async def _serve(
    websocket: WebSocket,
    hub: live.Hub,
    factory: async_sessionmaker[AsyncSession],
    tender_uuid: uuid.UUID,
    after: int,
    access: AccessToken | None,
    watch: live.SessionWatch | None,
) -> None:
    room, watcher = await hub.join(tender_uuid, after)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await websocket.send_text(
            _message(
                "welcome",
                tender_id=str(tender_uuid),
                after=after,
                last_seq=len(room.frames),
                server_time=iso_utc(utcnow()),
            )
        )
        tasks = [
            asyncio.create_task(_send(websocket, watcher)),
            asyncio.create_task(_receive(websocket, watcher, factory)),
            asyncio.create_task(watcher.fell_behind.wait()),
        ]
        if access is not None and watch is not None:
            tasks.append(asyncio.create_task(_watch_session(access, watch)))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        room.leave(watcher)
    close: BaseException | None = None
    if tasks[2] in done:
        close = _Close(CLOSE_FELL_BEHIND, f"fell behind: reconnect with after={watcher.sent_seq}")
    elif tasks[1] in done:
        close = tasks[1].exception()
    elif len(tasks) > 3 and tasks[3] in done:
        close = tasks[3].exception()
    if isinstance(close, _Close):
        # A client that cannot even take the close frame in time is dropped (1006); it resumes
        # from the last seq it holds, which is all the reason would have said.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
            await asyncio.wait_for(websocket.close(close.code, close.reason), 5)


# --- online decryption (bidder mode) -------------------------------------------------------


class Reveal(BaseModel):
    """A bid's 16-byte age file key, base64: computed by the bidder from its own identity."""

    model_config = ConfigDict(extra="forbid")

    file_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]


@router.post(
    "/{tender_id}/opening/reveal",
    status_code=201,
    responses=_ACT | {422: {"description": "the file key does not open the bid"}},
)
async def reveal(
    body: Reveal,
    tender: VisibleTender,
    bidder: Bidder,
    session: Session,
    blobs: Blobs,
    hub: OptionalHub,
    deadlines: Deadlines,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """在线解密: open the bidder's bid with its file key during the decryption window. The
    identity never leaves the bidder; `bidding reveal` computes the key from the bid's header."""
    try:
        file_key = base64.b64decode(body.file_key, validate=True)
    except ValueError:
        file_key = b""
    if len(file_key) != age.FILE_KEY_SIZE:
        raise InvalidInput(f"file_key: {age.FILE_KEY_SIZE} bytes in base64")
    terms = tender.terms

    async def open_bid(listed: payloads.ListedBid, key: bytes) -> decryption.Outcome:
        return await anyio.to_thread.run_sync(
            lambda: decryption.open_bid(
                blobs=blobs,
                sha256=listed.sha256,
                size=listed.size,
                file_key=key,
                terms=terms,
            )
        )

    event = await actions.reveal(
        session=session, tender=tender, bidder=bidder, file_key=file_key, open_bid=open_bid
    )
    _announce(hub, background, tender)
    if deadlines is not None:
        # The last reveal may close the window early: the scheduler looks again.
        background.add_task(deadlines.deadline_changed, tender.id)
    return event
