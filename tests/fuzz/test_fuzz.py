"""The parsers that read outside input, fuzzed: the seed corpus replayed, then atheris for a while.

Each target runs under atheris for BIDDING_FUZZ_SECONDS (3 by default; `make fuzz` runs them
longer, from a fresh random seed), starting from its seeds in tests/fuzz/corpus/<target>/. An
input that makes a target fail is left in the test's temporary folder, named in the failure;
keep it in the corpus as `crash-<what>` once the parser is fixed, so that the replay catches it
coming back.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.make_corpus import CORPUS, DICTIONARIES, DICTIONARY_OF_TARGET
from tests.fuzz.targets import TARGETS, load

ROOT = Path(__file__).parents[2]
SECONDS = int(os.environ.get("BIDDING_FUZZ_SECONDS", "3"))
# A fixed seed by default, so that `make test` explores the same inputs at every run (as far as
# its time allows) and fails only for a change in the code; 0 is a fresh seed at each run.
SEED = int(os.environ.get("BIDDING_FUZZ_SEED", "1"))


def seeds(target: str) -> list[Path]:
    return sorted(path for path in (CORPUS / target).iterdir() if path.is_file())


@pytest.mark.parametrize("target", TARGETS)
def test_every_seed_passes_the_target(target: str) -> None:
    files = seeds(target)
    assert len(files) >= 4, f"the corpus of {target} is missing: python -m tests.fuzz.make_corpus"
    for path in files:
        try:
            load(target)(path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.relative_to(ROOT)}: {exc!r}") from exc


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("target", TARGETS)
def test_the_fuzzer_finds_no_failure(target: str, tmp_path: Path) -> None:
    found = tmp_path / "found"  # inputs that reach new code: kept out of the repository
    found.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.run",
        target,
        f"-max_total_time={SECONDS}",
        f"-seed={SEED}",
        # One input that takes this long is a failure too: a parser that can be made to hang.
        "-timeout=60",
        "-rss_limit_mb=3072",
        f"-dict={DICTIONARIES / DICTIONARY_OF_TARGET[target]}.dict",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
        str(found),
        str(CORPUS / target),
    ]
    run = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 300, check=False
    )
    artifacts = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash", "timeout", "oom", "leak"))
    )
    assert run.returncode == 0 and not artifacts, (
        f"{target} failed (exit {run.returncode}); input kept in {tmp_path}: {artifacts}\n"
        f"replay: python -m tests.fuzz.run {target} {tmp_path}/<input>\n"
        + run.stdout[-4000:]  # atheris prints the Python traceback here
        + run.stderr[-4000:]
    )
    runs = [
        line
        for line in run.stderr.splitlines()
        if line.startswith("stat::number_of_executed_units")
    ]
    assert runs and int(runs[0].split(":")[-1]) > 0, run.stderr[-3000:]
