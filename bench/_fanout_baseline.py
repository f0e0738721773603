"""The baseline of bench/fanout.py: a bare `websockets` server relaying the same events.

What any live room must do at the least: hold the connections, greet each one, and send
every event to every connection. It serves `/live` (any query) with the websockets asyncio
server, compression off and a listen backlog of 2048 as uvicorn's, greets each connection
with a welcome of the live room's form, and keeps it in a set. `GET /go` starts the replay
of --events (a JSON list of [offset_s, seq, type, data]): the events are sent at their
offsets from the start, as the platform produced them, and those written together (the same
offset) are due together. Each envelope {seq, type, at, data} is stamped with `at` = the
moment it is due, as the platform stamps an event when it writes it, and serialized once.
--mode batched (the default, the floor): the messages due together go to each connection in
one write, framed by the connection's own websockets protocol, as broadcast() does for one
message; --mode broadcast: websockets.broadcast() of each message in turn. Neither waits for
a connection (no backpressure: a relay that never drops a message). A tick goes out every 5
s, as the live room's. `GET /health` answers when the server is up.
"""

import argparse
import asyncio
import itertools
import json
import time
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response
from websockets.protocol import State

TICK_SECONDS = 5


def iso(moment: datetime) -> str:
    """A moment as the platform writes time: ISO 8601 UTC with milliseconds and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_now() -> str:
    return iso(datetime.now(UTC))


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Room:
    def __init__(self, events: list[list[Any]], tender_id: str, mode: str) -> None:
        self.events = events
        self.mode = mode
        self.tender_id = tender_id
        self.connections: set[ServerConnection] = set()
        self.last_seq = 0
        self.replay: asyncio.Task[None] | None = None
        self.ticks: asyncio.Task[None] | None = None

    async def handler(self, connection: ServerConnection) -> None:
        welcome = {"type": "welcome", "tender_id": self.tender_id, "after": 0,
                   "last_seq": self.last_seq, "server_time": iso_now()}  # fmt: skip
        await connection.send(dumps(welcome))
        self.connections.add(connection)
        try:
            await connection.wait_closed()
        finally:
            self.connections.discard(connection)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/live":
            return None
        if path == "/health":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/go":
            if self.replay is None:
                self.replay = asyncio.create_task(self.send_events())
            return connection.respond(HTTPStatus.OK, "going\n")
        return connection.respond(HTTPStatus.NOT_FOUND, "no such path\n")

    async def send_events(self) -> None:
        loop = asyncio.get_running_loop()
        self.ticks = asyncio.create_task(self.send_ticks())
        start, wall = loop.time(), time.time()
        for offset, group in itertools.groupby(self.events, key=lambda event: event[0]):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # Stamped with the moment they are due, as the platform stamps events when it
            # writes them: a relay still busy with the earlier ones is late for these.
            at = iso(datetime.fromtimestamp(wall + offset, UTC))
            texts = []
            for _, seq, kind, data in group:
                texts.append(dumps({"seq": seq, "type": kind, "at": at, "data": data}).encode())
                self.last_seq = seq
            self.send(texts)

    def send(self, texts: list[bytes]) -> None:
        """Write the messages to every open connection."""
        if self.mode == "broadcast":
            for text in texts:
                broadcast(self.connections, text, text=True)
            return
        # Batched: what broadcast() does for one message, for all of them, in one write.
        for connection in self.connections:
            if connection.protocol.state is not State.OPEN:
                continue
            for text in texts:
                connection.protocol.send_text(text)
            connection.transport.write(b"".join(connection.protocol.data_to_send()))

    async def send_ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            broadcast(self.connections, dumps({"type": "tick", "server_time": iso_now()}))


async def main_async(args: argparse.Namespace) -> None:
    room = Room(json.loads(args.events.read_text()), args.tender_id, args.mode)
    async with serve(
        room.handler,
        "127.0.0.1",
        args.port,
        process_request=room.process_request,
        compression=None,
        backlog=2048,
        max_size=4096,
    ) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, required=True, help="JSON [[offset_s, seq, ...]]")
    parser.add_argument("--tender-id", required=True)
    parser.add_argument(
        "--mode", choices=["batched", "broadcast"], default="batched",
        help="write the messages due together in one write per connection, or broadcast() each",
    )  # fmt: skip
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
