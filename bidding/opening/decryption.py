"""Opening one sealed bid: its stored file checked against its receipt, unsealed, its form read.

Runs in a worker thread, away from the event loop, and touches no database: it takes what the
receipt promised (digest and size) and gives back what the opening publishes about the bid.
"""

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, Literal

from bidding.crypto import age
from bidding.opening import payloads
from bidding.rules.forms import PRICE_FIELD, BidForm, FormError
from bidding.rules.money import money_text, plain_decimal_text
from bidding.rules.terms import Terms
from bidding.tenders.blobs import BlobStore

RejectReason = Literal[
    "decrypt_failed", "digest_mismatch", "form_invalid", "above_ceiling", "below_floor"
]
# Plaintext up to this size stays in memory; a larger one (a ZIP with documents) spills to a
# temporary file that is deleted when the bid has been read.
_SPOOL_BYTES = 8 * 1024 * 1024
_READ_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Decrypted:
    """A bid that opened: its price and fields as JSON values, and its documents."""

    price: str
    fields: dict[str, Any]
    documents: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bid that did not open: its reason (docs/architecture.md, The opening) and why."""

    reason: RejectReason
    detail: str


Outcome = Decrypted | Rejected


class WrongFileKey(Exception):
    """A revealed file key that the bid's header MAC refuses."""


class _Hashing:
    """A read-only stream that hashes every byte read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readinto(self, buffer: memoryview | bytearray) -> int:
        count = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self.sha256.update(memoryview(buffer)[:count])
            self.size += count
        return int(count or 0)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the stream, unread so far."""
        while self.read(_READ_BYTES):
            pass


def _json_fields(form: BidForm) -> dict[str, Any]:
    return {
        name: plain_decimal_text(value) if isinstance(value, Decimal) else value
        for name, value in form.fields.items()
        if name != PRICE_FIELD
    }


def open_bid(
    *,
    blobs: BlobStore,
    sha256: str,
    size: int,
    identities: Iterable[age.Identity] = (),
    file_key: bytes | None = None,
    terms: Terms,
) -> Outcome:
    """Open the stored bid whose receipt names this digest and size, with the identities or
    with the file key a bidder revealed.

    The file is hashed as it is decrypted, in one pass, and its plaintext is neither read nor
    kept unless the digest matches the receipt: a stored file that changed since its receipt
    is `digest_mismatch` whatever it decrypts to, and no second read can see other bytes.
    A revealed file key that does not match the header raises WrongFileKey: that is the
    bidder's mistake to correct, not the bid's outcome.
    """
    try:
        stored = blobs.open(sha256)
    except FileNotFoundError:
        return Rejected("digest_mismatch", "the stored file is missing")
    with stored, tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as plaintext:
        source = _Hashing(stored)
        failure: str | None = None
        wrong_key = False
        try:
            if file_key is None:
                age.unseal(source, plaintext, identities)  # type: ignore[arg-type]
            else:
                age.unseal_with_file_key(source, plaintext, file_key)  # type: ignore[arg-type]
        except age.HeaderMacError as exc:
            wrong_key = file_key is not None
            failure = str(exc)
        except age.AgeError as exc:
            failure = str(exc)
        source.drain()  # also after a failure: only the whole file's digest tells why
        if source.size != size or source.sha256.hexdigest() != sha256:
            return Rejected(
                "digest_mismatch",
                "the stored file differs from the one receipted "
                f"({source.size} bytes, sha256 {source.sha256.hexdigest()[:16]}…)",
            )
        if wrong_key:
            raise WrongFileKey("the file key does not match the bid's header")
        if failure is not None:
            return Rejected("decrypt_failed", f"the sealed file does not open: {failure}")
        try:
            form = terms.read_bid(plaintext)  # type: ignore[arg-type]
        except FormError as exc:
            return Rejected(exc.reason, exc.detail)
    return Decrypted(
        price=money_text(form.price),
        fields=_json_fields(form),
        documents=[
            {"name": doc.name, "size": doc.size, "sha256": doc.sha256} for doc in form.documents
        ],
    )


def outcome_event(
    bid: payloads.ListedBid, outcome: Outcome, via: str | None = None
) -> payloads.BidDecrypted | payloads.BidRejected:
    """What the opening publishes about a listed bid once it has been opened (`via` whose key:
    "bidder", "backup", or None for the tender's key in the officer's opening)."""
    if isinstance(outcome, Decrypted):
        return payloads.BidDecrypted(
            bid_id=bid.bid_id,
            bidder_id=bid.bidder_id,
            bidder_name=bid.bidder_name,
            price=outcome.price,
            fields=outcome.fields,
            documents=outcome.documents,
            via=via,
        )
    return payloads.BidRejected(
        bid_id=bid.bid_id,
        bidder_id=bid.bidder_id,
        bidder_name=bid.bidder_name,
        reason=outcome.reason,
        detail=outcome.detail,
        via=via,
    )
