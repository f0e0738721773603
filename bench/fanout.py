"""Fan-out: thousands of watchers in one opening's live room; is every event delivered, how late?

The bench builds a fresh platform in a temporary data folder (a SQLite file, or a fresh
PostgreSQL database that it creates and drops) through the platform's own code, as
bench/opening.py does (bench/_opening_platform.py): a tender published by the service and
--bids bidders each handing in a small sealed bid; the tender is then made public to watch
(public_opening, set in the database: the bench's shortcut). `python -m bidding serve` runs
as a separate process on that data folder with its own scheduler (checking the database every
second). --generators load-generator processes (bench/_fanout_watchers.py) connect --watchers
anonymous watchers between them to `WS /api/v1/tenders/{id}/opening/live?after=0`, a batch at
a time, each counted once its welcome has arrived. The bench then sets the tender's deadline
--lead seconds ahead in the database; the server opens the tender by itself and its live room
streams the opening's events (opening.started, log.sealed, bids.listed, bid.decrypted per
bid, scores.computed, record.published, opening.completed) to every watcher.

Each watcher records every message and the time it arrived in its process (time.time()).
The load generators are lean (one epoll loop, a minimal frame parser, see the helper's doc):
the servers share the machine with them.
- delivered: the events a watcher got as the database holds them (envelope {seq, type, at,
  data} equal to the stored event's), each exactly once, in seq order, counted over every
  watcher asked for (one that never connected got nothing): delivered_pct is delivered /
  (watchers x events); incomplete_watchers did not get exactly seq 1..last, in order, once
  each; ended_early counts why connections ended before the last event (close codes).
- latency of each delivery: arrival time - the event's `at` (stamped when the pipeline wrote
  it; the same machine clock), p50/p99/max over every (watcher, event). Per event also its
  first arrival at any watcher (at -> the room's first send: the database, the wake-up, the
  event loop's backlog) and the spread from its first to its last arrival (the fan-out);
  drain_ms: from the last event's `at` to its last arrival.
- memory per connection: the server's RSS (VmRSS) with every watcher connected minus its RSS
  before (after one watcher came and went, so what the first connection loads is not
  counted), / connected watchers, in KiB; its peak RSS (VmHWM) over the run; its CPU time
  while the watchers connected and while the events streamed, and the load generators' CPU
  time while the events streamed.

The baseline, in the same run: a bare `websockets` server (bench/_fanout_baseline.py) with
the same number of watchers connected the same way; on a trigger it replays the very events
our opening produced, at the same offsets from the first one (those our pipeline wrote
together are due together), each envelope stamped with `at` = the moment it is due and
serialized once, in two modes (--baselines): broadcast, websockets.broadcast() of each event
in turn (the issue's "bare websockets broadcast server"), and batched, the events due
together written to each connection in one write of frames serialized once (a floor no
ASGI server can reach, since ASGI sends one message at a time). Latency is measured the same
way (arrival - `at`); delivery compares seq, type and data.

Each of --runs runs builds a fresh platform and starts fresh servers; the baseline replays
that run's events at that run's pace. One JSON line per backend: the figures of the run where
our p99 was lowest (best_run), ours and the baselines' ("baseline" for broadcast,
"baseline_batched"), with delivery summed over every run and every run's p99 (p99_ms_runs);
p99_ratio = our p99 / the broadcast baseline's in that run, p99_ratio_batched against the
batched one (and _runs: in each run). Target: delivered_pct = 100 and p99_ratio <= 2. The
exit status is 1 when not every event reached every watcher.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import pickle
import signal
import sqlite3
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from _opening_platform import Platform, arm, platform
from rush import Server, clean_env, free_port, serving
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from bidding.opening import events as ev
from bidding.opening.models import Opening
from bidding.tenders.models import Tender

WATCHERS = Path(__file__).with_name("_fanout_watchers.py")
BASELINE = Path(__file__).with_name("_fanout_baseline.py")
API = "/api/v1"
FINAL_TYPES = (ev.COMPLETED, ev.FAILED)
TARGET_P99_RATIO = 2.0
CONNECT_SECONDS = 300  # for every watcher to connect
GENERATOR_EXIT_SECONDS = 120  # for a load generator to write its results once told to stop


# --- processes -----------------------------------------------------------------------------


def vm_kib(pid: int, field_name: str) -> int:
    """A /proc/PID/status figure in KiB: VmRSS (resident now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} for process {pid}")


@dataclass
class Generator:
    """A load-generator process, talking JSON lines on stdout; its results file."""

    process: asyncio.subprocess.Process
    out: Path
    log: Path

    async def hear(self, event: str) -> dict[str, Any]:
        """The next line it prints, which must be `event`."""
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"a load generator exited ({self.process.returncode}):\n{tail}")
        said: dict[str, Any] = json.loads(line)
        if said.get("event") != event:
            raise RuntimeError(f"a load generator said {said}, not {event}")
        return said

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.write(b"stop\n")

    async def end(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start_generators(
    url: str, *, watchers: int, generators: int, batch: int, folder: Path, name: str
) -> list[Generator]:
    started = []
    for number in range(generators):
        count = watchers // generators + (number < watchers % generators)
        if not count:
            continue
        out, log = folder / f"{name}-{number}.pickle", folder / f"{name}-{number}.log"
        finals = [arg for final in FINAL_TYPES for arg in ("--final", final)]
        with log.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(WATCHERS), "--url", url, "--count", str(count),
                "--batch", str(batch), "--out", str(out), *finals,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        started.append(Generator(process, out, log))
    return started


# --- one side: connect, stream, collect ----------------------------------------------------


@dataclass
class Load:
    """What the load generators recorded, and what the server spent meanwhile."""

    watchers: int
    connected: int
    connect_seconds: float
    connect_errors: list[str]
    rss_idle_kib: int
    rss_connected_kib: int
    rss_peak_kib: int
    cpu_connect_seconds: float
    cpu_stream_seconds: float
    load_cpu_stream_seconds: float  # the load generators' CPU time, all of them
    texts: list[list[bytes]]  # per generator, its distinct messages
    recorded: list[tuple[int, dict[str, Any]]]  # (generator, one watcher's record)


async def warm_up(url: str) -> None:
    """One watcher comes, is welcomed and goes: what a first connection loads is not counted."""
    async with websockets.connect(url, compression=None, open_timeout=30) as connection:
        await asyncio.wait_for(connection.recv(), 30)


async def load(
    server: Server,
    url: str,
    args: argparse.Namespace,
    folder: Path,
    *,
    name: str,
    trigger: Callable[[], Awaitable[None]],
    over: Callable[[], Awaitable[bool]],
) -> Load:
    """Connect the watchers, trigger the stream, wait until it is over, collect the records.

    `over` tells when the stream has ended at the server; the watchers then have --drain
    seconds more to get it all.
    """
    await warm_up(url)
    await asyncio.sleep(0.5)
    pid = server.process.pid
    rss_idle, cpu_idle = vm_kib(pid, "VmRSS"), server.cpu_seconds()
    generators = await start_generators(
        url, watchers=args.watchers, generators=args.generators, batch=args.batch,
        folder=folder, name=name,
    )  # fmt: skip
    try:
        start = time.perf_counter()
        async with asyncio.timeout(CONNECT_SECONDS):
            hello = await asyncio.gather(*(g.hear("connected") for g in generators))
        connect_seconds = time.perf_counter() - start
        failed = sum(said["failed"] for said in hello)
        if failed:
            errors = sorted({e for said in hello for e in said["errors"]})
            print(f"fanout: {name}: {failed} watchers did not connect: {errors}", file=sys.stderr)
        await asyncio.sleep(0.5)
        rss_connected, cpu_connected = vm_kib(pid, "VmRSS"), server.cpu_seconds()
        await trigger()
        done = asyncio.gather(*(g.hear("done") for g in generators))
        deadline = time.monotonic() + args.timeout
        drain_until = None
        # Until the watchers are done and the stream is over (both, whichever comes first).
        while not (done.done() and drain_until is not None):
            await asyncio.wait({done}, timeout=0.5)
            now = time.monotonic()
            if server.process.poll() is not None:
                raise RuntimeError("the server exited during the stream")
            if drain_until is None and await over():
                drain_until = now + args.drain
            if now > deadline or (drain_until is not None and now > drain_until):
                for generator in generators:
                    generator.stop()
                async with asyncio.timeout(GENERATOR_EXIT_SECONDS):
                    await done
                break
        bye = done.result()
        cpu_stream = server.cpu_seconds() - cpu_connected
        load_cpu = sum(b["cpu_s"] for b in bye) - sum(h["cpu_s"] for h in hello)
        rss_peak = vm_kib(pid, "VmHWM")
        texts: list[list[bytes]] = []
        recorded: list[tuple[int, dict[str, Any]]] = []
        for number, generator in enumerate(generators):
            with generator.out.open("rb") as src:
                results = pickle.load(src)
            texts.append(results["texts"])
            recorded += [(number, watcher) for watcher in results["watchers"]]
    finally:
        for generator in generators:
            await generator.end()
    return Load(
        watchers=args.watchers,
        connected=sum(said["connected"] for said in hello),
        connect_seconds=connect_seconds,
        connect_errors=sorted({e for said in hello for e in said["errors"]})[:5],
        rss_idle_kib=rss_idle,
        rss_connected_kib=rss_connected,
        rss_peak_kib=rss_peak,
        cpu_connect_seconds=cpu_connected - cpu_idle,
        cpu_stream_seconds=cpu_stream,
        load_cpu_stream_seconds=load_cpu,
        texts=texts,
        recorded=recorded,
    )


# --- the figures ---------------------------------------------------------------------------


def epoch(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def percentile_ms(ordered: Sequence[float], percent: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000, 1)


def figures(result: Load, expected: list[dict[str, Any]], *, same_at: bool) -> dict[str, Any]:
    """Delivery, latency, memory and CPU of one side.

    `expected` are the events as stored; with same_at a delivered event carries the stored
    `at` as well, else only seq, type and data must match (the baseline stamps its own).
    """
    wanted = {event["seq"]: event for event in expected}
    order = [event["seq"] for event in expected]
    last_seq = order[-1] if order else None

    def matches(message: dict[str, Any]) -> bool:
        event = wanted.get(message["seq"])
        if event is None:
            return False
        if same_at:
            return message == event
        return (message["type"], message["data"]) == (event["type"], event["data"]) and set(
            message
        ) == set(event)

    parsed = [[json.loads(text) for text in texts] for texts in result.texts]
    at_epochs = [[epoch(m["at"]) if "at" in m else math.nan for m in ms] for ms in parsed]
    delivered = complete = duplicates = out_of_order = unexpected = bad_welcome = 0
    latencies = array("d")
    last_arrival = 0.0
    first: dict[int, float] = {}  # per event, its earliest and latest arrival at any watcher
    final: dict[int, float] = {}
    endings: Counter[str] = Counter()
    for generator, record in result.recorded:
        messages = parsed[generator]
        ats = at_epochs[generator]
        numbers = array("I")
        numbers.frombytes(record["numbers"])
        times = array("d")
        times.frombytes(record["times"])
        if record["error"] is not None:
            endings[record["error"]] += 1
        if not numbers:
            continue
        welcome = messages[numbers[0]]
        if welcome.get("type") != "welcome" or "seq" in welcome:
            bad_welcome += 1
        seqs: list[int] = []
        good: set[int] = set()
        for number, moment in zip(numbers, times, strict=True):
            message = messages[number]
            if "seq" not in message:
                if message.get("type") not in ("welcome", "tick"):
                    unexpected += 1
                continue
            seqs.append(message["seq"])
            if matches(message):
                seq = message["seq"]
                good.add(seq)
                latency = moment - ats[number]
                latencies.append(latency)
                first[seq] = min(first.get(seq, latency), latency)
                final[seq] = max(final.get(seq, latency), latency)
                if seq == last_seq:
                    last_arrival = max(last_arrival, moment)
            else:
                unexpected += 1
        duplicates += len(seqs) - len(set(seqs))
        in_order = seqs == sorted(seqs)
        out_of_order += not in_order
        delivered += len(good) if in_order else longest_in_order(seqs, good)
        complete += seqs == order and len(good) == len(order)
    ordered = sorted(latencies)
    firsts = sorted(first.values())
    spreads = sorted(final[seq] - first[seq] for seq in first)
    expected_total = result.watchers * len(expected)
    kib_per_connection = (
        (result.rss_connected_kib - result.rss_idle_kib) / result.connected
        if result.connected
        else None
    )
    return {
        "connected": result.connected,
        "connect_s": round(result.connect_seconds, 2),
        "connect_errors": result.connect_errors,
        "delivered": delivered,
        "expected": expected_total,
        "delivered_pct": round(100 * delivered / expected_total, 3) if expected_total else None,
        "incomplete_watchers": result.watchers - complete,
        "duplicates": duplicates,
        "out_of_order_watchers": out_of_order,
        "unexpected_messages": unexpected,
        "bad_welcomes": bad_welcome,
        "ended_early": dict(endings.most_common(5)),
        "latency_ms": {
            "p50": percentile_ms(ordered, 50),
            "p99": percentile_ms(ordered, 99),
            "max": percentile_ms(ordered, 100),
        },
        # Per event: its earliest arrival at any watcher (at -> the room's first send), and
        # how long from there to its latest (the fan-out itself).
        "first_arrival_ms": {"p50": percentile_ms(firsts, 50), "max": percentile_ms(firsts, 100)},
        "spread_ms": {"p50": percentile_ms(spreads, 50), "max": percentile_ms(spreads, 100)},
        "drain_ms": (
            round((last_arrival - epoch(expected[-1]["at"])) * 1000, 1)
            if same_at and last_arrival
            else None
        ),
        "rss_idle_mib": round(result.rss_idle_kib / 1024, 1),
        "rss_connected_mib": round(result.rss_connected_kib / 1024, 1),
        "rss_peak_mib": round(result.rss_peak_kib / 1024, 1),
        "kib_per_connection": round(kib_per_connection, 1) if kib_per_connection else None,
        "cpu_connect_s": round(result.cpu_connect_seconds, 2),
        "cpu_stream_s": round(result.cpu_stream_seconds, 2),
        "load_cpu_stream_s": round(result.load_cpu_stream_seconds, 2),
    }


def longest_in_order(seqs: list[int], good: set[int]) -> int:
    """Good events delivered in increasing seq order, each once: what a watcher can use."""
    count, last = 0, 0
    for seq in seqs:
        if seq in good and seq > last:
            count, last = count + 1, seq
    return count


# --- the two sides -------------------------------------------------------------------------


async def stored_events(plat: Platform) -> list[dict[str, Any]]:
    async with plat.session_factory() as session:
        return [ev.envelope(e) for e in await ev.after(session=session, tender_id=plat.tender_id)]


def sqlite_completed(plat: Platform) -> bool:
    """Whether the bench's one opening has completed, read without taking any lock."""
    path = make_url(plat.settings.resolved_database_url).database
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM openings WHERE completed_at IS NOT NULL"
        ).fetchone()
    return bool(count)


async def run_ours(
    args: argparse.Namespace, plat: Platform, folder: Path
) -> tuple[Load, list[dict[str, Any]]]:
    """Our server, our watchers, one opening; the load and the events as stored."""
    async with plat.session_factory() as session, session.begin():
        await session.execute(
            update(Tender).where(Tender.id == plat.tender_id).values(public_opening=True)
        )
    settings = {"data_dir": str(plat.settings.data_dir), "demo": "0",
                "min_bidding_period_seconds": "0", "scheduler_sync_seconds": "1"}  # fmt: skip
    if plat.settings.database_url:
        settings["database_url"] = plat.settings.database_url
    port = free_port()
    url = f"ws://127.0.0.1:{port}{API}/tenders/{plat.tender_id}/opening/live?after=0"

    async def trigger() -> None:
        await arm(plat, lead=timedelta(seconds=args.lead))

    async def over() -> bool:
        if plat.backend == "sqlite":
            # Not through the platform's engine: on SQLite its every transaction, reads too,
            # begins IMMEDIATE and would queue for the write lock with the server's pipeline.
            return await asyncio.to_thread(sqlite_completed, plat)
        async with plat.session_factory() as session:
            done = await session.scalar(
                select(Opening.completed_at).where(Opening.tender_id == plat.tender_id)
            )
        return done is not None

    with serving(
        [sys.executable, "-m", "bidding", "serve", "--port", str(port)],
        env=clean_env(**settings), log=folder / "server.log", port=port,
    ) as server:  # fmt: skip
        await server.wait_ready(f"{API}/health")
        result = await load(server, url, args, folder, name="ours", trigger=trigger, over=over)
    return result, await stored_events(plat)


async def run_baseline(
    args: argparse.Namespace, events: list[dict[str, Any]], tender_id: str, folder: Path, mode: str
) -> Load:
    """The bare websockets server replaying `events` at their offsets to as many watchers."""
    first = epoch(events[0]["at"])
    replay = [[epoch(e["at"]) - first, e["seq"], e["type"], e["data"]] for e in events]
    script = folder / "events.json"
    script.write_text(json.dumps(replay))
    port = free_port()
    url = f"ws://127.0.0.1:{port}/live?after=0"
    started: list[float] = []

    async def trigger() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            (await client.get(f"http://127.0.0.1:{port}/go")).raise_for_status()
        started.append(time.monotonic())

    async def over() -> bool:
        return time.monotonic() > started[0] + replay[-1][0]

    with serving(
        [sys.executable, str(BASELINE), "--port", str(port), "--events", str(script),
         "--tender-id", tender_id, "--mode", mode],
        env=clean_env(), log=folder / "baseline.log", port=port,
    ) as baseline:  # fmt: skip
        await baseline.wait_ready("/health")
        return await load(baseline, url, args, folder, name="baseline", trigger=trigger, over=over)


@dataclass
class Run:
    """One run: a fresh platform and server, the same load on the baseline next."""

    events: list[dict[str, Any]]
    ours: dict[str, Any]
    baselines: dict[str, dict[str, Any]]  # by mode
    setup_seconds: float


async def run_once(args: argparse.Namespace, backend: str) -> Run:
    with tempfile.TemporaryDirectory(prefix="bidding-fanout-") as temp:
        folder = Path(temp)
        async with platform(
            folder, backend=backend, postgres=args.postgres, bids=args.bids, size=args.bid_bytes
        ) as plat:
            ours, events = await run_ours(args, plat, folder)
            if not events:
                raise RuntimeError("the opening wrote no event")
            if events[-1]["type"] not in FINAL_TYPES:
                raise RuntimeError(f"the opening did not end: its last event is {events[-1]}")
            setup_seconds = plat.setup_seconds
        baselines = {
            mode: figures(
                await run_baseline(args, events, str(plat.tender_id), folder, mode),
                events,
                same_at=False,
            )
            for mode in args.baselines
        }
    ours_figures = figures(ours, events, same_at=True)
    ours_figures["stream_s"] = round(epoch(events[-1]["at"]) - epoch(events[0]["at"]), 3)
    return Run(events, ours_figures, baselines, setup_seconds)


SUMMED = ("delivered", "expected", "incomplete_watchers", "duplicates", "out_of_order_watchers",
          "unexpected_messages", "bad_welcomes")  # fmt: skip


def p99_of(side: dict[str, Any]) -> float:
    p99: float | None = side["latency_ms"]["p99"]
    return math.inf if p99 is None else p99


def combined(sides: list[dict[str, Any]], best: int) -> dict[str, Any]:
    """Run `best`'s figures; delivery summed over every run, the fewest connected."""
    line = dict(sides[best])
    for key in SUMMED:
        line[key] = sum(side[key] for side in sides)
    expected = line["expected"]
    line["delivered_pct"] = round(100 * line["delivered"] / expected, 3) if expected else None
    line["connected"] = min(side["connected"] for side in sides)
    endings: Counter[str] = Counter()
    for side in sides:
        endings.update(side["ended_early"])
    line["ended_early"] = dict(endings.most_common(5))
    line["p99_ms_runs"] = [side["latency_ms"]["p99"] for side in sides]
    return line


def p99_ratio(run: Run, mode: str) -> float | None:
    ours, baseline = run.ours["latency_ms"]["p99"], run.baselines[mode]["latency_ms"]["p99"]
    return round(ours / baseline, 2) if ours is not None and baseline else None


async def run_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    runs = [await run_once(args, backend) for _ in range(args.runs)]
    # The baseline replays each run's own events at that run's pace: a run's two sides pair.
    best = min(range(len(runs)), key=lambda number: p99_of(runs[number].ours))
    events = runs[best].events
    line: dict[str, Any] = {
        "bench": "fanout",
        "backend": backend,
        "watchers": args.watchers,
        "generators": args.generators,
        "bids": args.bids,
        "events": len(events),
        "last_event": events[-1]["type"],
        "runs": args.runs,
        "best_run": best,
        "cpus": len(os.sched_getaffinity(0)),
    }
    line |= combined([run.ours for run in runs], best)
    line["stream_s_runs"] = [run.ours["stream_s"] for run in runs]
    for mode in args.baselines:
        # The baseline is websockets.broadcast(): "baseline"; any other by its name.
        key = "baseline" if mode == "broadcast" else f"baseline_{mode}"
        suffix = "" if mode == "broadcast" else f"_{mode}"
        sides = [run.baselines[mode] for run in runs]
        line[key] = {"mode": mode} | combined(sides, best)
        line[f"p99_ratio{suffix}"] = p99_ratio(runs[best], mode)
        line[f"p99_ratio{suffix}_runs"] = [p99_ratio(run, mode) for run in runs]
    ratio = line.get("p99_ratio")
    line["within_target"] = (
        line["delivered_pct"] == 100 and ratio is not None and ratio <= TARGET_P99_RATIO
    )
    line["setup_s"] = round(max(run.setup_seconds for run in runs), 1)
    return line


async def run_bounded(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    # SIGTERM as Ctrl-C: the servers, the load generators and the temporary data go too.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.total_timeout):
        return await run_backend(args, backend)


def _modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(modes) - {"broadcast", "batched"})
    if not modes or unknown:
        raise argparse.ArgumentTypeError("modes are broadcast and batched")
    return modes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watchers", type=int, default=2000, help="watchers in all (2000)")
    parser.add_argument(
        "--generators", type=int, default=4, help="load-generator processes sharing them (4)"
    )
    parser.add_argument(
        "--batch", type=int, default=50, help="connections each generator opens at once (50)"
    )
    parser.add_argument("--bids", type=int, default=200, help="bids, one per bidder (200)")
    parser.add_argument(
        "--bid-bytes", type=int, default=4096, help="plaintext bytes of each bid (4096)"
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="sqlite", help="(sqlite)"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database to create and drop the bench's own database from",
    )
    parser.add_argument(
        "--baselines",
        type=_modes,
        default=["broadcast", "batched"],
        help="the bare server's modes, comma-separated: broadcast (websockets.broadcast() of "
        "each event, the issue's baseline) and batched (the events due together in one write "
        "per connection, serialized once: the floor); default both",
    )
    parser.add_argument(
        "--runs", type=int, default=2, help="runs, each on a fresh platform and servers (2)"
    )
    parser.add_argument(
        "--lead", type=float, default=2, help="seconds from arming to the deadline (2)"
    )
    parser.add_argument(
        "--drain", type=float, default=30, help="seconds for the watchers after the end (30)"
    )
    parser.add_argument(
        "--timeout", type=float, default=180, help="seconds allowed per stream (180)"
    )
    parser.add_argument(
        "--total-timeout", type=float, default=1200, help="seconds allowed per backend (1200)"
    )
    args = parser.parse_args()
    if min(args.watchers, args.generators, args.batch, args.runs) < 1:
        parser.error("--watchers, --generators, --batch and --runs must be at least 1")
    if args.bids < 3:
        parser.error("--bids must be at least 3: the tender needs three valid bids to open")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    healthy = True
    for backend in backends:
        try:
            line = asyncio.run(run_bounded(args, backend))
        except (RuntimeError, TimeoutError) as exc:
            sys.exit(f"fanout: {backend}: {exc!r}")
        except (KeyboardInterrupt, asyncio.CancelledError):
            sys.exit(f"fanout: {backend}: stopped")
        print(json.dumps(line), flush=True)
        healthy = healthy and line["delivered_pct"] == 100
    if not healthy:
        sys.exit(1)


if __name__ == "__main__":
    main()
