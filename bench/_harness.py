"""Shared harness for the age benchmarks: one command against another, alternating runs."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

MIB = 1024 * 1024

Commands = dict[str, Sequence[str]]


def bidding_command() -> list[str]:
    """The installed `bidding` command next to this interpreter, its bytecode compiled.

    An installed wheel ships compiled bytecode; an editable install compiles the package on
    every start when PYTHONDONTWRITEBYTECODE is set, which would be timed as well.
    """
    package = Path(__file__).resolve().parent.parent / "bidding"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    return [str(Path(sys.executable).with_name("bidding"))]


def age_command() -> str:
    path = shutil.which("age")
    if path is None:
        sys.exit("the age command is needed for this benchmark (apt-get install age)")
    return path


def random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        remaining = size
        while remaining:
            step = min(remaining, 16 * MIB)
            out.write(os.urandom(step))
            remaining -= step


def best_seconds(commands: Commands, *, stdin: Path, runs: int) -> dict[str, float]:
    """Run each command `runs` times, alternating; the best wall time of each, output discarded."""
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(runs):
        for name, command in commands.items():
            with stdin.open("rb") as src:
                start = time.perf_counter()
                subprocess.run(command, stdin=src, stdout=subprocess.DEVNULL, check=True)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(bench: str, size: int, seconds: dict[str, float]) -> None:
    ours = size / seconds["ours"] / 1e6
    theirs = size / seconds["age_cli"] / 1e6
    line = {
        "bench": bench,
        "bytes": size,
        "ours_mb_s": round(ours, 1),
        "age_cli_mb_s": round(theirs, 1),
        "ratio": round(ours / theirs, 3),
    }
    print(json.dumps(line))


class Setup:
    """A fresh identity and a random plaintext of the requested size, in a temporary folder."""

    def __init__(self, folder: Path, size: int) -> None:
        self.size = size
        self.age = age_command()
        self.key = folder / "key.txt"
        subprocess.run(
            [*bidding_command(), "keygen", "-o", str(self.key)], check=True, capture_output=True
        )
        self.recipient = self.key.read_text().split("# public key: ")[1].split()[0]
        self.plain = folder / "plain"
        random_file(self.plain, size)


def run(bench: str, doc: str | None, timed: Callable[[Setup], tuple[Commands, Path]]) -> None:
    """Parse the common options, set up, time the commands `timed` gives, print the line."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--mib", type=int, default=256, help="plaintext size in MiB")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (at least 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bidding-bench-") as folder:
        setup = Setup(Path(folder), args.mib * MIB)
        commands, stdin = timed(setup)
        seconds = best_seconds(commands, stdin=stdin, runs=max(3, args.runs))
    report(bench, setup.size, seconds)
