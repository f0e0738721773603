"""The `bidding` command: keys, sealing and unsealing, and (later) the service itself."""

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn, TypeVar

import click

from bidding.crypto import age

T = TypeVar("T")

# Below this size a progress bar only flickers.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def fail(message: str) -> NoReturn:
    """Stop with one clear line on stderr."""
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bidding")
def cli() -> None:
    """Contactless public-resource bidding: seal bids, open them, verify the results."""


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
def keygen(output: Path | None) -> None:
    """Generate an age X25519 identity, with its recipient in a comment line."""
    identity = age.Identity.generate()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {identity.recipient}\n{identity}\n"
    if output is None:
        sys.stdout.write(text)
        if not sys.stdout.isatty():
            click.echo(f"Public key: {identity.recipient}", err=True)
        return
    try:
        # O_EXCL: never overwrite an existing key; 0600: the identity is a secret.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{output} already exists; refusing to overwrite a key file")
    except OSError as exc:
        fail(f"cannot create {output}: {exc.strerror}")
    with os.fdopen(fd, "w", encoding="ascii") as key_file:
        key_file.write(text)
    click.echo(f"Public key: {identity.recipient}", err=True)


@cli.command()
@click.option(
    "-r",
    "--recipient",
    "recipients",
    multiple=True,
    required=True,
    help="Seal to this age1… recipient; repeat for several.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.argument(
    "input_path",
    metavar="[INPUT]",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
def seal(recipients: tuple[str, ...], output: Path | None, input_path: Path | None) -> None:
    """Seal INPUT (or stdin) to the recipients as an age file."""
    parsed = [_parse(age.Recipient.parse, text) for text in recipients]
    if output is None and sys.stdout.isatty():
        fail("refusing to write a sealed file to a terminal; use -o FILE or a pipe")
    with _input(input_path) as (src, size), _output(output) as dst, _progress(size) as progress:
        age.seal(src, dst, parsed, progress=progress)


@cli.command()
@click.option(
    "-i",
    "--identity",
    "identity_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An identity file (as `bidding keygen` writes); repeat for several.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.argument(
    "input_path",
    metavar="[INPUT]",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
def unseal(identity_files: tuple[Path, ...], output: Path | None, input_path: Path | None) -> None:
    """Unseal an age file from INPUT (or stdin) with the identities."""
    identities = [
        identity
        for path in identity_files
        for identity in _parse(age.parse_identities, _read_text(path), where=str(path))
    ]
    with _input(input_path) as (src, size), _output(output) as dst, _progress(size) as progress:
        age.unseal(src, dst, identities, progress=progress)


def _parse(parse: Callable[[str], T], text: str, *, where: str = "") -> T:
    try:
        return parse(text)
    except age.KeyFormatError as exc:
        fail(f"{where}: {exc}" if where else str(exc))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


@contextlib.contextmanager
def _input(path: Path | None) -> Iterator[tuple[BinaryIO, int | None]]:
    if path is None:
        yield sys.stdin.buffer, None
        return
    with path.open("rb") as src:
        yield src, os.fstat(src.fileno()).st_size


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[BinaryIO]:
    """Stdout, or a file that appears only once it is complete: no partial plaintext left."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = path.resolve()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as dst:
            yield dst
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _progress(size: int | None) -> Iterator[age.Progress | None]:
    if size is None or size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, file=sys.stderr, show_pos=False, width=40) as bar:
        done = 0

        def advance(total: int) -> None:
            nonlocal done
            bar.update(min(total, size) - done)
            done = min(total, size)

        yield advance
        bar.update(size - done)


def main() -> NoReturn:
    """Entry point: every failure ends with one line on stderr and a non-zero exit."""
    try:
        cli.main(standalone_mode=False, prog_name="bidding")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"bidding: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except age.AgeError as exc:
        click.echo(f"bidding: error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"bidding: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("bidding: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
