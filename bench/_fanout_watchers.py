"""A load generator of bench/fanout.py: --count WebSocket watchers in one process.

The machine that runs the bench runs the servers too, so a watcher must cost as little as
it can, and the same whatever the way a server writes (a frame per send or many at once):
one thread, one epoll, non-blocking sockets, and after the opening handshake (checked as
RFC 6455 says, Sec-WebSocket-Accept included) a minimal parser of the server's unmasked
frames; pings are answered and a close is echoed with websockets' own frame serializer.
Nothing is decoded on the way: each text message is looked up, as bytes, in a table of the
messages this process has seen (every watcher gets an event as the same bytes) and the
watcher keeps its number and arrival time: time.time() (the clock of the servers' `at`) read
when epoll reports the socket readable. While messages flow the process sleeps --poll-ms
between two polls, so that one wake-up reads many sockets and frames: arrival times are late
by at most that much, alike for every server.

The process connects its watchers --batch at a time at most (so no listen backlog is
overrun), each counted as connected once its first message (the welcome) has arrived, then
prints {"event": "connected", ...} on stdout. It ends when every watcher has received a
message of a --final type (or lost its connection), or when "stop" is read on stdin, or after
--timeout seconds: it closes its connections, writes what it recorded to --out (a pickle: the
distinct messages, and per watcher the numbers and times as array bytes, its error, the code
of a close it received) and prints {"event": "done", ...}.
"""

import argparse
import base64
import contextlib
import errno
import json
import os
import pickle
import resource
import select
import socket
import struct
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

from websockets.frames import Close, Frame, Opcode
from websockets.utils import accept_key

CONNECT_SECONDS = 60  # for one watcher's connection, handshake and welcome
CLOSE_SECONDS = 2  # for the closing handshakes at the end
RECV_BYTES = 256 * 1024

TEXT, CONT, CLOSE, PING = 0x1, 0x0, 0x8, 0x9


class Messages:
    """Every distinct text message this process received, numbered in order of arrival."""

    def __init__(self, final_types: set[str]) -> None:
        self.index: dict[bytes, tuple[int, bool]] = {}
        self.texts: list[bytes] = []
        self.final_types = final_types

    def add(self, data: bytes) -> tuple[int, bool]:
        """The message's number, and whether it ends a watcher's stream."""
        known = self.index.get(data)
        if known is None:
            try:
                kind = json.loads(data).get("type")
            except (ValueError, AttributeError):
                kind = None
            known = (len(self.texts), kind in self.final_types)
            self.index[data] = known
            self.texts.append(data)
        return known


class Watcher:
    """One connection, from connect() to its end; what it received and when."""

    def __init__(self, crowd: "Crowd") -> None:
        self.crowd = crowd
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.state = "connecting"  # -> handshake -> open -> closed
        self.buffer = b""
        self.fragments: list[bytes] = []
        self.numbers = array("I")
        self.times = array("d")
        self.started = time.monotonic()
        self.welcomed = False
        self.finished = False
        self.error: str | None = None
        self.close_code: int | None = None

    # -- the connection's life --------------------------------------------------------------

    def connect(self, address: tuple[str, int]) -> None:
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self.fail(f"connect: {os.strerror(code)}")
            return
        self.crowd.poller.register(self.fd, select.EPOLLOUT)

    def writable(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.fail(f"connect: {os.strerror(code)}")
            return
        request = (
            f"GET {self.crowd.resource} HTTP/1.1\r\nHost: {self.crowd.host_header}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.send(request.encode())
        self.state = "handshake"
        self.crowd.poller.modify(self.fd, select.EPOLLIN)

    def readable(self, now: float) -> None:
        try:
            data = self.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(f"recv: {exc}")
            return
        if not data:
            self.fail("closed by the server" if self.close_code is None else None)
            return
        data = self.buffer + data if self.buffer else data
        if self.state == "handshake":
            head, found, rest = data.partition(b"\r\n\r\n")
            if not found:
                self.buffer = data
                return
            self.buffer = b""
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            if lines[0].split(" ")[1:2] != ["101"]:
                self.fail(f"handshake: {lines[0]}")
                return
            if headers.get("sec-websocket-accept") != accept_key(self.key):
                self.fail("handshake: wrong Sec-WebSocket-Accept")
                return
            self.state = "open"
            data = rest
        self.frames(data, now)

    def frames(self, data: bytes, now: float) -> None:
        size = len(data)
        position = 0
        while size - position >= 2:
            first, second = data[position], data[position + 1]
            if second & 0x80:
                self.fail("protocol: a masked frame from the server")
                return
            length, header = second & 0x7F, 2
            if length == 126:
                if size - position < 4:
                    break
                (length,) = struct.unpack_from("!H", data, position + 2)
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                (length,) = struct.unpack_from("!Q", data, position + 2)
                header = 10
            end = position + header + length
            if end > size:
                break
            payload = data[position + header : end]
            position = end
            opcode = first & 0x0F
            if opcode in (TEXT, CONT):
                if not first & 0x80:
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload = b"".join([*self.fragments, payload])
                    self.fragments.clear()
                self.message(payload, now)
            elif opcode == PING:
                self.send(Frame(Opcode.PONG, payload).serialize(mask=True))
            elif opcode == CLOSE:
                close = Close.parse(payload)
                self.close_code = close.code
                self.close(close.code)
                self.fail(f"closed {close.code} {close.reason}".strip())
                return
        self.buffer = data[position:]

    def message(self, text: bytes, now: float) -> None:
        number, final = self.crowd.messages.add(text)
        self.numbers.append(number)
        self.times.append(now)
        if not self.welcomed:
            self.welcomed = True
            self.crowd.welcomed(self)
        if final and not self.finished:
            self.finished = True
            self.crowd.finished(self)

    def send(self, data: bytes) -> None:
        try:
            self.sock.send(data)  # a few bytes into an empty buffer: they fit
        except OSError as exc:
            self.fail(f"send: {exc}")

    def close(self, code: int = 1000) -> None:
        """Send a close frame (once), if the connection is open."""
        if self.state == "open":
            self.state = "closing"
            with_code = Close(code, "").serialize() if code != 1005 else b""
            self.send(Frame(Opcode.CLOSE, with_code).serialize(mask=True))

    def fail(self, error: str | None) -> None:
        """The connection is over: record why (unless it had finished), drop it."""
        if self.state == "closed":
            return
        if self.error is None and not self.finished and error is not None:
            self.error = error
        self.state = "closed"
        self.crowd.closed(self)
        self.sock.close()

    def result(self) -> dict[str, Any]:
        return {
            "numbers": self.numbers.tobytes(),
            "times": self.times.tobytes(),
            "error": self.error,
            "close_code": self.close_code,
        }


class Crowd:
    """Every watcher of this process, one epoll, and the bookkeeping of who is where."""

    def __init__(self, url: str, final_types: set[str]) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host_header = parts.netloc
        self.resource = parts.path + (f"?{parts.query}" if parts.query else "")
        self.messages = Messages(final_types)
        self.poller = select.epoll()
        self.watchers: list[Watcher] = []
        self.by_fd: dict[int, Watcher] = {}
        self.pending: set[Watcher] = set()  # connecting, not yet welcomed
        self.unfinished = 0

    def start_one(self) -> None:
        watcher = Watcher(self)
        self.watchers.append(watcher)
        self.by_fd[watcher.fd] = watcher
        self.pending.add(watcher)
        self.unfinished += 1
        watcher.connect(self.address)

    def welcomed(self, watcher: Watcher) -> None:
        self.pending.discard(watcher)

    def finished(self, watcher: Watcher) -> None:
        self.unfinished -= 1

    def closed(self, watcher: Watcher) -> None:
        self.pending.discard(watcher)
        self.by_fd.pop(watcher.fd, None)
        if watcher.fd >= 0:
            with contextlib.suppress(OSError, ValueError):
                self.poller.unregister(watcher.fd)
        if not watcher.finished:
            watcher.finished = True
            self.unfinished -= 1

    def poll(self, timeout: float) -> bool:
        """One round of I/O; whether any data arrived."""
        events = self.poller.poll(timeout)
        now = time.time()
        got = False
        for fd, _mask in events:
            watcher = self.by_fd.get(fd)
            if watcher is None:
                continue
            if watcher.state == "connecting":
                watcher.writable()
            else:
                watcher.readable(now)
                got = True
        return got

    def connect(self, count: int, batch: int) -> None:
        started = 0
        while started < count or self.pending:
            while started < count and len(self.pending) < batch:
                self.start_one()
                started += 1
            self.poll(0.05)
            limit = time.monotonic() - CONNECT_SECONDS
            for watcher in [w for w in self.pending if w.started < limit]:
                watcher.fail("connect: no welcome in time")

    def stream(self, timeout: float, pause: float) -> None:
        """Until every watcher has finished, 'stop' is read on stdin, or the timeout."""
        stdin = sys.stdin.fileno()
        self.poller.register(stdin, select.EPOLLIN)
        end = time.monotonic() + timeout
        heard = b""
        while self.unfinished > 0 and time.monotonic() < end:
            events = self.poller.poll(1.0)
            now = time.time()
            got = False
            for fd, _mask in events:
                if fd == stdin:
                    chunk = os.read(stdin, 1024)
                    heard += chunk
                    if not chunk or b"stop" in heard:
                        return
                    continue
                watcher = self.by_fd.get(fd)
                if watcher is not None:
                    watcher.readable(now)
                    got = True
            if got and pause:
                time.sleep(pause)

    def close_all(self) -> None:
        for watcher in self.watchers:
            watcher.close()
        end = time.monotonic() + CLOSE_SECONDS
        while self.by_fd and time.monotonic() < end:
            self.poll(0.1)
        for watcher in list(self.by_fd.values()):
            watcher.fail(None)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="ws://host:port/path?query")
    parser.add_argument("--count", type=int, required=True, help="watchers in this process")
    parser.add_argument("--batch", type=int, default=50, help="connections opening at once")
    parser.add_argument("--out", required=True, help="where to write the pickle of results")
    parser.add_argument(
        "--final", action="append", default=[], help="message type that ends a watcher's stream"
    )
    parser.add_argument("--poll-ms", type=float, default=1.0, help="pause between busy polls")
    parser.add_argument("--timeout", type=float, default=600, help="seconds after connecting")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    crowd = Crowd(args.url, set(args.final))
    start = time.perf_counter()
    crowd.connect(args.count, args.batch)
    connected = sum(w.welcomed and w.error is None for w in crowd.watchers)
    errors = sorted({w.error for w in crowd.watchers if w.error is not None})
    say(
        event="connected",
        connected=connected,
        failed=args.count - connected,
        errors=errors[:5],
        seconds=round(time.perf_counter() - start, 3),
        cpu_s=cpu_seconds(),
    )
    crowd.stream(args.timeout, args.poll_ms / 1000)
    streamed = cpu_seconds()
    crowd.close_all()
    results = {
        "texts": crowd.messages.texts,
        "watchers": [watcher.result() for watcher in crowd.watchers],
    }
    with open(args.out, "wb") as out:
        pickle.dump(results, out, protocol=pickle.HIGHEST_PROTOCOL)
    say(event="done", finished=sum(w.finished for w in crowd.watchers), cpu_s=streamed)


if __name__ == "__main__":
    main()
