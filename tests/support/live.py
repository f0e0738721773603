"""Clients of the live opening room: WebSocket watchers, tokens written or revoked behind the
room's back, and tenders with bids to watch."""

import asyncio
import contextlib
import json
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bidding.auth.models import AccessToken, User
from bidding.auth.tokens import hash_token, new_token
from bidding.db import create_session_factory, utcnow
from tests.support.scene import Party, Scene

Event = dict[str, Any]
# Only waited for when something is wrong; generous for a loaded machine.
WAIT = 30.0
PRICES = ("1000000.00", "950000.00", "1100000.00", "1020000.00")


def form(price: str, **fields: Any) -> dict[str, Any]:
    return {"price": price, "duration_days": 100, **fields}


def token_of(party: Party) -> str:
    return party.headers["Authorization"].removeprefix("Bearer ")


def watch(url: str, **options: Any) -> connect:
    """A client of the room; no proxy, and no close handshake waited for long."""
    return connect(url, proxy=None, open_timeout=WAIT, close_timeout=2, **options)


async def receive(ws: ClientConnection) -> Event:
    message: Event = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def welcome(ws: ClientConnection) -> Event:
    message = await receive(ws)
    assert message["type"] == "welcome", message
    return message


async def closing(ws: ClientConnection) -> tuple[int | None, str, list[Event]]:
    """Read until the server closes: its close code and reason, and what came before."""
    messages: list[Event] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            messages.append(await receive(ws))
    return ws.close_code, ws.close_reason, messages


async def refused(url: str, *first: str | bytes, **options: Any) -> tuple[int | None, str]:
    """Connect, send the messages, and return how the room closed the connection."""
    async with watch(url, **options) as ws:
        for message in first:
            await ws.send(message)
        code, reason, messages = await closing(ws)
    assert [m for m in messages if m["type"] == "welcome"] == [], "refused before welcome"
    return code, reason


async def quiet_after_tail(ws: ClientConnection) -> None:
    """Two ticks come (the hub ticks every 0.5 s) and no event with them."""
    ticks = 0
    while ticks < 2:
        message = await receive(ws)
        assert "seq" not in message, f"an event after the last one: {message}"
        ticks += message["type"] == "tick"


async def with_bids(scene: Scene, *, bids: int = 3, **changes: Any) -> tuple[Event, list[Event]]:
    """A tender with bids handed in, its deadline not passed yet."""
    tender = await scene.tender(**changes)
    receipts = [await scene.bid(tender, form(price)) for price in PRICES[:bids]]
    return tender, receipts


def auth_message(token: str) -> str:
    return json.dumps({"type": "auth", "token": token})


async def revoke(scene: Scene, token: str) -> None:
    async with create_session_factory(scene.engine)() as session:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == hash_token(token))
            .values(revoked_at=utcnow())
        )
        await session.commit()


async def stored_token(scene: Scene, user: User, *, expires_in: timedelta) -> str:
    """A token of the user, written directly, expiring after the given time."""
    token = new_token()
    async with create_session_factory(scene.engine)() as session:
        session.add(
            AccessToken(
                token_hash=hash_token(token), user_id=user.id, expires_at=utcnow() + expires_in
            )
        )
        await session.commit()
    return token


async def slow_socket(url: str) -> socket.socket:
    """A connected socket with a small receive buffer: little is taken in while not reading."""
    address = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
    return sock
