"""The bidder portal keeps the receipt each submission is given and, in the decryption window,
computes the bid's file key only from the header that receipt pins: a platform serving the
header of another bid sealed to the same key is refused, in Chinese and in English, and
nothing is sent; the true header reveals the bid."""

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from bidding import client
from bidding.crypto import age
from tests.browser.conftest import (
    Platform,
    api_call,
    api_token,
    bid_posts,
    events_of,
    published_tender,
    submitted_bid,
    wait_for_event,
)

OFFICER = "pin-officer"
BIDDER = "pin-bidder"


def header_of(sealed: bytes) -> bytes:
    """The age header as the file starts, found by hand: through the newline of the MAC line."""
    return sealed[: sealed.index(b"\n", sealed.index(b"\n--- ") + 1) + 1]


def serve_header(page: Any, tender: dict[str, Any], header: str) -> None:
    """A compromised platform, as an injected fault: the real answer to the bid's header
    request, with another bid's header in it."""

    def swap(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json=answer.json() | {"header": header})

    page.route(f"**/api/v1/tenders/{tender['id']}/bids/mine/header", swap)


def reveal_posts(page: Any) -> list[Any]:
    """The file keys the page sends, as they are sent."""
    posts: list[Any] = []
    page.on(
        "request",
        lambda request: posts.append(request) if "/opening/reveal" in request.url else None,
    )
    return posts


class TestRevealChecksTheHeader:
    def test_a_swapped_header_is_refused_in_both_languages_and_the_true_one_is_revealed(
        self, new_page, platform: Platform, tmp_path: Path
    ) -> None:
        if OFFICER not in platform.accounts:
            platform.add_account(OFFICER, "officer", "Pin Test Transport Bureau")
            platform.add_account(BIDDER, "bidder", "Pin Test Engineering Group Co")
        identity = age.Identity.generate()
        identity_path = tmp_path / "org-age-identity.txt"
        identity_path.write_text(f"{identity}\n")
        with client.open_client(platform.url) as http:
            client.check_key(
                http, token=api_token(platform, BIDDER), identity=identity, register=True
            )
        # The organization's bid in a tender still taking bids, sealed to the same key.
        later = published_tender(platform, OFFICER, opening_mode="bidder", min_bids=1)
        submitted_bid(platform, BIDDER, later, {"price": "4100000.00"}, tmp_path)
        later_header = api_call(platform, BIDDER, "GET", f"/tenders/{later['id']}/bids/mine/header")
        tender = published_tender(platform, OFFICER, seconds=30, opening_mode="bidder",
                                  decryption_window_minutes=5, min_bids=1)  # fmt: skip

        page = new_page(BIDDER)
        uploads = bid_posts(page)
        page.goto(f"/#/tenders/{tender['id']}/bid")
        page.get_by_label("Price").fill("3456789.00")
        page.get_by_role("button", name="Seal and submit").click()
        page.get_by_text("Receipt verified").wait_for()
        # The receipt is kept in this browser and can be downloaded from the bid's card; it
        # pins the header the page sealed and sent.
        with page.expect_download() as saved:
            page.get_by_role("button", name="Download the kept receipt").click()
        receipt_path = tmp_path / saved.value.suggested_filename
        saved.value.save_as(receipt_path)
        assert receipt_path.name == f"receipt-{tender['id']}-v1.json"
        kept = json.loads(receipt_path.read_text())
        sealed = uploads[-1].post_data_buffer
        assert kept["body"]["header_sha256"] == hashlib.sha256(header_of(sealed)).hexdigest()
        mine = api_call(platform, BIDDER, "GET", f"/tenders/{tender['id']}/bids/mine")
        assert mine["receipts"] == [kept]

        wait_for_event(platform, BIDDER, tender["id"], "decryption.window_opened")
        served = hashlib.sha256(base64.b64decode(later_header["header"])).hexdigest()
        # The header of the bid in the other tender: that bid's file key would open it now.
        serve_header(page, tender, later_header["header"])
        sent = reveal_posts(page)
        reveal = page.get_by_role("region", name="Reveal your bid")
        reveal.get_by_label("Identity file").set_input_files(identity_path, timeout=60_000)
        reveal.get_by_text(
            "checked against the receipt of version 1 kept in this browser"
        ).wait_for()
        reveal.get_by_role("button", name="Reveal my bid").click()
        reveal.get_by_text(
            f"The bid was not revealed: the platform sent a bid header (SHA-256 {served[:16]}…) "
            f"that is not the one your receipt of version 1 pins "
            f"({kept['body']['header_sha256'][:16]}…), so it was refused. The page computed no "
            "file key and sent nothing."
        ).wait_for()

        # Another browser kept no receipt: it asks for the receipt file, then refuses in Chinese.
        other = new_page(BIDDER, language="zh-CN")
        serve_header(other, tender, later_header["header"])
        sent_too = reveal_posts(other)
        other.goto(f"/#/tenders/{tender['id']}/bid")
        zh = other.get_by_role("region", name="在线解密")
        zh.get_by_text("本浏览器没有保存这份投标的回执").wait_for()
        zh.get_by_label("身份文件").set_input_files(identity_path)
        zh.get_by_role("button", name="解密我的投标").click()
        zh.get_by_text("解密未成功：请先选择投标回执文件。").wait_for()
        zh.get_by_label("投标回执文件").set_input_files(receipt_path)
        zh.get_by_role("button", name="解密我的投标").click()
        zh.get_by_text(
            f"解密未成功：平台发来的投标文件头（SHA-256 {served[:16]}…）与您第 1 版投标回执记载的"
            f"文件头（{kept['body']['header_sha256'][:16]}…）不一致，已拒绝。本页没有计算文件密钥，"
            "也没有向平台发送任何内容。"
        ).wait_for()
        assert sent == [] and sent_too == []
        assert [e for e in events_of(platform, BIDDER, tender["id"])
                if e["type"] == "bid.decrypted"] == []  # fmt: skip

        # The platform serves the true header again: the bid is revealed.
        page.unroute(f"**/api/v1/tenders/{tender['id']}/bids/mine/header")
        reveal.get_by_role("button", name="Reveal my bid").click()
        reveal.get_by_text("Your bid is decrypted: price CNY 3,456,789.00").wait_for()
        assert len(sent) == 1
        decrypted = [e for e in events_of(platform, BIDDER, tender["id"])
                     if e["type"] == "bid.decrypted"]  # fmt: skip
        assert [(e["data"]["price"], e["data"]["via"]) for e in decrypted] == [
            ("3456789.00", "bidder")
        ]
        assert page.errors == [] and other.errors == []
