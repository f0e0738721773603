"""The opening record: everything the opening decided, as one document to sign.

Built from the tender, its opening row and its events only; the caller reads them, adds the
audit chain's head, signs and stores the record (docs/architecture.md, The opening).
"""

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bidding.crypto.canonical import canonical_json
from bidding.db import iso_utc
from bidding.opening import events as ev
from bidding.opening import payloads
from bidding.opening.models import Opening, OpeningEvent
from bidding.tenders.models import Tender

KIND = "opening_record"


def build(
    *,
    tender: Tender,
    opening: Opening,
    events: Sequence[OpeningEvent],
    failure: payloads.Failed | None,
    published_at: datetime,
) -> dict[str, Any]:
    """The record of the opening whose events these are, all of them, published now."""
    first: dict[str, OpeningEvent] = {}
    for event in events:
        first.setdefault(event.type, event)
    sealed = ev.payload(first[ev.LOG_SEALED], payloads.LogSealed)
    listed = ev.payload(first[ev.BIDS_LISTED], payloads.BidsListed)
    drawn = first.get(ev.COEFFICIENT_DRAWN)
    scores = first.get(ev.SCORES_COMPUTED)
    return {
        "kind": KIND,
        "tender": {
            "id": str(tender.id),
            "reference": tender.reference,
            "title": tender.title,
            "buyer_name": tender.buyer_name,
            "currency": tender.currency,
            "ceiling_price": tender.ceiling_price,
            "floor_price": tender.floor_price,
            "bid_deadline": iso_utc(tender.bid_deadline),
            "opening_mode": tender.opening_mode.value,
            "min_bids": tender.min_bids,
            "scoring": tender.scoring,
            "bid_fields": tender.bid_fields,
            "opening_recipient": tender.opening_recipient,
            "coefficient_commitment": tender.coefficient_commitment,
        },
        "tree_head": sealed.to_data(),
        "bids": _bids(listed, events),
        "coefficient": None
        if drawn is None
        else ev.payload(drawn, payloads.CoefficientDrawn).to_data(),
        "scores": None if scores is None else ev.payload(scores, payloads.ScoresComputed).to_data(),
        "attendance": [
            ev.payload(event, payloads.CheckedIn).to_data() | {"at": iso_utc(event.at)}
            for event in events
            if event.type == ev.CHECKED_IN
        ],
        "objections": _objections(events),
        "outcome": {"status": "failed"} | failure.to_data() if failure else {"status": "opened"},
        # The events so far, as served, bound into the signature.
        "events": {
            "count": len(events),
            "sha256": hashlib.sha256(
                canonical_json([ev.envelope(event) for event in events])
            ).hexdigest(),
        },
        "times": {
            "bid_deadline": iso_utc(tender.bid_deadline),
            "started_at": iso_utc(opening.started_at or published_at),
            "sealed_at": sealed.tree_head.sealed_at,
            "published_at": iso_utc(published_at),
        },
    }


def _bids(listed: payloads.BidsListed, events: Sequence[OpeningEvent]) -> list[dict[str, Any]]:
    """Each listed bid with what became of it."""
    outcomes = {
        outcome.bid_id: outcome
        for outcome in (ev.outcome(event) for event in events if event.type in ev.OUTCOMES)
    }
    bids = []
    for bid in listed.bids:
        entry = bid.to_data()
        match outcomes.get(bid.bid_id):
            case None:
                entry["status"] = "not_opened"
            case payloads.BidDecrypted() as opened:
                entry["status"] = "decrypted"
                entry |= {
                    "price": opened.price,
                    "fields": opened.fields,
                    "documents": opened.documents,
                }
                if opened.via is not None:
                    entry["via"] = opened.via
            case payloads.BidWithdrawn(reason=reason):
                entry["status"] = "withdrawn"
                entry["reason"] = reason
            case payloads.BidRejected(reason=reason, detail=detail):
                entry["status"] = "rejected"
                entry |= {"reason": reason, "detail": detail}
        bids.append(entry)
    return bids


def _objections(events: Sequence[OpeningEvent]) -> list[dict[str, Any]]:
    """Each objection raised, with its answer if it has one."""
    answers = {
        answer.objection_id: (answer, event.at)
        for event in events
        if event.type == ev.OBJECTION_ANSWERED
        for answer in [ev.payload(event, payloads.ObjectionAnswered)]
    }
    objections = []
    for event in events:
        if event.type != ev.OBJECTION_RAISED:
            continue
        raised = ev.payload(event, payloads.ObjectionRaised)
        answered = answers.get(raised.objection_id)
        objections.append(
            raised.to_data()
            | {"raised_at": iso_utc(event.at)}
            | {
                "answer": None
                if answered is None
                else answered[0].to_data() | {"at": iso_utc(answered[1])}
            }
        )
    return objections
