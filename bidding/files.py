"""The files the command line reads and writes, whatever the path turns out to be.

An output named with `-o` belongs to the user, so it is never destroyed: a regular file (or a
new one) is written to a temporary file beside it and renamed over it only once complete, so a
failure leaves no partial plaintext that looks whole; anything else, such as a character
device (/dev/null), a FIFO or a terminal, is opened and written in place, never replaced. A
symbolic link is followed to its final target and the rule applied to that target.
"""

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class TooLargeError(ValueError):
    """A file read with read_limited holds more than its limit."""


@contextlib.contextmanager
def open_output(path: Path, *, mode: int = 0o600, exclusive: bool = False) -> Iterator[BinaryIO]:
    """A binary stream to the output `path`, made permanent when the block ends without error.

    A new file gets `mode` (less the umask); a replaced one keeps its permission bits and, where
    allowed, its owner. With `exclusive`, an existing regular file is refused (FileExistsError)
    rather than replaced.
    """
    try:
        status: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        status = None  # nothing there yet, or a link to nothing: both are created
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if status is not None and not stat.S_ISREG(status.st_mode):
        stream = _open_in_place(path)
        if stream is not None:
            with stream:
                yield stream
            return
        status = os.stat(path)  # it became a regular file meanwhile
    if status is not None and exclusive:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    # The final target of any links: renaming onto the link itself would replace the link.
    target = Path(os.path.realpath(path))
    if exclusive:
        with _create(path, target, mode) as stream:
            yield stream
        return
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    fd = _open_new(path, temporary, mode)
    try:
        if status is not None:
            os.fchmod(fd, stat.S_IMODE(status.st_mode) & 0o777)
            with contextlib.suppress(OSError):
                os.fchown(fd, status.st_uid, status.st_gid)
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _open_in_place(path: Path) -> BinaryIO | None:
    """A device, FIFO or terminal opened for writing; None if a regular file is there now."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        # Written in place, a regular file would be partly overwritten: it is replaced instead.
        os.close(fd)
        return None
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def _create(path: Path, target: Path, mode: int) -> Iterator[BinaryIO]:
    """A new file at target, created only if nothing is there, and removed if the block fails."""
    fd = _open_new(path, target, mode)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise


def _open_new(path: Path, new: Path, mode: int) -> int:
    """Create the file new; a failure names path, the file the user asked for."""
    try:
        return os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def read_limited(path: Path, limit: int) -> bytes:
    """The whole content of path, or TooLargeError once it passes limit bytes.

    Read as a stream, so that a pipe (`-i <(…)`) works and /dev/zero or a huge file is refused
    without filling the memory.
    """
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"larger than {limit} bytes")
    return data
