"""The bidder portal in a real browser: a bid is sealed in the page, uploaded, receipted and
checked there; replaced, withdrawn, retried; and, for a tender its bidders decrypt, the key is
made in the browser and the bid revealed with it in the decryption window."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bidding.crypto import age
from tests.browser.conftest import (
    PASSWORD,
    Platform,
    api_call,
    bid_posts,
    events_of,
    published_tender,
    screenshot,
    submitted_bid,
    wait_for_event,
)

expect = pytest.importorskip("playwright.sync_api").expect

BIDDING = str(Path(sys.executable).parent / "bidding")  # the CLI a bidder runs
OFFICER = "bid-officer"
BIDDER = "bid-alpha"
FIELDS = [
    {"name": "price", "label": "Price", "type": "decimal"},
    {
        "name": "duration_days",
        "label": "Duration (days)",
        "type": "integer",
        "min": "30",
        "max": "720",
    },
    {"name": "warranty", "label": "Warranty terms", "type": "text", "required": False},
    {"name": "certified", "label": "ISO 9001 certified", "type": "boolean"},
]


def ensure_accounts(platform: Platform, *bidders: str) -> None:
    """The officer and the bidders of this module, each bidder its own organization."""
    if OFFICER not in platform.accounts:
        platform.add_account(OFFICER, "officer", "Bid Portal Test Transport Bureau")
    for bidder in (BIDDER, *bidders):
        if bidder not in platform.accounts:
            platform.add_account(bidder, "bidder", f"{bidder.title()} Engineering Group Co")


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


class TestSealAndSubmit:
    def test_a_bid_is_sealed_in_the_page_receipted_verified_and_opened_at_the_deadline(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        ensure_accounts(platform)
        tender = published_tender(platform, OFFICER, seconds=45, bid_fields=FIELDS)
        document = tmp_path / "technical-proposal.pdf"
        document.write_bytes(b"%PDF-1.4 CONFIDENTIAL-METHOD-STATEMENT " * 400)
        page = new_page(BIDDER)
        posts = bid_posts(page)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        facts = page.get_by_role("group").filter(has_text="Ceiling price")
        assert "CNY 5,000,000.00" in facts.inner_text()
        page.get_by_label("Price").fill("4321987.65")
        page.get_by_label("Duration (days)").fill("180")
        page.get_by_label("Warranty terms").fill("Five years on all surfacing.")
        page.get_by_label("ISO 9001 certified").check()
        page.get_by_label("Attach documents").set_input_files(str(document))
        attached = page.get_by_role("list", name="Attached documents")
        attached.get_by_text("technical-proposal.pdf").wait_for()
        assert f"{document.stat().st_size / 1024:.1f} KB" in attached.inner_text()
        screenshot(page, "bidder-form")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("Receipt verified").wait_for()
        mine_region = page.get_by_role("region", name="Your bid", exact=True)
        mine_region.get_by_text("Signature valid").wait_for()
        screenshot(page, "bidder-receipt")

        # Only the sealed file left the browser: an age file to an X25519 recipient.
        assert len(posts) == 1
        body = posts[0].post_data_buffer
        assert body.startswith(b"age-encryption.org/v1\n")
        assert b"\n-> X25519 " in body
        assert b"4321987.65" not in body
        assert b"CONFIDENTIAL-METHOD-STATEMENT" not in body
        assert posts[0].headers["content-type"] == "application/octet-stream"
        assert posts[0].headers["idempotency-key"]

        mine = api_call(platform, BIDDER, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert mine["bid"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert mine["bid"]["size"] == len(body)
        assert mine["bid"]["sha256"] in mine_region.inner_text()

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the receipt").click()
        download = download_info.value
        assert download.suggested_filename == f"receipt-{tender['id']}-v1.json"
        receipt_path = tmp_path / download.suggested_filename
        download.save_as(receipt_path)
        receipt = json.loads(receipt_path.read_text())
        assert receipt["body"]["sha256"] == mine["bid"]["sha256"]
        checked = subprocess.run(
            [BIDDING, "verify-receipt", str(receipt_path), "--server", platform.url],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr
        assert "signature: ok" in checked.stdout
        assert "not yet provable" in checked.stdout

        saved = page.get_by_role("region", name="Check a saved receipt")
        saved.get_by_label("Receipt file").set_input_files(str(receipt_path))
        saved.get_by_text("Signature valid").wait_for()
        saved.get_by_text("Not yet provable").wait_for()

        # At the deadline the platform opens the sealed bid: the price typed in the page.
        decrypted = wait_for_event(platform, BIDDER, tender["id"], "bid.decrypted")
        assert decrypted["data"]["price"] == "4321987.65"
        assert decrypted["data"]["fields"]["duration_days"] == 180
        assert decrypted["data"]["fields"]["certified"] is True
        (paper,) = decrypted["data"]["documents"]
        assert paper["name"] == "attachments/technical-proposal.pdf"
        assert paper["sha256"] == hashlib.sha256(document.read_bytes()).hexdigest()

        # Once the log is sealed the same receipt is proven to be in it, in the page too.
        saved.get_by_label("Receipt file").set_input_files(str(receipt_path))
        saved.get_by_text("Inclusion proven").wait_for()
        assert page.errors == []

    def test_the_form_refuses_what_the_opening_would_and_uploads_nothing(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        ensure_accounts(platform)
        tender = published_tender(platform, OFFICER, bid_fields=FIELDS)
        page = new_page(BIDDER)
        posts = bid_posts(page)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        price = page.get_by_label("Price")
        duration = page.get_by_label("Duration (days)")
        submit = page.get_by_role("button", name="Seal and submit")
        documents = page.get_by_role("list", name="Attached documents")
        for name in ("Bill of Quantities.xlsx", "bill of quantities.XLSX"):
            (tmp_path / name).write_bytes(b"rows")
        page.get_by_label("Attach documents").set_input_files(
            [str(tmp_path / "Bill of Quantities.xlsx"), str(tmp_path / "bill of quantities.XLSX")]
        )
        page.get_by_text("another document has the same name").wait_for()
        assert documents.get_by_role("listitem").count() == 1
        page.get_by_role("button", name="Remove Bill of Quantities.xlsx").click()
        documents.get_by_text("No documents").wait_for()

        price.fill("1234.567")
        duration.fill("180")
        submit.click()
        page.get_by_text("An amount has at most 2 decimals").wait_for()
        assert price.get_attribute("aria-invalid") == "true"
        error_id = price.get_attribute("aria-describedby").split()[0]
        assert "at most 2 decimals" in page.locator(f"#{error_id}").inner_text()
        assert page.evaluate("document.activeElement.id") == price.get_attribute("id")

        price.fill("5000000.01")
        submit.click()
        page.get_by_text("Above the ceiling price CNY 5,000,000.00").wait_for()

        price.fill("1,234.50")
        submit.click()
        page.get_by_text("without separators or currency signs").wait_for()

        price.fill("4999999.99")
        duration.fill("")
        submit.click()
        page.get_by_text("This field is required").wait_for()
        assert price.get_attribute("aria-invalid") is None
        assert duration.get_attribute("aria-invalid") == "true"

        duration.fill("12.5")
        submit.click()
        page.get_by_text("Write a whole number").wait_for()
        duration.fill("10")
        submit.click()
        page.get_by_text("Must be at least 30").wait_for()

        assert page.get_by_role("alert").first.inner_text().startswith("Correct the 1 marked")
        assert posts == []
        mine = api_call(platform, BIDDER, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert mine == {"bid": None, "receipts": []}
        assert page.errors == []

    def test_a_corrected_field_loses_its_error_as_it_changes(
        self, new_page, platform: Platform
    ) -> None:
        ensure_accounts(platform)
        tender = published_tender(platform, OFFICER, bid_fields=FIELDS)
        page = new_page(BIDDER)
        posts = bid_posts(page)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        price = page.get_by_label("Price")
        duration = page.get_by_label("Duration (days)")
        submit = page.get_by_role("button", name="Seal and submit")
        summary = page.get_by_text("Correct the")
        above = page.get_by_text("Above the ceiling price CNY 5,000,000.00")

        price.fill("5000000.01")
        duration.fill("10")
        submit.click()
        expect(above).to_be_visible()
        expect(summary).to_have_text(re.compile("^Correct the 2 marked"))

        # The price is put right: its error goes at once, the duration's stays.
        price.fill("4999999.99")
        expect(above).to_have_count(0)
        expect(price).not_to_have_attribute("aria-invalid", "true")
        expect(duration).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_text("Must be at least 30")).to_be_visible()
        expect(summary).to_have_text(re.compile("^Correct the 1 marked"))

        # A marked field is read again as it changes: still wrong, then right.
        duration.fill("1000")
        expect(page.get_by_text("Must be at most 720")).to_be_visible()
        duration.fill("180")
        expect(duration).not_to_have_attribute("aria-invalid", "true")
        expect(page.locator(".field-error:visible")).to_have_count(0)
        expect(summary).to_have_count(0)

        # A new attempt reads every field again.
        price.fill("")
        submit.click()
        expect(page.get_by_text("This field is required")).to_be_visible()
        expect(price).to_have_attribute("aria-invalid", "true")
        expect(duration).not_to_have_attribute("aria-invalid", "true")
        assert posts == []
        assert page.errors == []

    def test_the_page_sends_a_visitor_to_sign_in_and_tells_an_officer_it_is_for_bidders(
        self, new_page, platform: Platform
    ) -> None:
        ensure_accounts(platform)
        tender = published_tender(platform, OFFICER)
        page = new_page()
        page.goto(f"/#/tenders/{tender['id']}/bid")
        link = page.get_by_role("link", name="Sign in to bid")
        assert link.get_attribute("href") == f"#/sign-in?next=/tenders/{tender['id']}/bid"
        link.click()
        page.get_by_label("Email").fill(platform.accounts[BIDDER])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Seal and submit").wait_for()
        officer = new_page(OFFICER)
        officer.goto(f"/#/tenders/{tender['id']}/bid")
        officer.get_by_text("Only bidder accounts can bid").wait_for()
        assert officer.get_by_role("button", name="Seal and submit").count() == 0
        assert page.errors == [] and officer.errors == []


class TestReplaceWithdrawRetry:
    def test_a_bid_is_replaced_by_version_2_then_withdrawn_with_a_receipt(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        bidder = "bid-beta"
        ensure_accounts(platform, bidder)
        tender = published_tender(platform, OFFICER)
        submitted_bid(platform, bidder, tender, {"price": "3000000.00"}, tmp_path)
        page = new_page(bidder)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        mine = page.get_by_role("region", name="Your bid", exact=True)
        mine.get_by_text("Signature valid").wait_for()
        page.get_by_role("heading", name="Replace your bid (a new version)").wait_for()
        page.get_by_label("Price").fill("2950000.00")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("Receipt verified").wait_for()
        answer = api_call(platform, bidder, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert answer["bid"]["version"] == 2
        assert [r["body"]["version"] for r in answer["receipts"]] == [1, 2]
        mine.get_by_role("button", name="Download the Bid receipt of version 2").wait_for()

        # Withdrawing asks first; Escape keeps the bid.
        page.get_by_role("button", name="Withdraw my bid").click()
        dialog = page.get_by_role("dialog", name="Withdraw your bid?")
        dialog.wait_for()
        assert page.evaluate("document.activeElement.textContent") == "Keep my bid"
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached")
        assert api_call(platform, bidder, "GET", f"/tenders/{tender['id']}/bids/mine")["bid"]

        # With the keyboard only: open, move to "Yes, withdraw", confirm.
        page.get_by_role("button", name="Withdraw my bid").focus()
        page.keyboard.press("Enter")
        dialog.wait_for()
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.textContent") == "Yes, withdraw"
        page.keyboard.press("Enter")
        page.get_by_text("Withdrawal receipt verified").wait_for()
        mine.get_by_text("You withdrew your bid").wait_for()
        answer = api_call(platform, bidder, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert answer["bid"] is None
        assert answer["receipts"][-1]["body"]["kind"] == "withdrawal"

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the receipt").click()
        download = download_info.value
        assert download.suggested_filename == f"receipt-{tender['id']}-v2-withdrawal.json"
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        assert json.loads(path.read_text()) == answer["receipts"][-1]
        assert page.errors == []

    def test_an_upload_lost_on_the_way_back_is_retried_and_answered_with_the_first_receipt(
        self, new_page, platform: Platform
    ) -> None:
        bidder = "bid-gamma"
        ensure_accounts(platform, bidder)
        tender = published_tender(platform, OFFICER)
        page = new_page(bidder)
        posts = bid_posts(page)
        lost: list[int] = []

        def lose_the_first_answer(route: Any) -> None:
            if lost:
                route.continue_()
                return
            # The platform gets the bid, but the browser never hears back.
            lost.append(route.fetch().status)
            route.abort("connectionreset")

        page.route("**/api/v1/tenders/*/bids", lose_the_first_answer)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        page.get_by_label("Price").fill("1999999.99")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("The upload failed").wait_for()
        assert lost == [201]
        page.get_by_role("button", name="Retry the upload").click()
        page.get_by_text("Receipt verified").wait_for()
        page.get_by_text("had received this upload already").wait_for()
        assert len(posts) == 2
        assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
        assert posts[0].post_data_buffer == posts[1].post_data_buffer
        answer = api_call(platform, bidder, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert answer["bid"]["version"] == 1
        assert len(answer["receipts"]) == 1
        assert page.errors == []


class TestOnlineDecryption:
    def test_a_key_made_in_the_browser_seals_a_bid_that_is_revealed_in_the_window(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        bidder = "bid-delta"
        ensure_accounts(platform, bidder)
        page = new_page(bidder)
        # Without a checked key of its own the organization cannot seal for such a tender.
        keyless = published_tender(platform, OFFICER, opening_mode="bidder", min_bids=1)
        posts = bid_posts(page)
        page.goto(f"/#/tenders/{keyless['id']}/bid")
        page.get_by_label("Price").fill("3000000.00")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("first generate, register and check your organization's key").wait_for()
        assert posts == []
        page.get_by_role("link", name="Go to My decryption key").click()
        page.get_by_text("has registered no key yet").wait_for()
        page.get_by_role("button", name="Generate a key pair").click()
        register = page.get_by_role("button", name="Register this key")
        assert register.is_disabled()
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the identity file").click()
        download = download_info.value
        assert download.suggested_filename == "Bid-Delta-Engineering-Group-Co-age-identity.txt"
        identity_path = tmp_path / download.suggested_filename
        download.save_as(identity_path)
        identity_text = identity_path.read_text()
        assert identity_text.startswith("AGE-SECRET-KEY-1")
        (identity,) = age.parse_identities(identity_text)
        register.click()
        page.get_by_text("The key is registered").wait_for()
        keys = api_call(platform, bidder, "GET", "/me/keys")
        assert keys["current"]["recipient"] == str(identity.recipient)
        assert keys["current"]["verified_at"] is None

        check = page.get_by_role("region", name="Check the key", exact=True)
        check.get_by_label("Identity file").set_input_files(str(identity_path))
        check.get_by_role("button", name="Check the key").click()
        page.get_by_text("Key verified").wait_for()
        screenshot(page, "bidder-keys")
        assert api_call(platform, bidder, "GET", "/me/keys")["current"]["verified_at"]

        tender = published_tender(
            platform,
            OFFICER,
            seconds=25,
            opening_mode="bidder",
            decryption_window_minutes=5,
            min_bids=1,
        )
        page.goto(f"/#/tenders/{tender['id']}/bid")
        page.get_by_label("Price").fill("3456789.00")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("Receipt verified").wait_for()
        # Sealed to the organization's own key alone (no backup decryption): it opens it.
        sealed = posts[-1].post_data_buffer
        assert sealed.count(b"\n-> X25519 ") == 1
        assert json.loads(age.unseal_bytes(sealed, [identity])) == {"price": "3456789.00"}

        # The page follows the tender past its deadline into the decryption window.
        wait_for_event(platform, bidder, tender["id"], "decryption.window_opened")
        reveal = page.get_by_role("region", name="Reveal your bid")
        other = tmp_path / "another-age-identity.txt"
        other.write_text(f"{age.Identity.generate()}\n")
        reveal.get_by_label("Identity file").set_input_files(str(other), timeout=60_000)
        reveal.get_by_role("button", name="Reveal my bid").click()
        reveal.get_by_text("This identity file does not open your bid").wait_for()
        reveal.get_by_label("Identity file").set_input_files(str(identity_path))
        reveal.get_by_role("button", name="Reveal my bid").click()
        reveal.get_by_text("Your bid is decrypted: price CNY 3,456,789.00").wait_for()
        decrypted = [
            event
            for event in events_of(platform, bidder, tender["id"])
            if event["type"] == "bid.decrypted"
        ]
        assert [(e["data"]["price"], e["data"]["via"]) for e in decrypted] == [
            ("3456789.00", "bidder")
        ]
        # The only bid is revealed, so the window closes early and the opening completes; the
        # page still tells the bidder what became of its bid.
        wait_for_event(platform, bidder, tender["id"], "opening.completed")
        page.reload()
        reveal.get_by_text("Your bid is decrypted: price CNY 3,456,789.00").wait_for()
        assert page.errors == []


class TestPhone:
    def test_the_bid_page_fits_a_phone_without_horizontal_scrolling_in_chinese(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        bidder = "bid-epsilon"
        ensure_accounts(platform, bidder)
        tender = published_tender(platform, OFFICER, bid_fields=FIELDS)
        document = tmp_path / "第三标段工程量清单-a-long-name-for-the-bill-of-quantities.xlsx"
        document.write_bytes(b"quantities" * 50)
        page = new_page(bidder, width=375, height=740, language="zh-CN")
        page.goto(f"/#/tenders/{tender['id']}/bid")
        page.get_by_label("Price").fill("1000000.00")
        page.get_by_label("Duration (days)").fill("90")
        page.get_by_label("附件（可选）").set_input_files(str(document))
        page.get_by_role("button", name=f"移除附件 {document.name}").wait_for()
        assert no_horizontal_scroll(page)
        page.get_by_role("button", name="密封并提交").click()
        page.get_by_text("回执已核验").wait_for()
        mine = page.get_by_role("region", name="我的投标", exact=True)
        mine.get_by_text("签名有效").wait_for()
        assert no_horizontal_scroll(page)
        screenshot(page, "bidder-phone-zh")
        assert page.errors == []
