"""What each opening event says: one frozen dataclass per event type (docs/architecture.md,
The opening), written to and read from the event's stored JSON by `to_data` and `from_data`.

The JSON keys come in the order of the fields, as the events have always been stored and
served.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

Json = dict[str, Any]


def _plain(value: object) -> object:
    if isinstance(value, _Payload):
        return value.to_data()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class _Payload:
    """A flat payload: its fields are the JSON's keys, in order."""

    def to_data(self) -> Json:
        """The JSON object stored and served as the event's `data`."""
        return {each.name: _plain(getattr(self, each.name)) for each in dataclasses.fields(self)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """The payload of a stored event's `data`."""
        return cls(**data)


@dataclass(frozen=True)
class Event(_Payload):
    """A payload that is an event's whole `data`; `type` names the event."""

    type: ClassVar[str]


# --- the pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Started(Event):
    type = "opening.started"
    bid_deadline: str


@dataclass(frozen=True)
class TreeHead(_Payload):
    """The receipt log's Merkle tree head at the deadline, as signed."""

    tender_id: str
    tree_size: int
    root_hash: str
    sealed_at: str


@dataclass(frozen=True)
class LogSealed(Event):
    type = "log.sealed"
    tree_head: TreeHead
    key_id: str
    signature: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            tree_head=TreeHead.from_data(data["tree_head"]),
            key_id=data["key_id"],
            signature=data["signature"],
        )


@dataclass(frozen=True)
class ListedBid(_Payload):
    """A bid handed in, as its bidder's last signed receipt says."""

    bid_id: str
    bidder_id: str
    bidder_name: str
    version: int
    sha256: str
    size: int
    received_at: str


@dataclass(frozen=True)
class BidsListed(Event):
    type = "bids.listed"
    bids: tuple[ListedBid, ...]
    # Positions of log leaves that are no receipt the platform signed, left out.
    unverified_leaves: tuple[int, ...] | None = None

    def to_data(self) -> Json:
        data: Json = {"count": len(self.bids), "bids": _plain(self.bids)}
        if self.unverified_leaves is not None:
            data["unverified_leaves"] = list(self.unverified_leaves)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        unverified = data.get("unverified_leaves")
        return cls(
            bids=tuple(ListedBid.from_data(bid) for bid in data["bids"]),
            unverified_leaves=None if unverified is None else tuple(unverified),
        )


@dataclass(frozen=True)
class BidDecrypted(Event):
    type = "bid.decrypted"
    bid_id: str
    bidder_id: str
    bidder_name: str
    price: str
    fields: dict[str, Any]
    documents: list[dict[str, Any]]
    # "bidder" (its own file key) or "backup" (the tender's key); None: the tender's key.
    via: str | None = None

    def to_data(self) -> Json:
        return _who(self) | {
            "price": self.price,
            "fields": self.fields,
            "documents": self.documents,
        }


@dataclass(frozen=True)
class BidRejected(Event):
    type = "bid.rejected"
    bid_id: str
    bidder_id: str
    bidder_name: str
    reason: str
    detail: str
    via: str | None = None

    def to_data(self) -> Json:
        return _who(self) | {"reason": self.reason, "detail": self.detail}


def _who(opened: BidDecrypted | BidRejected) -> Json:
    """Which bid was opened, and `via` whose key when it is said: what each outcome begins with."""
    who: Json = {
        "bid_id": opened.bid_id,
        "bidder_id": opened.bidder_id,
        "bidder_name": opened.bidder_name,
    }
    if opened.via is not None:
        who["via"] = opened.via
    return who


@dataclass(frozen=True)
class WindowOpened(Event):
    type = "decryption.window_opened"
    closes_at: str
    bids: int
    backup_decryption: bool


@dataclass(frozen=True)
class WindowClosed(Event):
    type = "decryption.window_closed"
    opened: int
    still_sealed: int


@dataclass(frozen=True)
class BidWithdrawn(Event):
    type = "bid.withdrawn"
    bid_id: str
    bidder_id: str
    bidder_name: str
    reason: str


Outcome = BidDecrypted | BidRejected | BidWithdrawn


@dataclass(frozen=True)
class CoefficientDrawn(Event):
    type = "coefficient.drawn"
    seed: str
    commitment: str | None
    root_hash: str
    choices: tuple[str, ...]
    index: int
    coefficient: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(**(dict(data) | {"choices": tuple(data["choices"])}))


@dataclass(frozen=True)
class Place(_Payload):
    """A valid bid's place in the ranking."""

    rank: int
    bid_id: str
    bidder_id: str
    bidder_name: str
    price: str
    score: str | None


@dataclass(frozen=True)
class ScoresComputed(Event):
    type = "scores.computed"
    method: str
    ranking: tuple[Place, ...]
    # How the scores were reached, per method: money and coefficients as decimal strings.
    working: dict[str, Any] | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            method=data["method"],
            ranking=tuple(Place.from_data(place) for place in data["ranking"]),
            working=data["working"],
        )


@dataclass(frozen=True)
class RecordPublished(Event):
    type = "record.published"
    sha256: str
    key_id: str
    signature: str


@dataclass(frozen=True)
class Failed(Event):
    type = "opening.failed"
    reason: str
    detail: str


@dataclass(frozen=True)
class Completed(Event):
    type = "opening.completed"
    status: str


# --- the room -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedIn(Event):
    type = "attendance.checked_in"
    user_id: str
    display_name: str
    role: str
    organization_id: str | None
    organization_name: str | None


@dataclass(frozen=True)
class ObjectionRaised(Event):
    type = "objection.raised"
    objection_id: str
    bidder_id: str
    bidder_name: str | None
    text: str


@dataclass(frozen=True)
class ObjectionAnswered(Event):
    type = "objection.answered"
    objection_id: str
    answered_by: str
    text: str


@dataclass(frozen=True)
class RecordConfirmed(Event):
    type = "record.confirmed"
    bidder_id: str
    bidder_name: str | None
    record_sha256: str


EVENTS: dict[str, type[Event]] = {
    kind.type: kind
    for kind in (
        Started,
        LogSealed,
        BidsListed,
        BidDecrypted,
        BidRejected,
        WindowOpened,
        WindowClosed,
        BidWithdrawn,
        CoefficientDrawn,
        ScoresComputed,
        RecordPublished,
        Failed,
        Completed,
        CheckedIn,
        ObjectionRaised,
        ObjectionAnswered,
        RecordConfirmed,
    )
}
