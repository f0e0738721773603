"""The live opening room over a real WebSocket: replay, live events, who may watch."""

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.support.scene import LiveServer, Scene


async def receive_events(ws: ClientConnection, until: str) -> list[dict[str, Any]]:
    """Event envelopes (ticks and other messages left out) up to one of type `until`."""
    events: list[dict[str, Any]] = []
    while True:
        message = json.loads(await ws.recv())
        if "seq" in message:
            events.append(message)
            if message["type"] == until:
                return events


class TestWatching:
    async def test_a_watcher_from_before_the_deadline_sees_the_whole_opening_live(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender(public_opening=True)
        for price in ("1000000.00", "950000.00", "1100000.00"):
            await scene.bid(tender, {"price": price, "duration_days": 100})
        async with connect(live_server.room(tender)) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["last_seq"] == 0
            await scene.pass_deadline(tender)
            await scene.open(tender)
            live = await receive_events(ws, "opening.completed")
        assert live == await scene.events(tender)
