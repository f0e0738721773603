"""Content-addressed storage of sealed bids: a file's name is its SHA-256."""

import os
import re
from pathlib import Path
from typing import BinaryIO, Protocol

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobStore(Protocol):
    """Where sealed bids are kept; the database holds only their digests."""

    def put(self, staged: Path, digest: str) -> None:
        """Move a complete, synced file into the store under its digest."""

    def open(self, digest: str) -> BinaryIO:
        """Read a stored blob."""

    def exists(self, digest: str) -> bool:
        """Whether the store holds this digest."""


class FilesystemBlobStore:
    """Blobs under root/ab/cd/abcd…; staging files must be on the same file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where a digest's blob lives."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError("a blob digest is 64 lower-case hex characters")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, staged: Path, digest: str) -> None:
        """Move a complete, synced file into place, atomically; a duplicate is dropped."""
        target = self.path(digest)
        if target.exists():
            # The same bytes are already stored (a resubmission): content addressing
            # makes the copy redundant.
            staged.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        # The rename is durable only once the directory entry is.
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def open(self, digest: str) -> BinaryIO:
        """Read a stored blob."""
        return self.path(digest).open("rb")

    def exists(self, digest: str) -> bool:
        """Whether the store holds this digest."""
        return self.path(digest).exists()
