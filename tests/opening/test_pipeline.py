"""The opening pipeline end to end through the API, on SQLite and PostgreSQL."""

from typing import Any

from bidding.crypto import age
from bidding.opening import lease
from tests.opening.conftest import Scene

FIELDS = [{"name": "duration_days", "label": "Duration", "type": "integer"}]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


class TestLowestPrice:
    async def test_a_whole_opening_ranks_the_valid_bids_and_names_the_rest(
        self, scene: Scene
    ) -> None:
        tender = await scene.tender(bid_fields=FIELDS)
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100})
        await scene.bid(tender, {"price": "950000.00", "duration_days": 120})
        await scene.bid(tender, {"price": "1100000.00", "duration_days": 90})
        await scene.bid(tender, {"price": "1300000.00", "duration_days": 90})  # above ceiling
        await scene.bid(
            tender,
            {"price": "990000.00", "duration_days": 90},
            recipient=age.Identity.generate().recipient,
        )
        await scene.pass_deadline(tender)

        assert isinstance(await scene.open(tender), lease.Claimed)

        events = await scene.events(tender)
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert types(events) == [
            "opening.started",
            "log.sealed",
            "bids.listed",
            *["bid.decrypted"] * 3,
            "bid.rejected",
            "bid.rejected",
            "scores.computed",
            "record.published",
            "opening.completed",
        ]
        rejected = {e["data"]["reason"] for e in events if e["type"] == "bid.rejected"}
        assert rejected == {"above_ceiling", "decrypt_failed"}
        results = (await scene.get(tender, "/results")).json()
        assert [place["price"] for place in results["ranking"]] == [
            "950000.00",
            "1000000.00",
            "1100000.00",
        ]
        record = (await scene.get(tender, "/opening/record")).json()
        assert record["record"]["outcome"] == {"status": "opened"}
        assert (await scene.get(tender, "")).json()["status"] == "opened"
