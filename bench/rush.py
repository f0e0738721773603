"""Rush: every bidder uploads a sealed bid to one tender at the same moment.

For each backend (SQLite, PostgreSQL) the bench builds a fresh platform in a temporary data
folder (and a fresh PostgreSQL database), starts `python -m bidding serve` as a separate
process, and next to it the baseline: a bare Starlette endpoint that streams a body to disk
with SHA-256 (bench/_rush_baseline.py), started the same way. Each run publishes a new
tender as an officer and seals one bid per bidder to its opening recipient; the timed part
is N concurrent `POST /api/v1/tenders/{id}/bids`, then the same bodies sent the same way to
the baseline. Runs alternate which goes first; the best run of each counts (the machine's
other work only ever slows a run down), losses count in every run.

Each upload ends in exactly one of three ways:
- accepted: answered 201 (with a receipt);
- refused: answered 4xx with the platform's error body {"type", "detail"}, a deliberate no
  (a healthy run has none);
- failed: anything else: a 5xx, another answer, a transport error or a timeout.

lost = failed uploads + accepted uploads that the platform does not hold once the server
has stopped: held means the receipt's bid is a row with the digest of the body that was
sent, the receipt's leaf is in the tender's log, and the blob file exists and hashes to
that digest. For the baseline an accepted upload is lost when the digest it answers is not
that of the body sent. `log_gapless` says whether each tender's log positions are 0..n-1.

One JSON line per backend: accepted, refused, lost, p50/p99 latency of the accepted uploads
(send to answer), MB/s (bytes accepted / wall time from the first send to the last answer,
MB = 10^6 bytes), the server's peak RSS (VmHWM over all runs), its CPU time in the run,
the same figures of the baseline, and throughput_ratio = ours / baseline MB/s.
Targets: lost = 0, ratio >= 0.7, peak RSS <= 256 MiB. The exit status is 1 when anything
was lost or a log has a gap.
"""

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _harness import MIB
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import AccessToken, Organization, Role, User
from bidding.auth.passwords import hash_password
from bidding.auth.tokens import hash_token, new_token
from bidding.auth.uscc import ALPHABET, check_character
from bidding.crypto import age
from bidding.db import create_engine, create_session_factory, utcnow
from bidding.settings import Settings
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.models import Bid, LogEntry

BASELINE = Path(__file__).with_name("_rush_baseline.py")
API = "/api/v1"
START_SECONDS = 60  # for a server to answer its health check
STOP_SECONDS = 15  # for a server to stop after SIGTERM, before SIGKILL


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its BIDDING_ settings, with these instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDDING_")}
    return env | {f"BIDDING_{name.upper()}": value for name, value in settings.items()}


@dataclass
class Server:
    """A server process on 127.0.0.1, its output in a log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def peak_rss_mib(self) -> float:
        """The process's peak resident set size so far (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for a failure report."""
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  | {line}" for line in text)

    def cpu_seconds(self) -> float:
        """The process's CPU time so far, user and system."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def wait_ready(self, health: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited:\n{self.log.read_text()[-4000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(health)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not come up in {START_SECONDS} s")
                await asyncio.sleep(0.2)


@contextlib.contextmanager
def serving(
    command: Sequence[str], *, env: dict[str, str], log: Path, port: int
) -> Iterator[Server]:
    """Run a server until the block ends, however it ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process=process, url=f"http://127.0.0.1:{port}", log=log)
    try:
        yield server
    except BaseException:
        bench = Path(sys.argv[0]).stem
        print(
            f"{bench}: stopped by an error; {log.name} ends:\n{server.log_tail()}", file=sys.stderr
        )
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the platform's set-up -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh database next to admin_url's, dropped afterwards; its SQLAlchemy URL."""
    name = f"bidding_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def credit_code() -> str:
    """A random, valid unified social credit code."""
    first17 = "91" + "".join(secrets.choice(ALPHABET) for _ in range(15))
    return first17 + check_character(first17)


async def add_accounts(
    session: AsyncSession, *, bidders: int, label: str, password_hash: str
) -> list[User]:
    """An officer, then `bidders` bidders, each of its own organization, added and flushed.

    Written directly: `bidding users create` would spend an Argon2 hash and a process start
    on each, and the benches are about other paths. Nobody signs in with the password.
    """
    roles = [Role.officer] + [Role.bidder] * bidders
    organizations = [
        Organization(id=uuid.uuid4(), name=f"{label} {role.value} {i}", code=credit_code())
        for i, role in enumerate(roles)
    ]
    session.add_all(organizations)
    await session.flush()
    users = [
        User(
            id=uuid.uuid4(),
            email=f"{role.value}-{i}@{label.lower()}.example.com",
            display_name=f"{label} {role.value} {i}",
            password_hash=password_hash,
            role=role,
            organization_id=organization.id,
        )
        for i, (role, organization) in enumerate(zip(roles, organizations, strict=True))
    ]
    session.add_all(users)
    await session.flush()
    return users


async def create_accounts(database_url: str, bidders: int) -> tuple[str, list[str]]:
    """An officer and `bidders` bidders, each of its own organization; their bearer tokens."""
    password_hash = hash_password(secrets.token_urlsafe(16))
    expires_at = utcnow() + timedelta(days=1)
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            users = await add_accounts(
                session, bidders=bidders, label="Rush", password_hash=password_hash
            )
            tokens = [new_token() for _ in users]
            session.add_all(
                AccessToken(token_hash=hash_token(token), user_id=user.id, expires_at=expires_at)
                for token, user in zip(tokens, users, strict=True)
            )
    finally:
        await engine.dispose()
    return tokens[0], tokens[1:]


async def publish_tender(url: str, officer_token: str) -> tuple[str, str]:
    """A published tender taking bids for a day; its id and opening recipient."""
    headers = {"Authorization": f"Bearer {officer_token}"}
    body = {
        "reference": f"RUSH-{secrets.token_hex(4)}",
        "title": "Rush: everybody bids at once",
        "buyer_name": "Rush Buyer",
        "ceiling_price": "1000000.00",
        "bid_deadline": (utcnow() + timedelta(days=1)).isoformat(),
        "scoring": {"method": "lowest_price"},
    }
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        created = await client.post(f"{API}/tenders", json=body)
        created.raise_for_status()
        tender_id: str = created.json()["id"]
        published = await client.post(f"{API}/tenders/{tender_id}/publish")
        published.raise_for_status()
        recipient: str = published.json()["opening_recipient"]
    return tender_id, recipient


def seal_bids(recipient: str, *, count: int, size: int) -> list[bytes]:
    """`count` sealed bids of one random plaintext; each sealing has its own file key."""
    plaintext = os.urandom(size)
    recipients = [age.Recipient.parse(recipient)]
    return [age.seal_bytes(plaintext, recipients) for _ in range(count)]


# --- the timed part ------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """How one upload ended: the status (None if no answer), the time it took, the answer."""

    status: int | None
    seconds: float
    answer: Any
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 201

    @property
    def refused(self) -> bool:
        return (
            self.status is not None
            and 400 <= self.status < 500
            and isinstance(self.answer, dict)
            and {"type", "detail"} <= self.answer.keys()
        )

    @property
    def outcome(self) -> str:
        if self.status is None:
            return self.error or "no answer"
        answer_type = self.answer.get("type") if isinstance(self.answer, dict) else None
        return f"{self.status} {answer_type}" if answer_type else str(self.status)


@dataclass(frozen=True)
class Rush:
    """How every upload ended, the wall time, and what the server spent."""

    uploads: list[Upload]
    accepted_bytes: int
    seconds: float
    server_cpu_seconds: float
    server_peak_rss_mib: float

    @property
    def megabytes_per_second(self) -> float:
        return self.accepted_bytes / self.seconds / 1e6


async def upload(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    gate: asyncio.Semaphore,
) -> Upload:
    async with gate:
        start = time.perf_counter()
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Upload(None, time.perf_counter() - start, None, type(exc).__name__)
        seconds = time.perf_counter() - start
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return Upload(response.status_code, seconds, answer)


async def rush(
    server: Server,
    path: str,
    bodies: Sequence[bytes],
    tokens: Sequence[str | None],
    *,
    concurrency: int,
) -> Rush:
    """Send every body at once (at most `concurrency` in flight); how each upload ended."""
    url = server.url + path
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # No per-read timeout: a request may wait its turn; the bench's overall timeout bounds it.
    timeout = httpx.Timeout(None, connect=30)
    gate = asyncio.Semaphore(concurrency)
    os.sync()  # the previous run's writes are not flushed on this run's time
    cpu = server.cpu_seconds()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        start = time.perf_counter()
        uploads = await asyncio.gather(
            *(
                upload(
                    client,
                    url,
                    body,
                    {"Content-Type": "application/octet-stream"}
                    | ({"Authorization": f"Bearer {token}"} if token else {}),
                    gate,
                )
                for body, token in zip(bodies, tokens, strict=True)
            )
        )
        seconds = time.perf_counter() - start
    return Rush(
        uploads=list(uploads),
        accepted_bytes=sum(len(b) for u, b in zip(uploads, bodies, strict=True) if u.accepted),
        seconds=seconds,
        server_cpu_seconds=server.cpu_seconds() - cpu,
        server_peak_rss_mib=server.peak_rss_mib(),
    )


def percentile_ms(values: Sequence[float], percent: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000, 1)


def figures(runs: Sequence[Rush], *, not_held: int) -> dict[str, Any]:
    """The best run's figures; refusals and losses of every run; the peak RSS of all."""
    best = max(runs, key=lambda run: run.megabytes_per_second)
    uploads = [u for run in runs for u in run.uploads]
    latencies = [u.seconds for u in best.uploads if u.accepted]
    return {
        "accepted": sum(u.accepted for u in best.uploads),
        "refused": sum(u.refused for u in uploads),
        "lost": sum(not u.accepted and not u.refused for u in uploads) + not_held,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "mb_s": round(best.megabytes_per_second, 1),
        "server_peak_rss_mib": round(max(run.server_peak_rss_mib for run in runs), 1),
        "server_cpu_s": round(best.server_cpu_seconds, 1),
    }


def report_failures(name: str, result: Rush, server: Server) -> None:
    """What went wrong, on stderr: the JSON line only counts it."""
    outcomes = Counter(u.outcome for u in result.uploads if not u.accepted)
    if outcomes:
        summary = ", ".join(f"{outcome} x{n}" for outcome, n in outcomes.most_common())
        print(f"rush: {name}: not accepted: {summary}", file=sys.stderr)
        print(f"rush: {name}: the server's output ends:\n{server.log_tail()}", file=sys.stderr)


# --- checking what was accepted ------------------------------------------------------------


def file_sha256(path: Path) -> str:
    with path.open("rb") as blob:
        return hashlib.file_digest(blob, "sha256").hexdigest()


Accepted = list[tuple[Any, str]]  # the answer to an accepted upload, the digest sent


async def missing_bids(
    database_url: str, blobs: FilesystemBlobStore, accepted: dict[str, Accepted]
) -> tuple[int, bool]:
    """How many receipted bids the platform does not hold; whether every log is gapless.

    `accepted` maps each tender to its accepted uploads.
    """
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            ids = [uuid.UUID(tender_id) for tender_id in accepted]
            bids = {
                b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id.in_(ids)))
            }
            entries = list(
                await session.scalars(select(LogEntry).where(LogEntry.tender_id.in_(ids)))
            )
    finally:
        await engine.dispose()
    leaves = {entry.leaf_hash: entry for entry in entries}
    gapless = all(
        sorted(e.position for e in entries if e.tender_id == tender_id)
        == list(range(sum(e.tender_id == tender_id for e in entries)))
        for tender_id in ids
    )
    missing = 0
    for receipt, digest in (pair for pairs in accepted.values() for pair in pairs):
        try:
            bid = bids.get(uuid.UUID(receipt["body"]["bid_id"]))
            entry = leaves.get(receipt["leaf_hash"])
            held = (
                bid is not None
                and entry is not None
                and entry.bid_id == bid.id
                and bid.sha256 == receipt["body"]["sha256"] == digest
                and blobs.exists(digest)
                and file_sha256(blobs.path(digest)) == digest
            )
        except (KeyError, TypeError, ValueError):
            held = False
        missing += not held
    return missing, gapless


def wrong_digests(run: Rush, digests: Sequence[str]) -> int:
    """Baseline uploads answered 201 with another digest than that of the body sent."""
    return sum(
        u.accepted and (not isinstance(u.answer, dict) or u.answer.get("sha256") != digest)
        for u, digest in zip(run.uploads, digests, strict=True)
    )


# --- one backend ---------------------------------------------------------------------------


async def run_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """Set up, rush ours and the baseline `args.runs` times each, check, tear down."""
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bidding-rush-")))
        data_dir = folder / "data"
        settings = {"data_dir": str(data_dir), "demo": "0", "min_bidding_period_seconds": "0"}
        if backend == "postgresql":
            settings["database_url"] = await stack.enter_async_context(
                postgres_database(args.postgres)
            )
        database_url = Settings(
            data_dir=data_dir, database_url=settings.get("database_url")
        ).resolved_database_url
        env = clean_env(**settings)
        subprocess.run(
            [sys.executable, "-m", "bidding", "db", "upgrade"],
            env=env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        officer_token, tokens = await create_accounts(database_url, args.bidders)
        (folder / "baseline").mkdir()
        ours_port, baseline_port = free_port(), free_port()
        ours_runs: list[Rush] = []
        baseline_runs: list[Rush] = []
        accepted: dict[str, Accepted] = {}
        baseline_not_held = 0
        with (
            serving(
                [sys.executable, "-m", "bidding", "serve", "--port", str(ours_port)],
                env=env, log=folder / "server.log", port=ours_port,
            ) as server,
            serving(
                [sys.executable, str(BASELINE), "--port", str(baseline_port),
                 "--folder", str(folder / "baseline")],
                env=clean_env(), log=folder / "baseline.log", port=baseline_port,
            ) as baseline,
        ):  # fmt: skip
            await server.wait_ready(f"{API}/health")
            await baseline.wait_ready("/health")
            for number in range(args.runs):
                # A new tender each run: every bidder bids once, as in a real rush.
                tender_id, recipient = await publish_tender(server.url, officer_token)
                bodies = await asyncio.to_thread(
                    seal_bids, recipient, count=args.bidders, size=args.mib * MIB
                )
                digests = [hashlib.sha256(body).hexdigest() for body in bodies]
                # Which goes first alternates, so neither always finds the disk just written.
                order = ("ours", "baseline") if number % 2 == 0 else ("baseline", "ours")
                for side in order:
                    if side == "ours":
                        run = await rush(
                            server, f"{API}/tenders/{tender_id}/bids", bodies, tokens,
                            concurrency=args.concurrency,
                        )  # fmt: skip
                        report_failures(f"{backend} ours", run, server)
                        ours_runs.append(run)
                        accepted[tender_id] = [
                            (u.answer, digest)
                            for u, digest in zip(run.uploads, digests, strict=True)
                            if u.accepted
                        ]
                    else:
                        run = await rush(
                            baseline, "/upload", bodies, [None] * len(bodies),
                            concurrency=args.concurrency,
                        )  # fmt: skip
                        report_failures(f"{backend} baseline", run, baseline)
                        baseline_runs.append(run)
                        baseline_not_held += wrong_digests(run, digests)
                del bodies  # before the next run seals as many again
        # The server has stopped: what it acknowledged must be durable by now.
        missing, gapless = await missing_bids(
            database_url, FilesystemBlobStore(data_dir / "blobs"), accepted
        )

    line = {"bench": "rush", "backend": backend, "bidders": args.bidders, "bid_mib": args.mib,
            "concurrency": args.concurrency, "runs": args.runs}  # fmt: skip
    line |= figures(ours_runs, not_held=missing)
    line["log_gapless"] = gapless
    line["baseline"] = figures(baseline_runs, not_held=baseline_not_held)
    ratio = line["mb_s"] / line["baseline"]["mb_s"] if line["baseline"]["mb_s"] else None
    line["throughput_ratio"] = round(ratio, 3) if ratio is not None else None
    return line


async def run_bounded(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    async with asyncio.timeout(args.timeout):
        return await run_backend(args, backend)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bidders", type=int, default=200, help="bidders, one bid each (200)")
    parser.add_argument("--mib", type=int, default=5, help="plaintext MiB of each bid (5)")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both", help="(both)"
    )
    parser.add_argument(
        "--concurrency", type=int, help="uploads in flight at once (default: all bidders)"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database to create and drop the bench's own database from",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of ours and of the baseline, alternating (3)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds allowed per backend (1800)"
    )
    args = parser.parse_args()
    if min(args.bidders, args.mib, args.runs) < 1:
        parser.error("--bidders, --mib and --runs must be at least 1")
    args.concurrency = args.concurrency or args.bidders
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    healthy = True
    for backend in backends:
        try:
            line = asyncio.run(run_bounded(args, backend))
        except TimeoutError:
            sys.exit(f"rush: {backend}: not done in {args.timeout:g} s (--timeout)")
        print(json.dumps(line), flush=True)
        healthy = healthy and line["lost"] == 0 and line["log_gapless"]
    if not healthy:
        sys.exit(1)


if __name__ == "__main__":
    main()
