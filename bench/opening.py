"""Opening: a tender with many large sealed bids passes its deadline; how soon is it opened?

The bench builds a fresh platform in a temporary data folder (a SQLite file, or a fresh
PostgreSQL database that it creates and drops) through the platform's own code: the
migrations, a tender created and published by the service, and N bidders each handing in a
sealed bid of --mib MiB (a valid bid form: a ZIP of bid.json and a random stored document) by
the upload checks, the bid service and the blob store (bench/_opening_platform.py).

Each opening then runs as in a server, in this process: the tender's deadline is set --lead
seconds ahead and a real OpeningScheduler with a lease.Context of --workers threads is
started; it fires at the deadline and runs the pipeline to `opening.completed`. The figures
come from the events table: ours = opening.completed `at` - deadline, lag = opening.started
`at` - deadline. Between openings the bench undoes the opening (its row and events) and sets a
new deadline, so every opening opens the same bids from the same files.

On the same sealed files, in the same run (bench/_opening_baselines.py):
- age_cli: the `age` command, `age -d -i identity.txt file > /dev/null`, one process per file,
  in turn, with the tender's identity written as an age identity file;
- floor: bidding.crypto.age.unseal of each file to a null sink in this process, in turn, with
  no database: the least the opening can cost;
- the floor in a ThreadPoolExecutor and a ProcessPoolExecutor of --pool workers, to see whether
  threads or processes would pay, and open_bid: the pipeline's whole per-bid work (hashing,
  unsealing, reading the form) in turn, without the database.
Rounds alternate the order of the worker counts; the best of each figure counts (the
machine's other work only ever slows a run down). Every file is in the page cache for all.

One JSON line per backend: ours_s (the best worker count), ours_workers, age_cli_s, floor_s,
ratio_age_cli = ours/age_cli, ratio_floor = ours/floor, the opening.started lag (ms), how
late the event loop woke a 5 ms timer while an opening ran (max per run, and p99: what a live
watcher's request would wait), the phases of the best opening, the pool figures, the backend,
bids, and sizes.
Target: ratio_age_cli <= 1.5. The exit status is 1 when an opening does not end in
opening.completed with every bid decrypted.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import _opening_baselines as baselines
from _harness import MIB, age_command
from _opening_platform import Platform, arm, platform
from sqlalchemy import select

from bidding.opening import events as ev
from bidding.opening import lease
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler, instance_name

TARGET_RATIO_AGE_CLI = 1.5
RUNNER = "in-process OpeningScheduler + lease.Context"
SCHEDULER_LOGGER = "bidding.opening.scheduler"


# --- one opening ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One opening, its times measured from the deadline by the events' `at`."""

    workers: int
    seconds: float  # deadline -> opening.completed
    lag: float  # deadline -> opening.started
    listed: float  # deadline -> bids.listed
    decrypted: float  # deadline -> the last bid.decrypted / bid.rejected
    loop_stall: float = 0.0  # during the opening, the longest a 5 ms timer woke late
    loop_stall_p99: float = 0.0

    def phases(self) -> dict[str, float]:
        """Each step's share: waiting for the start, sealing and listing, the bids, the end."""
        return {
            "start": round(self.lag, 3),
            "seal_and_list": round(self.listed - self.lag, 3),
            "bids": round(self.decrypted - self.listed, 3),
            "finish": round(self.seconds - self.decrypted, 3),
        }


class _Wake(logging.Handler):
    """Wakes the bench when the scheduler logs about the tender: finished, failed, taken over."""

    def __init__(self, tender_id: uuid.UUID, woken: asyncio.Event) -> None:
        super().__init__(logging.INFO)
        self._tender_id = tender_id
        self._woken = woken
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and record.args[:1] == (self._tender_id,):
            self._loop.call_soon_threadsafe(self._woken.set)


@contextlib.contextmanager
def _woken_by_scheduler(tender_id: uuid.UUID, woken: asyncio.Event) -> Iterator[None]:
    logger = logging.getLogger(SCHEDULER_LOGGER)
    handler, level = _Wake(tender_id, woken), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _completed(platform: Platform) -> bool:
    async with platform.session_factory() as session:
        done = await session.scalar(
            select(Opening.completed_at).where(Opening.tender_id == platform.tender_id)
        )
    return done is not None


async def _wait_finished(platform: Platform, woken: asyncio.Event, timeout: float) -> None:
    """Until the opening is completed; no polling while the scheduler's log is awaited.

    The database is looked at once a second only, in case the log were silent.
    """
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), 1)
            if await _completed(platform):
                return
            if woken.is_set():
                raise RuntimeError("the scheduler's opening failed (see its log above)")


def _since(deadline: datetime, event: Any) -> float:
    moment: datetime = event.at
    return (moment - deadline).total_seconds()


async def _figures(platform: Platform, deadline: datetime, workers: int) -> Run:
    """The run's times from its events, after checking that every bid was decrypted."""
    async with platform.session_factory() as session:
        events = await ev.after(session=session, tender_id=platform.tender_id)
    types = [event.type for event in events]
    bid_events = [e for e in events if e.type in (ev.BID_DECRYPTED, ev.BID_REJECTED)]
    decrypted = types.count(ev.BID_DECRYPTED)
    if types[-1:] != [ev.COMPLETED] or decrypted != len(platform.bids):
        reasons = sorted({e.data["reason"] for e in bid_events if e.type == ev.BID_REJECTED})
        raise RuntimeError(
            f"the opening ended with {types[-1:]}, {decrypted} of {len(platform.bids)} bids "
            f"decrypted (rejected: {', '.join(reasons) or 'none'})"
        )
    by_type = {event.type: event for event in events}
    return Run(
        workers=workers,
        seconds=_since(deadline, by_type[ev.COMPLETED]),
        lag=_since(deadline, by_type[ev.STARTED]),
        listed=_since(deadline, by_type[ev.BIDS_LISTED]),
        decrypted=_since(deadline, bid_events[-1]),
    )


async def _watch_loop(stalls: list[tuple[float, float]]) -> None:
    """Record how late the event loop wakes a 5 ms timer (what a watcher's request would wait),
    with the wall-clock time of each wake-up."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.005)
        stalls.append((time.time(), loop.time() - before - 0.005))


async def open_once(platform: Platform, *, workers: int, lead: float, timeout: float) -> Run:
    """Set the deadline `lead` seconds ahead, run a scheduler until the tender is opened."""
    deadline = await arm(platform, lead=timedelta(seconds=lead))
    ctx = lease.Context(
        session_factory=platform.session_factory,
        keys=platform.keys,
        blobs=platform.blobs,
        instance=instance_name(),
        lease=timedelta(seconds=platform.settings.opening_lease_seconds),
        workers=workers,
    )
    scheduler = OpeningScheduler(
        ctx, sync_every=timedelta(seconds=platform.settings.scheduler_sync_seconds)
    )
    woken = asyncio.Event()
    stalls: list[tuple[float, float]] = []
    with _woken_by_scheduler(platform.tender_id, woken):
        await scheduler.start()
        watcher = asyncio.create_task(_watch_loop(stalls))
        try:
            await _wait_finished(platform, woken, lead + timeout)
        finally:
            watcher.cancel()
            await scheduler.stop()
    run = await _figures(platform, deadline, workers)
    # Only while the opening ran: from the deadline to opening.completed.
    start = deadline.timestamp()
    during = [stall for moment, stall in stalls if start <= moment <= start + run.seconds]
    during.sort()
    p99 = during[int(len(during) * 0.99)] if during else 0.0
    return dataclasses.replace(run, loop_stall=max(during, default=0.0), loop_stall_p99=p99)


# --- the bench -----------------------------------------------------------------------------


def _best(values: Sequence[float]) -> float:
    return round(min(values), 3)


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs > 0 else None


async def run_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """Set up, then `args.runs` rounds of every opening and baseline; the JSON line."""
    age_path = age_command()
    with tempfile.TemporaryDirectory(prefix="bidding-opening-") as temp:
        folder = Path(temp)
        async with platform(
            folder,
            backend=backend,
            postgres=args.postgres,
            bids=args.bids,
            size=round(args.mib * MIB),
        ) as plat:
            identity_file = folder / "identity.txt"
            baselines.write_identity_file(identity_file, plat.identity)
            files = [bid.path for bid in plat.bids]
            runs: list[Run] = []
            seconds: dict[str, list[float]] = {}
            pool = args.pool
            for number in range(args.runs):
                order = args.workers if number % 2 == 0 else args.workers[::-1]
                for workers in order:
                    run = await open_once(
                        plat, workers=workers, lead=args.lead, timeout=args.timeout
                    )
                    runs.append(run)
                for name, measure in {
                    "age_cli": lambda: baselines.age_cli(age_path, identity_file, files),
                    "floor": lambda: baselines.floor(files, plat.identity),
                    "floor_threads": lambda: baselines.floor_threads(files, plat.identity, pool),
                    "floor_processes": lambda: baselines.floor_processes(
                        files, plat.identity, pool
                    ),
                    "open_bid": lambda: baselines.open_bids(plat),
                }.items():
                    seconds.setdefault(name, []).append(measure())
            setup_seconds = plat.setup_seconds
            sealed_mean = plat.sealed_bytes // len(plat.bids)

    best = min(runs, key=lambda run: run.seconds)
    ours = best.seconds
    age_cli, floor = min(seconds["age_cli"]), min(seconds["floor"])
    ratio_age_cli = _ratio(ours, age_cli)
    line: dict[str, Any] = {
        "bench": "opening",
        "backend": backend,
        "runner": RUNNER,
        "bids": args.bids,
        "plaintext_bytes": round(args.mib * MIB),
        "sealed_bytes": sealed_mean,
        "runs": args.runs,
        "lead_s": args.lead,
        "cpus": len(os.sched_getaffinity(0)),
        "ours_s": round(ours, 3),
        "ours_workers": {
            str(workers): _best([run.seconds for run in runs if run.workers == workers])
            for workers in args.workers
        },
        "age_cli_s": round(age_cli, 3),
        "floor_s": round(floor, 3),
        "ratio_age_cli": ratio_age_cli,
        "ratio_floor": _ratio(ours, floor),
        "within_target": ratio_age_cli is not None and ratio_age_cli <= TARGET_RATIO_AGE_CLI,
        "opening_started_lag_ms": round(best.lag * 1000, 1),
        "opening_started_lag_ms_max": round(max(run.lag for run in runs) * 1000, 1),
        "loop_stall_max_ms": round(max(run.loop_stall for run in runs) * 1000, 1),
        "loop_stall_max_ms_runs": [round(run.loop_stall * 1000, 1) for run in runs],
        "loop_stall_p99_ms": round(max(run.loop_stall_p99 for run in runs) * 1000, 1),
        "best_workers": best.workers,
        "best_phases_s": best.phases(),
        f"floor_threads{args.pool}_s": _best(seconds["floor_threads"]),
        f"floor_processes{args.pool}_s": _best(seconds["floor_processes"]),
        "open_bid_s": _best(seconds["open_bid"]),
        "setup_s": round(setup_seconds, 1),
    }
    return line


def _workers(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of thread counts, each >= 1")
    return list(dict.fromkeys(counts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bids", type=int, default=200, help="bids, one per bidder (200)")
    parser.add_argument("--mib", type=float, default=1, help="plaintext MiB of each bid (1)")
    parser.add_argument(
        "--database",
        "--backend",
        dest="backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="(sqlite)",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database to create and drop the bench's own database from",
    )
    parser.add_argument(
        "--workers", type=_workers, default=[1, 2], help="opening threads to compare (1,2)"
    )
    parser.add_argument(
        "--pool", type=int, default=2, help="threads and processes of the floor's pools (2)"
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of every measurement (3)")
    parser.add_argument(
        "--lead", type=float, default=1.5, help="seconds from arming to the deadline (1.5)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds allowed per opening (600)"
    )
    args = parser.parse_args()
    if min(args.bids, args.runs, args.pool) < 1 or args.mib <= 0 or args.lead < 0:
        parser.error("--bids, --runs and --pool must be at least 1, --mib and --lead positive")
    if args.bids < 3:
        parser.error("--bids must be at least 3: the tender needs three valid bids to open")
    # Warnings and errors of the platform on stderr; the scheduler's info goes to the bench.
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    logging.getLogger().addHandler(stderr)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        try:
            line = asyncio.run(run_backend(args, backend))
        except RuntimeError as exc:
            sys.exit(f"opening: {backend}: {exc}")
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
