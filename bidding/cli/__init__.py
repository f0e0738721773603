"""The `bidding` command: the operator's commands (the service and its maintenance) and the
bidder's (keys, sealing, submitting and revealing bids), on one parser.

argparse rather than a richer framework: `bidding unseal` is timed against `age -d`, and
start-up time counts for every file a bidder seals; neither module imports the service until
one of its commands runs.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from bidding.cli import bidder, operator
from bidding.cli.errors import CommandError
from bidding.crypto import age

# Each audience's commands under its own title in `bidding --help`.
AUDIENCES = (("operator commands", operator.add_commands), ("bidder commands", bidder.add_commands))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts read the last line of stderr.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bidding",
        # argparse lists subcommands in one block: the list is hidden from it and written
        # out below, grouped, so the usage line names COMMAND itself.
        usage="%(prog)s [-h] COMMAND ...",
        description="Contactless public-resource bidding: seal bids, open them, verify results.",
        epilog="A command's own options: bidding COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS, prog="bidding"
    )
    groups = []
    # Each command's name and help line, as argparse keeps them for its own listing.
    for title, add_commands in AUDIENCES:
        first = len(commands._choices_actions)
        add_commands(commands)
        groups.append((title, commands._choices_actions[first:]))
    width = max(len(name) for name in commands.choices) + 2
    for title, listed in groups:
        lines = [f"{command.dest:<{width}}{command.help}" for command in listed]
        parser.add_argument_group(title, "\n".join(lines))
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: every failure ends with one line on stderr and a non-zero exit."""
    args = _build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except (CommandError, age.AgeError) as exc:
        _fail(str(exc))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other filters do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        _fail("interrupted", status=130)
    except Exception as exc:
        # The last guard of the one-line promise, for a hostile file or answer no check
        # foresaw: a traceback tells a bidder nothing, and scripts read the last line.
        _fail(f"unexpected {type(exc).__name__}: {str(exc)[:300]}")
    sys.exit(0)


def _fail(message: str, *, status: int = 1) -> NoReturn:
    print(f"bidding: error: {message}", file=sys.stderr)
    sys.exit(status)
