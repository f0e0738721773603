"""Bidder mode (online decryption): the decryption window opens after the bids are listed,
nobody holds the opening while it is open, and at its close each bid still sealed is opened
with the tender's key (backup decryption) or withdrawn as not decrypted."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from bidding.crypto import age
from bidding.db import create_session_factory, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import pipeline
from bidding.opening.models import Opening
from tests.opening.conftest import Scene

PRICES = ("1000000.00", "950000.00", "1100000.00")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def bidder_mode_tender(
    scene: Scene, *, backup: bool
) -> tuple[dict[str, Any], list[age.Identity]]:
    """A bidder-mode tender with three bids, each sealed to its bidder's own key."""
    tender = await scene.tender(
        opening_mode="bidder", backup_decryption=backup, decryption_window_minutes=30
    )
    identities = []
    for price in PRICES:
        own = age.Identity.generate()
        identities.append(own)
        recipients = [own.recipient]
        if backup:
            recipients.append(age.Recipient.parse(tender["opening_recipient"]))
        await scene.bid(tender, {"price": price, "duration_days": 100}, recipients=recipients)
    return tender, identities


async def opening_row(scene: Scene, tender: dict[str, Any]) -> Opening:
    async with create_session_factory(scene.engine)() as session:
        opening = await session.get(Opening, uuid.UUID(tender["id"]))
    assert opening is not None
    return opening


class TestWindow:
    @pytest.mark.parametrize("backup", [False, True])
    async def test_the_window_waits_for_its_close_then_the_backup_opens_or_bids_withdraw(
        self, scene: Scene, backup: bool
    ) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=backup)
        await scene.pass_deadline(tender)
        start = utcnow()

        waiting = await scene.open(tender, clock=lambda: start)

        assert isinstance(waiting, pipeline.Waiting)
        assert (
            timedelta(0)
            <= start + timedelta(minutes=30) - waiting.until
            < timedelta(milliseconds=1)
        )
        events = await scene.events(tender)
        assert types(events) == [ev.STARTED, ev.LOG_SEALED, ev.BIDS_LISTED, ev.WINDOW_OPENED]
        assert events[-1]["data"]["closes_at"] == iso_utc(waiting.until)
        opening = await opening_row(scene, tender)
        assert (opening.lease_owner, opening.resume_at) == (None, waiting.until)

        # Looked at again before the close (another instance, a restart): it still waits.
        early = await scene.open(
            tender, instance="other", clock=lambda: start + timedelta(minutes=29)
        )
        assert early == waiting
        assert types(await scene.events(tender)) == types(events)

        late: datetime = waiting.until + timedelta(seconds=1)
        finished = await scene.open(tender, instance="closer", clock=lambda: late)

        assert isinstance(finished, pipeline.Claimed)
        after = (await scene.events(tender))[len(events) :]
        closed = after[0]
        assert closed["type"] == ev.WINDOW_CLOSED
        assert closed["data"] == {"decrypted": 0, "still_sealed": 3}
        if backup:
            assert types(after[1:4]) == [ev.BID_DECRYPTED] * 3
            assert {event["data"]["via"] for event in after[1:4]} == {"backup"}
            assert types(after[4:]) == [ev.SCORES_COMPUTED, ev.RECORD_PUBLISHED, ev.COMPLETED]
        else:
            assert types(after[1:4]) == [ev.BID_WITHDRAWN] * 3
            assert {event["data"]["reason"] for event in after[1:4]} == {"not_decrypted"}
            assert types(after[4:]) == [ev.RECORD_PUBLISHED, ev.FAILED]
            assert after[-1]["data"]["reason"] == "too_few_valid_bids"
        record = (await scene.get(tender, "/opening/record")).json()["record"]
        statuses = {bid["status"] for bid in record["bids"]}
        assert statuses == ({"decrypted"} if backup else {"withdrawn"})
        assert (await opening_row(scene, tender)).resume_at is None
