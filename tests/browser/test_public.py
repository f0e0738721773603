"""The public pages in a browser: the list with search and filter, a tender's detail with its
documents and amendments, and a countdown that follows the server's clock."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

from tests.browser.conftest import Platform, api_call, published_tender, screenshot

OFFICER = "pub-officer"


def officer(platform: Platform) -> str:
    if OFFICER not in platform.accounts:
        platform.add_account(OFFICER, "officer", "Pub Transport Bureau")
    return OFFICER


class TestTenderList:
    def test_search_and_status_filter_narrow_the_list(self, new_page, platform: Platform) -> None:
        name = officer(platform)
        marker = "Lighthouse" + hashlib.sha256(platform.url.encode()).hexdigest()[:6]
        found = published_tender(platform, name, title=f"{marker} repainting")
        published_tender(platform, name, title="Harbour dredging")
        page = new_page()
        page.goto("/")
        page.get_by_label("Search").fill(marker)
        page.get_by_role("button", name="Search").click()
        rows = page.locator("table.tenders tbody tr")
        rows.first.wait_for()
        page.wait_for_function("location.hash.includes('q=')")
        assert rows.count() == 1
        assert found["reference"] in rows.first.inner_text()
        # A LIKE wildcard is a character like any other.
        page.get_by_label("Search").fill("%")
        page.get_by_role("button", name="Search").click()
        page.get_by_text("No tender matches").wait_for()
        page.get_by_label("Search").fill("")
        page.get_by_label("Status").select_option("cancelled")
        page.wait_for_function("location.hash.includes('status=cancelled')")
        page.get_by_text("No tender matches").wait_for()
        screenshot(page, "tender-list-filtered")
        assert page.errors == []


class TestTenderDetail:
    def test_documents_amendments_and_a_countdown_on_the_servers_clock(
        self, new_page, platform: Platform
    ) -> None:
        name = officer(platform)
        tender = published_tender(platform, name, seconds=2 * 3600)
        content = b"%PDF-1.7 conditions of the tender\n" * 100
        api_call(
            platform,
            name,
            "POST",
            f"/tenders/{tender['id']}/documents",
            params={"name": "招标文件.pdf", "reason": "the full conditions"},
            content=content,
            headers={"Content-Type": "application/pdf"},
        )
        later = datetime.fromisoformat(tender["bid_deadline"]) + timedelta(hours=1)
        api_call(
            platform,
            name,
            "PATCH",
            f"/tenders/{tender['id']}",
            json={"bid_deadline": later.isoformat(), "reason": "more time for site visits"},
        )
        page = new_page()
        # The viewer's clock is a day fast: the countdown must not believe it.
        page.clock.install(time=datetime.now(UTC) + timedelta(days=1))
        page.goto(f"/#/tenders/{tender['id']}")
        page.get_by_role("heading", name=tender["title"]).wait_for()
        countdown = page.locator("output.countdown")
        hours, minutes, _ = map(int, countdown.inner_text().split(":"))
        assert (hours, minutes) in ((2, 59), (3, 0))
        page.get_by_text("Document added: 招标文件.pdf").wait_for()
        page.get_by_text("more time for site visits").wait_for()
        screenshot(page, "tender-detail")
        with page.expect_download() as downloading:
            page.get_by_role("link", name="招标文件.pdf").click()
        download = downloading.value
        assert download.suggested_filename == "招标文件.pdf"
        with open(download.path(), "rb") as saved:
            assert saved.read() == content
        assert page.errors == []

    def test_the_detail_is_usable_at_phone_width(self, new_page, platform: Platform) -> None:
        tender = published_tender(platform, officer(platform))
        page = new_page(width=375, height=800, language="zh-CN")
        page.goto(f"/#/tenders/{tender['id']}")
        page.get_by_role("heading", name=tender["title"]).wait_for()
        assert re.search(r"\d\d:\d\d:\d\d", page.locator("output.countdown").inner_text())
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        screenshot(page, "tender-detail-phone")
        assert page.errors == []
