"""Bidder mode (online decryption): the decryption window opens after the bids are listed,
nobody holds the opening while it is open, and at its close each bid still sealed is opened
with the tender's key (backup decryption) or withdrawn as not decrypted."""

import asyncio
import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from bidding.crypto import age
from bidding.db import create_session_factory, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import pipeline
from bidding.opening.models import Opening
from bidding.opening.scheduler import OpeningScheduler
from tests.opening.conftest import Party, Scene
from tests.tenders.conftest import TENDERS

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
        assert closed["data"] == {"opened": 0, "still_sealed": 3}
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


async def reveal(scene: Scene, tender: dict[str, Any], party: Party, file_key: bytes) -> Any:
    return await scene.client.post(
        f"{TENDERS}/{tender['id']}/opening/reveal",
        json={"file_key": base64.b64encode(file_key).decode()},
        headers=party.headers,
    )


async def file_key_of(
    scene: Scene, tender: dict[str, Any], party: Party, identity: age.Identity
) -> bytes:
    """What `bidding reveal` does: the bid's header from the platform, the key computed here."""
    answer = await scene.client.get(
        f"{TENDERS}/{tender['id']}/bids/mine/header", headers=party.headers
    )
    assert answer.status_code == 200, answer.text
    header = age.parse_header(base64.b64decode(answer.json()["header"]))
    return header.file_key([identity])


class TestCeremony:
    @pytest.mark.parametrize("backup", [False, True])
    async def test_five_bidders_three_reveal_one_corrects_a_wrong_key_one_never_does(
        self, scene: Scene, backup: bool
    ) -> None:
        tender = await scene.tender(
            opening_mode="bidder", backup_decryption=backup, decryption_window_minutes=30
        )
        parties, identities = [], []
        for price in (*PRICES, "990000.00", "1050000.00"):
            party, own = await scene.bidder(), age.Identity.generate()
            recipients = [own.recipient]
            if backup:
                recipients.append(age.Recipient.parse(tender["opening_recipient"]))
            form = {"price": price, "duration_days": 100}
            await scene.bid(tender, form, party=party, recipients=recipients)
            parties.append(party)
            identities.append(own)
        outsider = await scene.bidder()
        too_early = await reveal(scene, tender, parties[0], bytes(16))
        assert (too_early.status_code, too_early.json()["type"]) == (409, "window_not_open")
        await scene.pass_deadline(tender)
        start = utcnow()
        waiting = await scene.open(tender, clock=lambda: start)
        assert isinstance(waiting, pipeline.Waiting)

        for party, own in zip(parties[:3], identities[:3], strict=True):
            answer = await reveal(
                scene, tender, party, await file_key_of(scene, tender, party, own)
            )
            assert answer.status_code == 201, answer.text
            assert answer.json()["type"] == ev.BID_DECRYPTED
            assert answer.json()["data"]["via"] == "bidder"
        wrong = await reveal(scene, tender, parties[3], bytes(16))
        assert wrong.status_code == 422
        assert (wrong.json()["type"], wrong.json()["tries_left"]) == ("wrong_file_key", 4)
        right = await file_key_of(scene, tender, parties[3], identities[3])
        assert (await reveal(scene, tender, parties[3], right)).status_code == 201
        again = await reveal(scene, tender, parties[3], right)
        assert (again.status_code, again.json()["type"]) == (409, "already_opened")
        assert (await reveal(scene, tender, outsider, right)).status_code == 403
        assert scene.officer is not None
        officer = await scene.client.post(
            f"{TENDERS}/{tender['id']}/opening/reveal",
            json={"file_key": base64.b64encode(right).decode()},
            headers=scene.officer.headers,
        )
        assert officer.status_code == 403

        late = waiting.until + timedelta(seconds=1)
        assert isinstance(await scene.open(tender, clock=lambda: late), pipeline.Claimed)
        events = await scene.events(tender)
        closed = next(event for event in events if event["type"] == ev.WINDOW_CLOSED)
        assert closed["data"] == {"opened": 4, "still_sealed": 1}
        fifth = [e for e in events if e["seq"] > closed["seq"] and "bid_id" in e["data"]]
        assert len(fifth) == 1
        if backup:
            assert (fifth[0]["type"], fifth[0]["data"]["via"]) == (ev.BID_DECRYPTED, "backup")
        else:
            assert (fifth[0]["type"], fifth[0]["data"]["reason"]) == (
                ev.BID_WITHDRAWN,
                "not_decrypted",
            )
        ranking = (await scene.get(tender, "/results")).json()["ranking"]
        assert len(ranking) == (5 if backup else 4)
        after = await reveal(scene, tender, parties[4], bytes(16))
        assert after.status_code == 409


class TestRestart:
    async def test_a_scheduler_started_while_the_window_is_open_waits_for_its_close(
        self, scene: Scene
    ) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=False)
        await scene.pass_deadline(tender)
        waiting = await scene.open(tender)
        assert isinstance(waiting, pipeline.Waiting)

        # A restart: a new scheduler reads the tenders table and finds the open window.
        scheduler = OpeningScheduler(scene.context("restarted"), sync_every=timedelta(minutes=10))
        await scheduler.start()
        try:
            assert scheduler.scheduled_at(uuid.UUID(tender["id"])) == waiting.until
        finally:
            await scheduler.stop()


class TestOwnHeader:
    async def test_a_bids_header_is_served_to_its_bidder_alone(self, scene: Scene) -> None:
        tender = await scene.tender(opening_mode="bidder")
        party, own = await scene.bidder(), age.Identity.generate()
        await scene.bid(tender, {"price": PRICES[0], "duration_days": 100}, party=party,
                        recipients=[own.recipient])  # fmt: skip
        url = f"{TENDERS}/{tender['id']}/bids/mine/header"
        assert len(await file_key_of(scene, tender, party, own)) == age.FILE_KEY_SIZE
        outsider = await scene.client.get(url, headers=(await scene.bidder()).headers)
        assert (outsider.status_code, outsider.json()["type"]) == (404, "no_bid")
        assert (await scene.client.get(url)).status_code == 401
        assert scene.officer is not None
        assert (await scene.client.get(url, headers=scene.officer.headers)).status_code == 403


class TestTries:
    async def test_parallel_wrong_keys_get_five_tries_in_all(self, scene: Scene) -> None:
        tender, _identities = await bidder_mode_tender(scene, backup=False)
        party = scene.bidders[0]
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), pipeline.Waiting)

        answers = await asyncio.gather(
            *(reveal(scene, tender, party, bytes([n]) * 16) for n in range(12))
        )

        kinds = sorted(answer.json()["type"] for answer in answers)
        assert kinds == ["too_many_tries"] * 7 + ["wrong_file_key"] * 5
        left = sorted(a.json()["tries_left"] for a in answers if a.status_code == 422)
        assert left == [0, 1, 2, 3, 4]


class TestRevealInput:
    @pytest.mark.parametrize(
        "file_key", ["not base64!", base64.b64encode(bytes(15)).decode(), "", "QUJD" * 16]
    )
    async def test_a_malformed_file_key_is_refused_without_using_a_try(
        self, scene: Scene, file_key: str
    ) -> None:
        tender, identities = await bidder_mode_tender(scene, backup=False)
        party = scene.bidders[0]
        await scene.pass_deadline(tender)
        assert isinstance(await scene.open(tender), pipeline.Waiting)

        answer = await scene.client.post(
            f"{TENDERS}/{tender['id']}/opening/reveal",
            json={"file_key": file_key},
            headers=party.headers,
        )

        assert answer.status_code == 422
        assert answer.json()["type"] == "validation_error"
        right = await file_key_of(scene, tender, party, identities[0])
        wrong = await reveal(scene, tender, party, bytes(16))
        assert wrong.json()["tries_left"] == 4, "the malformed key used no try"
        assert (await reveal(scene, tender, party, right)).status_code == 201
