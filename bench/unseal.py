"""Unsealing speed: `bidding unseal` against `age -d` on the same 256 MiB file.

Both read the sealed file from stdin and write the plaintext to /dev/null, so the figure is
the tool's own speed, not the disk's. Runs alternate; the best of each counts.
"""

import subprocess
from pathlib import Path

from _harness import Commands, Setup, bidding_command, run


def timed(setup: Setup) -> tuple[Commands, Path]:
    sealed = setup.plain.with_suffix(".age")
    subprocess.run(
        [setup.age, "-r", setup.recipient, "-o", str(sealed), str(setup.plain)], check=True
    )
    commands: Commands = {
        "ours": [*bidding_command(), "unseal", "-i", str(setup.key)],
        "age_cli": [setup.age, "-d", "-i", str(setup.key)],
    }
    return commands, sealed


if __name__ == "__main__":
    run("unseal", __doc__, timed)
