"""A whole tender played in the browser, each person in their own browser context.

An officer drafts and publishes a tender; two bidders seal their bids in their pages and
upload them; a member of the public watches the opening hall through the deadline and sees
every bid open and the ranking appear. What went over the wire is checked: each upload is
an age file that does not hold the bid it carries.
"""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import Platform, api_call, screenshot

AGE_MAGIC = b"age-encryption.org/v1\n"
BIDS = {"wt-bidder-a": ("3870000.00", "150"), "wt-bidder-b": ("3615500.50", "170")}


def local_minute(moment: datetime) -> str:
    """A moment as a datetime-local value (minutes) in the machine's zone, the browser's too."""
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M")


def accounts(platform: Platform) -> None:
    for name, role, org in (
        ("wt-officer", "officer", "WT Municipal Works Bureau"),
        ("wt-bidder-a", "bidder", "Minjiang Builders"),
        ("wt-bidder-b", "bidder", "Haixi Roadworks"),
    ):
        if name not in platform.accounts:
            platform.add_account(name, role, org)


def publish_in_the_console(page: Any, deadline: datetime) -> str:
    """The officer's part: a public lowest-price tender with one extra field, published."""
    page.locator("main h2").first.wait_for()
    page.goto("/#/officer/new")
    page.get_by_label("Reference").fill(f"WT-{uuid.uuid4().hex[:8]}")
    page.get_by_label("Title").fill("Street lighting renewal, Gulou district")
    page.get_by_label("Description").fill("Replace 1,200 sodium lamps with LED fittings.")
    page.get_by_label("Buyer").fill("Gulou District Works Bureau")
    page.get_by_label("Ceiling price").fill("4000000.00")
    page.get_by_label("Bid deadline").fill(local_minute(deadline))
    page.get_by_label("Fewest valid bids").fill("2")
    page.get_by_label("Public opening: anyone may watch").check()
    page.get_by_role("button", name="Add a field").click()
    added = page.locator("fieldset.off-bid-field").nth(1)
    added.get_by_label("Name").fill("duration_days")
    added.get_by_label("Label").fill("Duration (days)")
    added.get_by_label("Type").select_option("integer")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_text("Draft created.").wait_for()
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog", name="Publish this tender?").get_by_role(
        "button", name="Yes, publish"
    ).click()
    page.get_by_text("Published: bidders can now seal their bids.").wait_for()
    found = re.search(r"#/officer/tenders/([0-9a-f-]{36})$", page.url)
    assert found is not None
    return found.group(1)


def bid_in_the_portal(page: Any, tender_id: str, price: str, duration: str) -> bytes:
    """A bidder's part: fill in, seal and upload in the page; the request body it sent."""
    sent: list[bytes] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data_buffer)
            if request.method == "POST" and request.url.endswith(f"/tenders/{tender_id}/bids")
            else None
        ),
    )
    page.locator("main h2").first.wait_for()
    page.goto(f"/#/tenders/{tender_id}/bid")
    page.get_by_label("Price").fill(price)
    page.get_by_label("Duration (days)").fill(duration)
    page.get_by_role("button", name="Seal and submit").click()
    page.get_by_text("Receipt verified").wait_for()
    assert len(sent) == 1
    return sent[0]


@pytest.mark.slow
class TestWholeTender:
    def test_publish_seal_submit_and_watch_the_opening(self, new_page, platform: Platform) -> None:
        accounts(platform)
        # The deadline is on a whole minute (the form's precision), at least a minute away.
        soon = datetime.now(UTC) + timedelta(seconds=75)
        deadline = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)

        officer = new_page("wt-officer")
        tender_id = publish_in_the_console(officer, deadline)
        published = api_call(platform, None, "GET", f"/tenders/{tender_id}")
        assert published["status"] == "published" and published["public_opening"] is True
        assert datetime.fromisoformat(published["bid_deadline"]) == deadline

        # The public watches from before the deadline, signed in as nobody.
        watcher = new_page()
        watcher.goto(f"/#/tenders/{tender_id}/hall")
        watcher.locator("output.countdown").wait_for()
        screenshot(watcher, "whole-tender-hall-before")

        uploads = {}
        for name, (price, duration) in BIDS.items():
            uploads[name] = bid_in_the_portal(new_page(name), tender_id, price, duration)
        for name, body in uploads.items():
            price, duration = BIDS[name]
            assert body.startswith(AGE_MAGIC)
            assert b"-> X25519 " in body
            assert price.encode() not in body and b"duration_days" not in body
            assert published["opening_recipient"].encode() not in body  # a stanza, not a name
        assert datetime.now(UTC) < deadline, "the bids were not in before the deadline"

        # Through the deadline, without reloading: every bid opens and the ranking appears.
        ranking = watcher.locator("table.ranking")
        ranking.wait_for(timeout=180_000)
        bids = watcher.locator("table.bids")
        for price, _ in BIDS.values():
            bids.get_by_text(
                re.sub(r"\B(?=(\d{3})+(?!\d))", ",", price.split(".")[0])
            ).first.wait_for()
        rows = ranking.locator("tbody tr")
        assert rows.count() == 2
        assert "Haixi Roadworks" in rows.nth(0).inner_text()  # the lower price ranks first
        assert "Minjiang Builders" in rows.nth(1).inner_text()
        screenshot(watcher, "whole-tender-hall-opened")

        results = api_call(platform, None, "GET", f"/tenders/{tender_id}/results")
        assert [row["price"] for row in results["ranking"]] == ["3615500.50", "3870000.00"]
        shown = [int(seq) for seq in watcher.locator(".timeline li[data-seq]").evaluate_all(
            "items => items.map(item => item.dataset.seq)")]  # fmt: skip
        events = api_call(platform, None, "GET", f"/tenders/{tender_id}/opening/events")
        assert sorted(shown) == [event["seq"] for event in events["events"]]
        assert officer.errors == [] and watcher.errors == []
