"""Sealing speed: `bidding seal` against `age -r` on the same 256 MiB file.

Both read the plaintext from stdin and write the sealed file to /dev/null. Runs alternate;
the best of each counts.
"""

import argparse
import subprocess
from pathlib import Path

from _harness import MIB, age_command, best_seconds, bidding_command, random_file, report, workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="plaintext size in MiB")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (at least 3)")
    args = parser.parse_args()
    size = args.mib * MIB
    age = age_command()
    with workdir() as folder:
        base = Path(folder)
        key = base / "key.txt"
        subprocess.run(
            [*bidding_command(), "keygen", "-o", str(key)], check=True, capture_output=True
        )
        recipient = key.read_text().split("# public key: ")[1].split()[0]
        plain = base / "plain"
        random_file(plain, size)
        seconds = best_seconds(
            {
                "ours": [*bidding_command(), "seal", "-r", recipient],
                "age_cli": [age, "-r", recipient],
            },
            stdin=plain,
            runs=max(3, args.runs),
        )
    report("seal", size, seconds)


if __name__ == "__main__":
    main()
