"""The baselines of bench/opening.py, on the opening's own sealed files, with no database.

- age_cli: `age -d -i identity.txt file > /dev/null`, one process per file, one after another;
- floor: bidding.crypto.age.unseal of each file to a null sink, sequentially in this process;
- floor_threads / floor_processes: the same in a ThreadPoolExecutor / ProcessPoolExecutor,
  to tell whether more threads, or processes, would pay;
- open_bid: the pipeline's whole per-bid work (decryption.open_bid: hashing, unsealing,
  reading the form) sequentially: the opening without its database, events and scheduling.
"""

import multiprocessing
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from _opening_platform import Platform

from bidding.crypto import age
from bidding.opening import decryption


class _Null:
    """A sink that takes every write and keeps nothing: /dev/null without the system calls."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return len(data)


def unseal_file(path: Path, identities: Sequence[age.Identity]) -> int:
    """Unseal one file to the null sink; the plaintext size."""
    with path.open("rb") as sealed:
        return age.unseal(sealed, _Null(), identities)  # type: ignore[arg-type]


def write_identity_file(path: Path, identity: age.Identity) -> None:
    """The tender's identity as an age identity file, readable by its owner only."""
    path.touch(mode=0o600)
    path.write_text(
        f"# the opening bench's tender identity\n# public key: {identity.recipient}\n{identity}\n"
    )


def age_cli(age_path: str, identity_file: Path, files: Sequence[Path]) -> float:
    """Seconds for the age command to decrypt every file, one process per file, in turn."""
    start = time.perf_counter()
    for path in files:
        subprocess.run(
            [age_path, "-d", "-i", str(identity_file), str(path)],
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - start


def floor(files: Sequence[Path], identity: age.Identity) -> float:
    """Seconds for this process to unseal every file in turn."""
    identities = [identity]
    start = time.perf_counter()
    for path in files:
        unseal_file(path, identities)
    return time.perf_counter() - start


def _in_pool(pool: Executor, files: Sequence[Path], identity: age.Identity) -> float:
    identities = [identity]
    start = time.perf_counter()
    # list(): map's results come back as they finish; every file must be done.
    list(pool.map(unseal_file, files, [identities] * len(files)))
    return time.perf_counter() - start


def floor_threads(files: Sequence[Path], identity: age.Identity, workers: int) -> float:
    """Seconds to unseal every file in a pool of threads (its start-up included: microseconds)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        _in_pool(pool, files, identity)
    return time.perf_counter() - start


def _warm(_: int) -> None:
    time.sleep(0.05)


def floor_processes(files: Sequence[Path], identity: age.Identity, workers: int) -> float:
    """Seconds to unseal every file in a pool of processes already started.

    A long-lived pool is what a server would keep: its start-up (forks) is not timed.
    """
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_warm, range(workers)))
        return _in_pool(pool, files, identity)


def open_bids(platform: Platform) -> float:
    """Seconds for decryption.open_bid of every bid in turn; every bid must open."""
    identities = [platform.identity]
    start = time.perf_counter()
    for bid in platform.bids:
        outcome = decryption.open_bid(
            blobs=platform.blobs,
            sha256=bid.sha256,
            size=bid.size,
            identities=identities,
            terms=platform.terms,
        )
        if not isinstance(outcome, decryption.Decrypted):
            raise RuntimeError(f"bid {bid.sha256[:16]} did not open: {outcome}")
    return time.perf_counter() - start
