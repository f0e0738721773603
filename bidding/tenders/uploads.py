"""Receiving a sealed bid: streamed to a staging file, hashed as it arrives, checked early.

Memory stays flat whatever the size: the body is never held whole, only the first bytes
until the age header can be checked.
"""

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from bidding.crypto import age, receipts
from bidding.errors import PayloadTooLarge, Unprocessable
from bidding.tenders.exceptions import NotSealed, UploadStalled

NOT_SEALED = "bids must be sealed: send an age v1 file encrypted to an X25519 recipient"
# The age nonce and the tag of the final (possibly empty) chunk follow every header.
_MIN_PAYLOAD = age.NONCE_SIZE + age.TAG_SIZE


@dataclass(frozen=True)
class StagedUpload:
    """A complete, synced upload waiting in the staging folder."""

    path: Path
    sha256: str
    size: int
    # The sha256 of the age header alone (MAC line included), for sealed uploads: the receipt
    # carries it so that the bidder's client can tell its own header from another bid's when
    # it computes a file key (README.md, "bidding reveal").
    header_sha256: str | None = None


def _not_sealed(reason: str) -> Unprocessable:
    return NotSealed(f"{NOT_SEALED} ({reason})")


def _check_header(data: bytes | bytearray) -> int | None:
    """The header's length once it has arrived and is an age header with an X25519 stanza."""
    try:
        length = age.header_length(data)
        if length is None:
            return None
        header = age.parse_header(bytes(data[:length]))
        # Stanzas that no identity could open: refused now, not at the opening, when it is
        # too late for the bidder to seal the bid again.
        age.check_stanzas(header.stanzas)
    except age.HeaderError as exc:
        raise _not_sealed(str(exc)) from None
    if not any(stanza.type == "X25519" for stanza in header.stanzas):
        raise _not_sealed("no X25519 recipient stanza")
    return length


async def receive(
    chunks: AsyncIterator[bytes],
    *,
    staging: Path,
    max_bytes: int,
    sealed: bool = True,
    what: str = "a sealed bid",
    idle_seconds: float | None = None,
) -> StagedUpload:
    """Stream a request body into a staging file; refuse early what cannot be a sealed bid
    (unless `sealed` is off: a tender's documents are plain files).

    A client that sends nothing for `idle_seconds` is given up (BadRequest): a body that
    never ends would otherwise hold its connection and staging file for ever. On any
    failure, including the client going away, the staging file is removed.
    """
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{uuid.uuid4().hex}.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    size = 0
    prefix = bytearray()
    header_length: int | None = None if sealed else 0
    header_sha256: str | None = None
    try:
        try:
            arriving = aiter(chunks)
            while True:
                try:
                    async with asyncio.timeout(idle_seconds):
                        chunk = await anext(arriving)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UploadStalled(
                        f"{what} stopped coming: nothing arrived for {idle_seconds:g} s",
                    ) from None
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(
                        f"{what} may be at most {max_bytes} bytes", limit=max_bytes
                    )
                if header_length is None:
                    prefix += chunk
                    header_length = _check_header(prefix)
                    if header_length is not None:
                        header_sha256 = receipts.header_sha256(prefix[:header_length])
                        prefix = bytearray()
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            if sealed:
                if header_length is None:
                    raise _not_sealed("the body ends before the age header does")
                if size < header_length + _MIN_PAYLOAD:
                    raise _not_sealed("the file is truncated after its header")
            await anyio.to_thread.run_sync(os.fsync, fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StagedUpload(
        path=path, sha256=digest.hexdigest(), size=size, header_sha256=header_sha256
    )
