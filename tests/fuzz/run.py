"""Run one fuzz target under atheris: `python -m tests.fuzz.run TARGET [libFuzzer options]`.

The project's modules (and the standard library's zipfile and json, which the bid reader
drives) are instrumented for coverage, so the fuzzer learns which inputs reach new code.
libFuzzer options follow the target's name, e.g. `-max_total_time=60 NEW_DIR SEED_DIR`.
"""

import sys

import atheris


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m tests.fuzz.run TARGET [libFuzzer options and corpus folders]")
    from tests.fuzz.targets import TARGETS, load

    name = sys.argv[1]
    if name not in TARGETS:
        sys.exit(f"no fuzz target {name!r}; the targets are {', '.join(TARGETS)}")
    with atheris.instrument_imports(include=["bidding", "zipfile", "json"]):
        target = load(name)
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
