"""The opening hall in a real browser: the opening as it happens over the live room, the
participants' actions, a dropped connection that resumes without gaps, and who may watch."""

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bidding import client
from bidding.crypto import age
from tests.browser.conftest import (
    Platform,
    api_call,
    api_token,
    published_tender,
    screenshot,
    submitted_bid,
)

expect = pytest.importorskip("playwright.sync_api").expect

OFFICER = "hall-officer"
OFFICER_ORG = "Hall County Transport Bureau"
# Names of different lengths: the test credit code is derived from the name's characters.
BIDDERS = {
    "hall-bidder-a": "Hall Minjiang Roads",
    "hall-bidder-b": "Hall Fuzhou Paving Group",
    "hall-bidder-c": "Hall Xiamen Asphalt and Stone Works",
    "hall-bidder-d": "Hall Putian Surfacing Cooperative Limited",
}
OUTSIDER = "hall-outsider"
OUTSIDER_ORG = "Hall Outsider Consulting Company of Ningde"
BENCHMARK = {"method": "benchmark", "coefficient_choices": ["0.02", "0.05"]}
LONG = 60_000

# Each bidder organization's own age identity, for tenders its bidders decrypt online.
_identities: dict[str, age.Identity] = {}


def accounts(platform: Platform) -> None:
    """The hall's officer and bidders, made once per platform (it is shared by the modules)."""
    if OFFICER not in platform.accounts:
        platform.add_account(OFFICER, "officer", OFFICER_ORG)
    for name, org in BIDDERS.items():
        if name not in platform.accounts:
            platform.add_account(name, "bidder", org)
    if OUTSIDER not in platform.accounts:
        platform.add_account(OUTSIDER, "bidder", OUTSIDER_ORG)


def own_key(platform: Platform, bidder: str) -> None:
    """Register and verify the bidder organization's key, as `bidding check-key --register`."""
    if bidder in _identities:
        return
    identity = age.Identity.generate()
    with client.open_client(platform.url) as http:
        client.check_key(http, token=api_token(platform, bidder), identity=identity, register=True)
    _identities[bidder] = identity


def reveal(platform: Platform, bidder: str, tender: dict[str, Any], receipt: Any) -> None:
    """The bidder reveals its bid's file key in the decryption window, as `bidding reveal`,
    with the receipt its submission was given."""
    with client.open_client(platform.url) as http:
        client.reveal(
            http,
            token=api_token(platform, bidder),
            tender_id=tender["id"],
            identities=[_identities[bidder]],
            receipt=receipt,
        )


def hall(page: Any, tender: dict[str, Any]) -> None:
    page.goto(f"/#/tenders/{tender['id']}/hall")
    page.get_by_role("heading", name=re.compile("Opening hall")).wait_for()


def seqs(page: Any) -> list[int]:
    """The seq numbers the page's timeline shows, in the page's order (newest first)."""
    texts = page.locator(".timeline li .seq").all_inner_texts()
    return [int(text.lstrip("#")) for text in texts]


def all_events(platform: Platform, account: str | None, tender: dict[str, Any]) -> list[Any]:
    body = api_call(platform, account, "GET", f"/tenders/{tender['id']}/opening/events")
    assert body["has_more"] is False
    return body["events"]  # type: ignore[no-any-return]


def timeline_matches(platform: Platform, account: str | None, tender: dict[str, Any], page: Any):
    """The page holds every event once, 1..N, newest first, N the API's last seq."""
    events = all_events(platform, account, tender)
    last = events[-1]["seq"]
    expect(page.locator(f'.timeline li[data-seq="{last}"]')).to_have_count(1)
    shown = seqs(page)
    assert shown == list(range(last, 0, -1)), shown
    assert [e["seq"] for e in events] == list(range(1, last + 1))


def no_page_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("document.documentElement.clientWidth"), width


@pytest.fixture(scope="module")
def public_opened(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A public benchmark tender opened by the platform, three bids: watched by anyone."""
    accounts(platform)
    tender = published_tender(
        platform,
        OFFICER,
        seconds=8,
        title="Public lighting, phase 2",
        scoring=BENCHMARK,
        min_bids=3,
        public_opening=True,
        floor_price="3000000.00",
    )
    tmp = tmp_path_factory.mktemp("hall-public")
    for bidder, price in zip(BIDDERS, ["4480000.00", "4615000.50", "4790000.00"], strict=False):
        submitted_bid(platform, bidder, tender, {"price": price}, tmp)
    return tender


class TestOpeningHall:
    def test_a_benchmark_opening_seen_live_by_the_officer_and_a_bidder(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        bidders = list(BIDDERS)[:3]
        for bidder in bidders:
            own_key(platform, bidder)
        tender = published_tender(
            platform,
            OFFICER,
            seconds=18,
            title="County road resurfacing, lot 7",
            scoring=BENCHMARK,
            min_bids=3,
            opening_mode="bidder",
            decryption_window_minutes=10,
            floor_price="3000000.00",
        )
        prices = {
            bidders[0]: "4520000.00",
            bidders[1]: "4610000.00",
            bidders[2]: "4775000.50",
        }
        receipts = {
            bidder: submitted_bid(platform, bidder, tender, {"price": price}, tmp_path)
            for bidder, price in prices.items()
        }
        officer = new_page(OFFICER)
        bidder = new_page(bidders[0])
        hall(officer, tender)
        hall(bidder, tender)

        # Before the deadline: the countdown on the server's clock, and the officer checks in.
        for page in (officer, bidder):
            expect(page.get_by_text("Until the bid deadline")).to_be_visible()
            expect(page.locator(".countdown")).to_have_text(re.compile(r"^00:00:\d\d$"))
            expect(page.locator(".connection")).to_have_text(re.compile("Connected, live"))
        check_in = bidder.get_by_role("button", name="Check in")
        expect(check_in).to_be_disabled()
        expect(bidder.get_by_text("Bidders check in from the bid deadline on")).to_be_visible()
        officer.get_by_role("button", name="Check in").click()
        expect(officer.get_by_text("You are checked in")).to_be_visible()
        attendance = bidder.locator(".attendance")
        expect(attendance).to_contain_text(f"hall-officer ({OFFICER_ORG}, Procurement officer)")
        screenshot(officer, "hall-before")

        # The deadline passes: the bids are listed and the decryption window opens.
        rows = bidder.locator("table.bids tbody tr")
        expect(rows).to_have_count(3, timeout=LONG)
        expect(bidder.get_by_role("link", name="Reveal your bid")).to_have_attribute(
            "href", f"#/tenders/{tender['id']}/bid"
        )
        expect(officer.get_by_role("link", name="Reveal your bid")).to_have_count(0)
        expect(officer.locator(".window")).to_contain_text("Bidders are decrypting their bids")
        expect(check_in).to_be_enabled()
        check_in.click()
        expect(officer.locator(".attendance")).to_contain_text(
            f"hall-bidder-a ({BIDDERS['hall-bidder-a']}, Bidder)"
        )

        # Each bidder reveals: the table fills in, then the draw, the scores and the record.
        for name in bidders:
            reveal(platform, name, tender, receipts[name])
        for page in (officer, bidder):
            for name, price in prices.items():
                row = page.locator("table.bids tbody tr", has_text=BIDDERS[name])
                expect(row.locator("td.price")).to_have_text(
                    re.compile(re.escape(f"{int(float(price)):,}")), timeout=LONG
                )
                expect(row).to_contain_text("Decrypted (by the bidder)")
            expect(page.locator(".coefficient")).to_contain_text(
                "Commitment verified", timeout=LONG
            )
            expect(page.locator(".coefficient")).to_contain_text("Draw verified")
            expect(page.get_by_role("img", name=re.compile("Valid prices"))).to_be_visible()
            expect(page.locator("table.ranking caption")).to_have_text("Ranking", timeout=LONG)
            expect(page.get_by_role("heading", name="Opening record")).to_be_visible(timeout=LONG)

        results = api_call(platform, OFFICER, "GET", f"/tenders/{tender['id']}/results")
        assert results["status"] == "opened"
        ranking_rows = officer.locator("table.ranking tbody tr")
        expect(ranking_rows).to_have_count(len(results["ranking"]))
        for row, place in zip(ranking_rows.all(), results["ranking"], strict=True):
            cells = row.locator("th, td").all_inner_texts()
            assert cells[0] == str(place["rank"])
            assert cells[1] == place["bidder_name"]
            assert cells[2].replace(",", "").endswith(place["price"])
            assert cells[3] == place["score"]
        chart = officer.locator("svg.chart")
        expect(chart.locator("circle.dot")).to_have_count(3)
        benchmark = results["working"]["benchmark_price"]
        expect(chart.locator(".reference.benchmark")).to_have_count(1)
        officer.locator("summary", has_text="The chart's data").click()
        expect(officer.locator("table.chart-data")).to_contain_text(f"{float(benchmark):,.2f}")
        drawn = results["coefficient"]
        expect(officer.locator(".coefficient .k")).to_have_text(drawn["coefficient"])
        expect(officer.locator(".coefficient")).to_contain_text(drawn["seed"])

        # The bidder confirms the record; the officer sees it as it happens.
        record = api_call(platform, OFFICER, "GET", f"/tenders/{tender['id']}/opening/record")
        expect(officer.locator(".record-digest")).to_have_text(re.compile("^[0-9a-f]{64}$"))
        expect(officer.get_by_role("button", name="Confirm the record")).to_have_count(0)
        bidder.get_by_role("button", name="Confirm the record").click()
        expect(bidder.get_by_text("You confirmed the record")).to_be_visible()
        expect(officer.locator(".confirmations")).to_contain_text(BIDDERS["hall-bidder-a"])
        assert record["signature"] in officer.locator(".record").inner_text()
        with officer.expect_download() as downloaded:
            officer.get_by_role("button", name="Download the signed record").click()
        assert downloaded.value.suggested_filename == f"opening-record-{tender['reference']}.json"

        for page, account in ((officer, OFFICER), (bidder, bidders[0])):
            expect(page.locator(".timeline li").first).to_contain_text("confirmed the record")
            timeline_matches(platform, account, tender, page)
        expect(officer.locator(".status.opened")).to_have_text("Opened")
        officer.locator(".results").scroll_into_view_if_needed()
        screenshot(officer, "hall-opened")
        assert officer.errors == []
        assert bidder.errors == []

    def test_a_dropped_connection_resumes_after_the_last_seq_and_a_gap_is_filled(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        own_key(platform, "hall-bidder-c")
        tender = published_tender(
            platform, OFFICER, seconds=5, opening_mode="bidder", decryption_window_minutes=5
        )
        submitted_bid(platform, "hall-bidder-c", tender, {"price": "4100000.00"}, tmp_path)
        page = new_page(OFFICER)
        opened: list[str] = []
        connections: list[tuple[Any, Any]] = []
        state = {"hold": False, "swallow": False}
        swallowed: list[int] = []

        def route(ws: Any) -> None:
            opened.append(ws.url)
            if state["hold"]:
                ws.close(code=1013, reason="try again later")
                return
            server = ws.connect_to_server()

            def from_server(message: str | bytes) -> None:
                seq = json.loads(message).get("seq")
                if state["swallow"] and seq is not None:
                    state["swallow"] = False
                    swallowed.append(seq)
                    return
                ws.send(message)

            server.on_message(from_server)
            connections.append((ws, server))

        page.route_web_socket(re.compile(r"/opening/live"), route)
        hall(page, tender)
        expect(page.locator(".timeline li[data-type='decryption.window_opened']")).to_have_count(
            1, timeout=LONG
        )
        last = max(seqs(page))
        assert parse_qs(urlsplit(opened[-1]).query)["after"] == ["0"]

        # The connection drops; events happen while it is down.
        state["hold"] = True
        # Both ends: the connection to the server goes (a browser may close with 4000, not
        # 1006), and the page's socket sees an abnormal closure, as when a network drops.
        browser_end, server_end = connections[-1]
        server_end.close(code=4000, reason="dropped")
        browser_end.close(code=1006, reason="")
        expect(page.get_by_role("alert")).to_have_text("Connection lost — reconnecting…")
        api_call(platform, OFFICER, "POST", f"/tenders/{tender['id']}/opening/check-in")
        api_call(platform, "hall-bidder-c", "POST", f"/tenders/{tender['id']}/opening/check-in")
        state["hold"] = False

        attendance = page.locator(".attendance")
        expect(attendance).to_contain_text("hall-bidder-c", timeout=LONG)
        expect(attendance).to_contain_text("hall-officer")
        expect(page.get_by_role("status").filter(has_text="Reconnected")).to_have_text(
            f"Reconnected: resumed after event #{last}"
        )
        resumed = [parse_qs(urlsplit(url).query)["after"] for url in opened[1:]]
        assert resumed and all(after == [str(last)] for after in resumed), resumed
        timeline_matches(platform, OFFICER, tender, page)

        # An event lost on the way: the next one shows the gap, filled from the REST list.
        state["swallow"] = True
        path = f"/tenders/{tender['id']}/opening"
        with page.expect_request(re.compile(r"/opening/events\?after=\d+"), timeout=LONG) as asked:
            raised = api_call(
                platform, "hall-bidder-c", "POST", f"{path}/objections", json={"text": "Too fast."}
            )
            objection_id = raised["data"]["objection_id"]
            api_call(
                platform,
                OFFICER,
                "POST",
                f"{path}/objections/{objection_id}/answer",
                json={"text": "Noted."},
            )
        assert swallowed == [raised["seq"]]
        assert f"after={raised['seq'] - 1}" in asked.value.url
        expect(page.locator(".objections .answer-text")).to_have_text("Noted.")
        expect(page.locator(".objections .said").first).to_have_text("Too fast.")
        timeline_matches(platform, OFFICER, tender, page)
        assert page.errors == []

    def test_the_decryption_window_shows_no_stray_text(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        own_key(platform, "hall-bidder-d")
        tender = published_tender(
            platform, OFFICER, seconds=5, opening_mode="bidder", decryption_window_minutes=5
        )
        submitted_bid(platform, "hall-bidder-d", tender, {"price": "4300000.00"}, tmp_path)
        officer = new_page(OFFICER)
        hall(officer, tender)
        window = officer.locator(".window")
        expect(window.locator(".window-text")).to_contain_text(
            "Bidders are decrypting their bids", timeout=LONG
        )
        # The officer has no bid to reveal: the window's line and its hint, nothing more.
        expect(officer.get_by_role("link", name="Reveal your bid")).to_have_count(0)
        assert "null" not in window.inner_text()
        children = window.evaluate("node => [...node.childNodes].map(child => child.nodeName)")
        assert children == ["P", "P"]
        assert officer.errors == []

    def test_an_objection_is_raised_by_a_bidder_and_answered_by_the_officer(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        own_key(platform, "hall-bidder-b")
        tender = published_tender(
            platform, OFFICER, seconds=5, opening_mode="bidder", decryption_window_minutes=5
        )
        submitted_bid(platform, "hall-bidder-b", tender, {"price": "4200000.00"}, tmp_path)
        officer = new_page(OFFICER)
        bidder = new_page("hall-bidder-b")
        hall(officer, tender)
        hall(bidder, tender)
        objection = bidder.get_by_label("Your objection")
        expect(objection).to_be_visible(timeout=LONG)  # once the bids are listed
        objection.fill("The decryption window was announced 2 minutes late.\nPlease extend it.")
        bidder.get_by_role("button", name="Raise the objection").click()
        expect(bidder.get_by_text("Your objection was raised")).to_be_visible()

        raised = officer.locator(".objections li", has_text="announced 2 minutes late")
        expect(raised).to_contain_text(f"Objection by {BIDDERS['hall-bidder-b']}")
        expect(raised).to_contain_text("Awaiting the officer's answer")
        expect(bidder.get_by_label("Your answer")).to_have_count(0)
        raised.get_by_label("Your answer").fill("The window runs 5 minutes from its opening.")
        raised.get_by_role("button", name="Send the answer").click()

        answered = bidder.locator(".objections li", has_text="announced 2 minutes late")
        expect(answered.locator(".answer-text")).to_have_text(
            "The window runs 5 minutes from its opening."
        )
        expect(answered).to_contain_text("Answer by hall-officer")
        expect(raised.get_by_label("Your answer")).to_have_count(0)
        types = [event["type"] for event in all_events(platform, OFFICER, tender)]
        assert types[-2:] == ["objection.raised", "objection.answered"]
        for page, account in ((officer, OFFICER), (bidder, "hall-bidder-b")):
            timeline_matches(platform, account, tender, page)
        assert officer.errors == []
        assert bidder.errors == []

    def test_a_public_opening_is_watched_anonymously_and_read_only(
        self, new_page, platform: Platform, public_opened: dict[str, Any]
    ) -> None:
        page = new_page()
        hall(page, public_opened)
        expect(page.get_by_text("You are watching a public opening as a guest")).to_be_visible()
        expect(page.locator("table.ranking tbody tr")).to_have_count(3, timeout=LONG)
        expect(page.locator(".coefficient")).to_contain_text("Commitment verified")
        expect(page.locator(".timeline li").first).to_contain_text("The opening is complete")
        for name in ("Check in", "Raise the objection", "Confirm the record", "Send the answer"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_role("textbox")).to_have_count(0)
        timeline_matches(platform, None, public_opened, page)
        assert page.errors == []

    def test_a_closed_opening_asks_strangers_to_sign_in_or_turns_them_away(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        tender = published_tender(platform, OFFICER, seconds=3600)
        stranger = new_page()
        hall(stranger, tender)
        refused = stranger.locator(".stopped").get_by_role("alert")
        expect(refused).to_contain_text("open to its participants only: sign in to watch it")
        expect(refused.get_by_role("link", name="Sign in")).to_have_attribute(
            "href", f"#/sign-in?next=%2Ftenders%2F{tender['id']}%2Fhall"
        )
        expect(stranger.locator(".connection")).to_have_text("Connection closed")
        outsider = new_page(OUTSIDER)
        hall(outsider, tender)
        expect(outsider.locator(".stopped")).to_contain_text(
            "Only the tender's officers, supervisors and bidders may watch this opening."
        )
        expect(outsider.get_by_role("button", name="Check in")).to_have_count(0)
        assert stranger.errors == []
        assert outsider.errors == []

    def test_too_few_bids_fail_the_opening_in_plain_words(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        accounts(platform)
        tender = published_tender(platform, OFFICER, seconds=5, min_bids=3)
        submitted_bid(platform, "hall-bidder-d", tender, {"price": "4300000.00"}, tmp_path)
        officer = new_page(OFFICER)
        hall(officer, tender)
        failed = officer.locator(".failed-opening")
        expect(failed).to_contain_text("Failed opening (流标)", timeout=LONG)
        expect(failed).to_contain_text("Bids handed in: 1; at least 3 are needed.")
        expect(officer.locator(".status.failed")).to_have_text("Failed (流标)")
        expect(officer.get_by_role("heading", name="Opening record")).to_be_visible()
        expect(officer.locator("table.ranking")).to_have_count(0)
        expect(officer.get_by_role("button", name="Check in")).to_be_disabled()
        timeline_matches(platform, OFFICER, tender, officer)
        assert officer.errors == []

    def test_on_a_phone_in_both_languages_the_page_does_not_scroll_sideways(
        self, new_page, platform: Platform, public_opened: dict[str, Any]
    ) -> None:
        page = new_page("hall-bidder-b", width=375, height=812)
        hall(page, public_opened)
        expect(page.locator("table.ranking caption")).to_have_text("Ranking", timeout=LONG)
        page.get_by_role("button", name="Confirm the record").wait_for()
        no_page_scroll(page)
        bids = page.locator(".scroll", has=page.locator("table.bids"))
        assert bids.evaluate("node => node.scrollWidth > node.clientWidth")  # scrolls inside
        page.get_by_role("button", name="中文").click()
        expect(page.locator("table.ranking caption")).to_have_text("排名", timeout=LONG)
        expect(page.locator(".coefficient")).to_contain_text("承诺已核验")
        page.get_by_role("button", name="确认开标记录").wait_for()
        no_page_scroll(page)
        screenshot(page, "hall-phone")
        assert page.errors == []
