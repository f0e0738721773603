"""The tender's receipt log at the deadline: its signed tree head, and the bids it holds.

Only receipts the platform signed count: the bids table is not read, so a row planted or
edited in the database cannot put a bid, or another file, into the opening.
"""

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Organization
from bidding.crypto import merkle
from bidding.crypto.receipts import receipt_problems
from bidding.crypto.signing import SigningKey, VerifyKey
from bidding.db import iso_utc
from bidding.opening import payloads
from bidding.tenders.models import LogEntry

logger = logging.getLogger(__name__)


async def seal(
    *, session: AsyncSession, tender_id: uuid.UUID, signing: SigningKey, at: datetime
) -> payloads.LogSealed:
    """The log's tree head as it stands, signed."""
    leaves = list(
        await session.scalars(
            select(LogEntry.leaf_hash)
            .where(LogEntry.tender_id == tender_id)
            .order_by(LogEntry.position)
        )
    )
    head = payloads.TreeHead(
        tender_id=str(tender_id),
        tree_size=len(leaves),
        root_hash=merkle.root_hash([bytes.fromhex(leaf) for leaf in leaves]).hex(),
        sealed_at=iso_utc(at),
    )
    signed = signing.sign_document(head.to_data())
    return payloads.LogSealed(
        tree_head=head, key_id=signed["key_id"], signature=signed["signature"]
    )


async def list_bids(
    *, session: AsyncSession, tender_id: uuid.UUID, public_key: VerifyKey
) -> payloads.BidsListed:
    """The bids in the log: each bidder's last signed receipt counts, a bid unless it is a
    withdrawal. A leaf that does not hash to its leaf hash or whose signature is not the
    platform's is left out, and named.
    """
    entries = await session.execute(
        select(LogEntry.position, LogEntry.body, LogEntry.leaf_hash, LogEntry.key_id)
        .add_columns(LogEntry.signature)
        .where(LogEntry.tender_id == tender_id)
        .order_by(LogEntry.position)
    )
    latest: dict[str, dict[str, Any]] = {}
    unverified: list[int] = []
    for position, text, leaf, key_id, signature in entries:
        body = _signed_receipt_body(text, leaf, key_id, signature, public_key)
        if body is None or body.get("tender_id") != str(tender_id):
            unverified.append(position)
            continue
        latest[body["bidder_id"]] = body
    handed_in = sorted(
        (body for body in latest.values() if body.get("kind") == "bid"),
        key=lambda body: (body["received_at"], body["bid_id"]),
    )
    organizations = await session.execute(
        select(Organization.id, Organization.name).where(
            Organization.id.in_({uuid.UUID(body["bidder_id"]) for body in handed_in})
        )
    )
    names = {id: name for id, name in organizations}
    bids = tuple(
        payloads.ListedBid(
            bid_id=body["bid_id"],
            bidder_id=body["bidder_id"],
            bidder_name=names.get(uuid.UUID(body["bidder_id"]), ""),
            version=body["version"],
            sha256=body["sha256"],
            size=body["size"],
            received_at=body["received_at"],
        )
        for body in handed_in
    )
    if unverified:
        logger.error(
            "tender %s: log leaves %s are not receipts the platform signed; left out",
            tender_id,
            unverified,
        )
    return payloads.BidsListed(bids=bids, unverified_leaves=tuple(unverified) or None)


def _signed_receipt_body(
    text: str, leaf: str, key_id: str, signature: str, public_key: VerifyKey
) -> dict[str, Any] | None:
    """A log row's receipt body if the row is a receipt the platform signed, else None."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    receipt = {"body": body, "leaf_hash": leaf, "key_id": key_id, "signature": signature}
    if receipt_problems(receipt, {public_key.key_id: public_key}) or not isinstance(body, dict):
        return None
    return body
