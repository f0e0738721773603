"""Sealing speed: `bidding seal` against `age -r` on the same 256 MiB file.

Both read the plaintext from stdin and write the sealed file to /dev/null. Runs alternate;
the best of each counts.
"""

from pathlib import Path

from _harness import Commands, Setup, bidding_command, run


def timed(setup: Setup) -> tuple[Commands, Path]:
    commands: Commands = {
        "ours": [*bidding_command(), "seal", "-r", setup.recipient],
        "age_cli": [setup.age, "-r", setup.recipient],
    }
    return commands, setup.plain


if __name__ == "__main__":
    run("seal", __doc__, timed)
