"""The officer console in the browser: drafts with their scoring and bid form, publication,
amendments, cancellation, refusals shown at the field, and who may use it."""

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD, Platform, api_call, published_tender, screenshot

OFFICER = "off-officer"
BIDDER = "off-bidder"


@pytest.fixture
def officer(platform: Platform) -> str:
    """An officer of Off County Bureau (the platform is shared: made once)."""
    if OFFICER not in platform.accounts:
        platform.add_account(OFFICER, "officer", "Off County Bureau")
    return OFFICER


@pytest.fixture
def bidder(platform: Platform) -> str:
    if BIDDER not in platform.accounts:
        platform.add_account(BIDDER, "bidder", "Off Bridge Works")
    return BIDDER


def open_as(new_page: Any, account: str | None, path: str, **options: Any) -> Any:
    """A page signed in as the account, showing path.

    Signing in ends on the tender list; its drawing is waited for, or, still loading, it
    could draw itself over the page asked for next (the router does not drop stale pages).
    """
    page = new_page(account, **options)
    if account is not None:
        page.locator("main h2").first.wait_for()
    page.goto(f"/#{path}")
    return page


def reference() -> str:
    return f"OFF-{uuid.uuid4().hex[:10]}"


def local_input(moment: datetime) -> str:
    """A moment as a datetime-local value in this machine's zone (the browser's too)."""
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M")


def draft(platform: Platform, officer: str, **overrides: Any) -> dict[str, Any]:
    """A draft made through the API, for the tests that are about something else."""
    body: dict[str, Any] = {
        "reference": reference(),
        "title": "School canteen equipment",
        "buyer_name": "Off County Bureau",
        "ceiling_price": "800000.00",
        "bid_deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
        "scoring": {"method": "lowest_price"},
        **overrides,
    }
    return api_call(platform, officer, "POST", "/tenders", json=body)  # type: ignore[no-any-return]


def own_references(platform: Platform, officer: str) -> set[str]:
    tenders = api_call(platform, officer, "GET", "/tenders", params={"page_size": 100})
    return {tender["reference"] for tender in tenders["items"]}


def fill_basics(page: Any, ref: str, *, ceiling: str, floor: str = "") -> None:
    page.get_by_label("Reference").fill(ref)
    page.get_by_label("Title").fill("Bridge deck repair, Min River")
    page.get_by_label("Description").fill(
        "Repair of the deck and railings of the Min River bridge."
    )
    page.get_by_label("Ceiling price").fill(ceiling)
    page.get_by_label("Floor price").fill(floor)
    deadline = datetime.now(UTC) + timedelta(days=3)
    page.get_by_label("Bid deadline").fill(local_input(deadline))


class TestDrafts:
    def test_an_officer_drafts_a_benchmark_tender_with_an_extra_field_and_publishes_it(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        page = open_as(new_page, officer, "/officer")
        page.get_by_role("link", name="New tender").click()
        ref = reference()
        fill_basics(page, ref, ceiling="5000000.00", floor="3000000")

        page.get_by_label("Benchmark price (基准价法)").check()
        formula = page.locator(".off-formula")
        formula.get_by_text("K drawn from {0.02, 0.03} by sha256(seed ‖ root)").wait_for()
        page.get_by_label("Choices for the coefficient K").fill("0.01, 0.02，0.03")
        page.get_by_label("Deduction E below the benchmark").fill("0.6")
        formula.get_by_text("K drawn from {0.01, 0.02, 0.03}").wait_for()
        formula.get_by_text("E = 1 above B, 0.6 below B").wait_for()
        formula.get_by_text("B = A × (1 − K)").wait_for()

        page.get_by_role("button", name="Add a field").click()
        new_field = page.locator("fieldset.off-bid-field").nth(1)
        # The new field's name box has the focus, ready to type.
        assert page.evaluate("document.activeElement.id") == new_field.get_by_label(
            "Name"
        ).get_attribute("id")
        new_field.get_by_label("Name").fill("duration_days")
        new_field.get_by_label("Label").fill("Duration (days)")
        new_field.get_by_label("Type").select_option("integer")
        new_field.get_by_label("Minimum").fill("30")
        new_field.get_by_label("Maximum").fill("365")
        preview = page.locator(".off-preview")
        preview.get_by_text("Duration (days) (required)").wait_for()
        preview.get_by_text("From 30 to 365").wait_for()
        screenshot(page, "officer-tender-form")

        page.get_by_role("button", name="Create draft").click()
        page.get_by_text("Draft created.").wait_for()
        tender_id = re.search(r"#/officer/tenders/([0-9a-f-]{36})$", page.url).group(1)  # type: ignore[union-attr]
        stored = api_call(platform, officer, "GET", f"/tenders/{tender_id}")
        assert stored["status"] == "draft"
        assert (stored["reference"], stored["ceiling_price"], stored["floor_price"]) == (
            ref,
            "5000000.00",
            "3000000.00",
        )
        assert stored["scoring"] == {
            "method": "benchmark",
            "coefficient_choices": ["0.01", "0.02", "0.03"],
            "trim_threshold": 5,
            "deduct_above": "1",
            "deduct_below": "0.6",
        }
        assert stored["bid_fields"] == [
            {
                "name": "price",
                "label": "Price",
                "type": "decimal",
                "required": True,
                "min": None,
                "max": None,
            },
            {
                "name": "duration_days",
                "label": "Duration (days)",
                "type": "integer",
                "required": True,
                "min": "30",
                "max": "365",
            },
        ]

        page.get_by_role("button", name="Publish…").click()
        dialog = page.get_by_role("dialog", name="Publish this tender?")
        dialog.get_by_role("button", name="Yes, publish").click()
        page.get_by_text("Published: bidders can now seal their bids.").wait_for()
        published = api_call(platform, None, "GET", f"/tenders/{tender_id}")
        assert published["status"] == "published"
        assert published["opening_recipient"].startswith("age1")

        page.get_by_role("link", name="Public page").click()
        page.get_by_role("heading", name="Bridge deck repair, Min River").wait_for()
        page.get_by_text(published["opening_recipient"]).wait_for()
        page.get_by_text(published["coefficient_commitment"]).wait_for()
        assert re.fullmatch(r"[0-9a-f]{64}", published["coefficient_commitment"])
        assert page.errors == []

    def test_bidder_decryption_and_fields_in_the_order_the_officer_chose(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        page = open_as(new_page, officer, "/officer/new")
        fill_basics(page, reference(), ceiling="100000")
        window = page.get_by_label("Decryption window (minutes)")
        assert window.is_hidden()  # platform decryption has no window
        page.get_by_label("Bidders decrypt online").check()
        window.fill("45")
        page.get_by_label("Platform backup decryption").check()
        for name in ("warranty_years", "notes"):
            page.get_by_role("button", name="Add a field").click()
            page.locator("fieldset.off-bid-field").last.get_by_label("Name").fill(name)
        page.locator("fieldset.off-bid-field").last.get_by_label("Type").select_option("text")
        # A text field has no bounds to set.
        assert page.locator("fieldset.off-bid-field").last.get_by_label("Minimum").is_hidden()
        page.get_by_role("button", name="Move field notes up").click()
        # The focus stays on the button that moved the field, so it can be pressed again.
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Remove field warranty_years").click()
        page.get_by_role("button", name="Create draft").click()
        page.get_by_text("Draft created.").wait_for()
        tender_id = page.url.rsplit("/", 1)[1]
        stored = api_call(platform, officer, "GET", f"/tenders/{tender_id}")
        assert (
            stored["opening_mode"],
            stored["decryption_window_minutes"],
            stored["backup_decryption"],
        ) == ("bidder", 45, True)
        assert [(f["name"], f["type"]) for f in stored["bid_fields"]] == [
            ("notes", "text"),
            ("price", "decimal"),
        ]
        # price can be neither removed nor retyped
        assert page.get_by_role("button", name="Remove field price").count() == 0
        price = page.locator("fieldset.off-bid-field", has_text="price").first
        assert price.get_by_label("Type").is_disabled()
        assert page.errors == []

    def test_a_floor_above_the_ceiling_is_refused_at_the_field_and_nothing_is_created(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        page = open_as(new_page, officer, "/officer/new")
        ref = reference()
        fill_basics(page, ref, ceiling="100000.00", floor="100000.01")
        page.get_by_role("button", name="Create draft").click()
        alert = page.get_by_role("alert")
        alert.get_by_text("The floor price must not be above the ceiling price").wait_for()
        floor = page.get_by_label("Floor price")
        assert floor.get_attribute("aria-invalid") == "true"
        described = floor.get_attribute("aria-describedby") or ""
        message = page.locator(f"#{described.split()[-1]}")
        assert message.inner_text() == "The floor price must not be above the ceiling price"
        # The summary's entry takes the keyboard to the control.
        alert.get_by_role("button").click()
        assert page.evaluate("document.activeElement.id") == floor.get_attribute("id")
        page.wait_for_timeout(300)
        assert ref not in own_references(platform, officer)

        # Fixed, the same form goes through and the mark is gone.
        floor.fill("90000")
        page.get_by_role("button", name="Create draft").click()
        page.get_by_text("Draft created.").wait_for()
        assert ref in own_references(platform, officer)
        assert page.errors == []

    def test_the_platforms_refusal_is_shown_at_the_field_it_names(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        taken = draft(platform, officer)["reference"]
        page = open_as(new_page, officer, "/officer/new")
        fill_basics(page, taken, ceiling="100000")
        page.get_by_role("button", name="Create draft").click()
        page.get_by_role("alert").get_by_text("already exists").wait_for()
        assert page.get_by_label("Reference").get_attribute("aria-invalid") == "true"
        assert page.errors == []

    def test_a_validation_error_of_the_platform_is_marked_at_its_field(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        page = open_as(new_page, officer, "/officer/new")
        ref = reference()
        fill_basics(page, ref, ceiling="1000000000000000")  # 16 digits: the page lets it by
        page.get_by_role("button", name="Create draft").click()
        page.get_by_role("alert").get_by_text("at most 15 digits").wait_for()
        ceiling = page.get_by_label("Ceiling price")
        assert ceiling.get_attribute("aria-invalid") == "true"
        assert "at most 15 digits" in page.locator(".field", has=ceiling).inner_text()
        assert ref not in own_references(platform, officer)
        assert page.errors == []

    def test_a_draft_is_cancelled_with_a_reason_using_the_keyboard(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        tender = draft(platform, officer)
        page = open_as(new_page, officer, f"/officer/tenders/{tender['id']}")
        page.get_by_role("button", name="Cancel tender").click()
        reason = page.get_by_label("Reason for cancelling")
        assert reason.get_attribute("aria-invalid") == "true"
        reason.fill("The budget was withdrawn.")
        page.get_by_role("button", name="Cancel tender").click()
        dialog = page.get_by_role("dialog", name="Cancel this tender?")
        dialog.wait_for()
        page.keyboard.press("Escape")  # no: nothing happens
        dialog.wait_for(state="detached")
        assert api_call(platform, officer, "GET", f"/tenders/{tender['id']}")["status"] == "draft"
        page.get_by_role("button", name="Cancel tender").focus()
        page.keyboard.press("Enter")
        dialog.wait_for()
        page.keyboard.press("Shift+Tab")  # from "Go back" to "Yes, cancel it"
        page.keyboard.press("Enter")
        page.get_by_text("The tender is cancelled.").wait_for()
        page.get_by_text("Cancelled: The budget was withdrawn.").wait_for()
        stored = api_call(platform, officer, "GET", f"/tenders/{tender['id']}")
        assert (stored["status"], stored["cancel_reason"]) == (
            "cancelled",
            "The budget was withdrawn.",
        )
        assert page.errors == []


class TestPublished:
    def test_an_amendment_to_a_later_deadline_is_recorded_with_its_reason(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        tender = published_tender(platform, officer, seconds=3600)
        page = open_as(new_page, officer, f"/officer/tenders/{tender['id']}")
        deadline = page.get_by_label("Bid deadline")
        earlier = datetime.fromisoformat(tender["bid_deadline"]) - timedelta(minutes=30)
        deadline.fill(local_input(earlier))
        page.get_by_role("button", name="Publish amendment").click()
        page.get_by_role("alert").get_by_text("The deadline may only move later").wait_for()
        assert (
            page.get_by_label("Reason for the amendment", exact=True).get_attribute("aria-invalid")
            == "true"
        )

        later = datetime.fromisoformat(tender["bid_deadline"]) + timedelta(days=2)
        deadline.fill(local_input(later))
        page.get_by_label("Reason for the amendment", exact=True).fill(
            "The site visit moved to Friday."
        )
        page.get_by_role("button", name="Publish amendment").click()
        page.get_by_text("Amendment published.").wait_for()
        history = page.locator(".off-history")
        history.get_by_text("Amendment 1").wait_for()
        history.get_by_text("Reason: The site visit moved to Friday.").wait_for()

        stored = api_call(platform, None, "GET", f"/tenders/{tender['id']}")
        (amendment,) = stored["amendments"]
        assert amendment["reason"] == "The site visit moved to Friday."
        assert set(amendment["changes"]) == {"bid_deadline"}
        moved = datetime.fromisoformat(stored["bid_deadline"])
        assert moved.replace(second=0, microsecond=0) == later.replace(second=0, microsecond=0)
        # Fields fixed at publication are not offered for editing any more.
        assert page.get_by_label("Ceiling price").count() == 0
        assert page.errors == []

    def test_after_the_deadline_the_tender_is_read_only_with_a_way_to_the_hall(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        tender = published_tender(platform, officer, seconds=2, min_bids=1)
        for _ in range(100):  # the scheduler opens it at the deadline; no bid, so it fails
            if api_call(platform, None, "GET", f"/tenders/{tender['id']}")["status"] == "failed":
                break
            time.sleep(0.2)
        else:
            pytest.fail("the opening did not happen")
        page = open_as(new_page, officer, f"/officer/tenders/{tender['id']}")
        page.get_by_text("it can no longer be changed").wait_for()
        assert page.get_by_role("button", name="Publish amendment").count() == 0
        assert page.get_by_role("button", name="Cancel tender").count() == 0
        assert page.errors == []
        page.get_by_role("link", name="Enter the opening hall").click()
        assert page.url.endswith(f"#/tenders/{tender['id']}/hall")


class TestConsole:
    def test_the_console_lists_the_organizations_tenders_with_drafts(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        mine = draft(platform, officer, title="Street lights, phase 2")
        live = published_tender(platform, officer, title="Water main replacement")
        if "off-other-officer" not in platform.accounts:
            platform.add_account("off-other-officer", "officer", "Off Other Bureau")
        other = draft(platform, "off-other-officer", title="Not ours")
        page = open_as(new_page, officer, "/officer")
        page.get_by_role("heading", name="Tenders of Off County Bureau").wait_for()
        rows = page.locator("table.off-tenders tbody tr")
        row = rows.filter(has_text=mine["reference"])
        assert "Draft" in row.inner_text()
        assert "Taking bids" in rows.filter(has_text=live["reference"]).inner_text()
        assert rows.filter(has_text=other["reference"]).count() == 0
        screenshot(page, "officer-console")
        page.get_by_label("Status").select_option("draft")
        assert rows.filter(has_text=live["reference"]).count() == 0
        page.get_by_role("link", name=mine["reference"]).click()
        page.get_by_role("button", name="Save draft").wait_for()
        assert page.errors == []

    def test_a_bidder_is_told_the_console_is_not_for_them(
        self, new_page, platform: Platform, bidder: str
    ) -> None:
        page = open_as(new_page, bidder, "/officer")
        page.get_by_text(
            "This console is for procurement officers; you are signed in as Bidder."
        ).wait_for()
        assert page.get_by_role("link", name="New tender").count() == 0
        assert page.errors == []

    def test_a_visitor_is_offered_to_sign_in_and_comes_back(
        self, new_page, platform: Platform, officer: str
    ) -> None:
        page = open_as(new_page, None, "/officer")
        page.get_by_role("link", name="Sign in as an officer").click()
        page.get_by_label("Email").fill(platform.accounts[officer])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="New tender").wait_for()
        assert page.url.endswith("#/officer")
        assert page.errors == []

    def test_the_formula_speaks_chinese(self, new_page, platform: Platform, officer: str) -> None:
        page = open_as(new_page, officer, "/officer/new")
        page.get_by_role("button", name="中文").click()
        page.get_by_label("基准价法").check()
        formula = page.locator(".off-formula")
        formula.get_by_text("基准价 B = A × (1 − K)").wait_for()
        formula.get_by_text("下浮系数 K 从 {0.02, 0.03} 中抽取").wait_for()
        page.get_by_label("综合评分法（价格分）").check()
        page.get_by_label("价格分权重").fill("40")
        formula.get_by_text("价格分 = 最低有效报价 P_min ÷ 投标报价 P × 40").wait_for()
        assert page.errors == []

    def test_the_form_fits_a_phone(self, new_page, platform: Platform, officer: str) -> None:
        page = open_as(new_page, officer, "/officer/new", width=375, height=800)
        page.get_by_label("Bidders decrypt online").check()
        page.get_by_label("Decryption window (minutes)").wait_for()
        page.get_by_label("Benchmark price (基准价法)").check()
        page.get_by_role("button", name="Add a field").click()
        page.get_by_role("button", name="Create draft").click()  # empty: problems everywhere
        page.get_by_role("alert").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "officer-phone")
        page.goto("/#/officer")
        page.get_by_role("link", name="New tender").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        tender = published_tender(platform, officer)
        page.goto(f"/#/officer/tenders/{tender['id']}")
        page.get_by_role("button", name="Publish amendment").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.errors == []
