"""A WebSocket client that floods an opening's live room, run as a process of its own by
test_websocket_abuse.py: `python -m tests.reliability.flooder WS_URL`.

It connects, sends messages as fast as it can (pings and 60 KB junk, under the 64 KiB frame
limit) until the room closes the connection, connects again at once, and so on, until
SIGTERM; then it prints one JSON line: how many connections it made, how many messages it
sent, and the close codes it got.
"""

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

JUNK = json.dumps({"type": "ping", "padding": "x" * 60_000})


async def flood(url: str) -> dict[str, object]:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connections, messages, refused = 0, 0, 0
    closes: Counter[str] = Counter()

    async def one_connection() -> None:
        nonlocal connections, messages
        # Every reply is read (unbounded queue), so the room's close is seen at once.
        async with connect(url, proxy=None, open_timeout=10, close_timeout=1, max_queue=None) as ws:
            connections += 1
            with contextlib.suppress(ConnectionClosed):
                while not stop.is_set():
                    await ws.send('{"type": "ping"}')
                    await ws.send(JUNK)
                    messages += 2
            closes[str(ws.close_code)] += 1

    while not stop.is_set():
        try:
            await one_connection()
        except (OSError, InvalidHandshake, TimeoutError):
            refused += 1
            await asyncio.sleep(0.05)
    return {"connections": connections, "messages": messages, "closes": closes, "refused": refused}


def main() -> None:
    print(json.dumps(asyncio.run(flood(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
