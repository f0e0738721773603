"""Signing in, registering (and following the mailed link) and signing out in the browser,
in both languages."""

import re
from typing import Any

from tests.browser.conftest import PASSWORD, Platform, api_call, credit_code, screenshot

_LINK = re.compile(r"\S+/#/activate/[A-Za-z0-9_-]+")


def outbox(platform: Platform, email: str) -> list[dict[str, Any]]:
    """The messages to an address, as the platform's administrator reads them (development:
    the platform sends none, it writes them to its log and keeps them)."""
    if "outbox-reader" not in platform.accounts:
        platform.add_account("outbox-reader", "admin")
    messages: list[dict[str, Any]] = api_call(
        platform, "outbox-reader", "GET", "/outbox", params={"to": email}
    )
    return messages


def activation_link(platform: Platform, email: str) -> str:
    """The link of the newest activation message to an address."""
    message = next(m for m in outbox(platform, email) if m["kind"] == "activation")
    found = _LINK.search(message["body"])
    assert found is not None, message["body"]
    return found.group(0)


class TestAccounts:
    def test_a_bidder_registers_follows_the_mailed_link_and_signs_out(
        self, new_page, platform: Platform
    ) -> None:
        page = new_page()
        page.goto("/#/register")
        page.get_by_label("Organization").fill("Fujian Bridge Works")
        page.get_by_label("Unified social credit code").fill(credit_code(424242))
        page.get_by_label("Your name").fill("Chen Jing")
        page.get_by_label("Email").fill("chen.jing@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        screenshot(page, "register")
        page.get_by_role("button", name="Register as a bidder").click()
        page.get_by_role("heading", name="Check your mailbox").wait_for()
        assert "chen.jing@example.com" in page.get_by_role("status").inner_text()
        screenshot(page, "register-sent")
        # Nothing is signed in before the link is followed.
        assert "bidding_session" not in {c["name"] for c in page.context.cookies()}

        link = activation_link(platform, "chen.jing@example.com")
        assert link.startswith(f"{platform.url}/#/activate/")
        page.goto(link)
        page.get_by_role("heading", name="Activate your bidder account").wait_for()
        screenshot(page, "activate")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Activate and sign in").click()
        navigation = page.get_by_role("navigation", name="Main navigation")
        navigation.get_by_text("Chen Jing · Bidder").wait_for()
        names = {cookie["name"]: cookie for cookie in page.context.cookies()}
        assert names["bidding_session"]["httpOnly"] is True
        page.get_by_role("button", name="Sign out").click()
        navigation.get_by_role("link", name="Sign in").wait_for()
        names = {cookie["name"] for cookie in page.context.cookies()}
        assert "bidding_session" not in names

        # The link is spent: following it again says so, in the reader's language.
        again = new_page(language="zh-CN")
        again.goto(link)
        again.get_by_role("heading", name="激活投标人账号").wait_for()
        again.get_by_label("密码").fill(PASSWORD)
        again.get_by_role("button", name="激活并登录").click()
        again.get_by_role("alert").get_by_text("该激活链接无效、已使用或已过期").wait_for()
        assert page.errors == []

    def test_a_look_alike_of_a_registered_organization_gets_the_same_page_and_no_account(
        self, new_page, platform: Platform
    ) -> None:
        platform.add_account("lookalike-original", "bidder", "Minjiang Harbour Works Co., Ltd")
        page = new_page()
        page.goto("/#/register")
        # A Cyrillic о and a zero for the letter O: the same name to anyone in the hall.
        page.get_by_label("Organization").fill("Minjiang Harb\u043eur W0rks Co Ltd")
        page.get_by_label("Unified social credit code").fill(credit_code(515151))
        page.get_by_label("Your name").fill("Impostor")
        page.get_by_label("Email").fill("impostor@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Register as a bidder").click()
        page.get_by_role("heading", name="Check your mailbox").wait_for()
        (message,) = outbox(platform, "impostor@example.com")
        assert message["kind"] == "organization_lookalike"
        assert "/#/activate/" not in message["body"]
        assert page.errors == []

    def test_a_wrong_password_is_said_plainly_and_nothing_is_signed_in(
        self, new_page, platform: Platform
    ) -> None:
        platform.add_account("wrong-password", "bidder", "Wrong Password Ltd")
        page = new_page()
        page.goto("/#/sign-in")
        page.get_by_label("Email").fill(platform.accounts["wrong-password"])
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert re.search("email or password", alert.inner_text(), re.IGNORECASE)
        assert "bidding_session" not in {c["name"] for c in page.context.cookies()}

    def test_the_sign_in_page_speaks_chinese_and_switches_to_english(
        self, new_page, platform: Platform
    ) -> None:
        page = new_page(language="zh-CN")
        page.goto("/#/sign-in")
        page.get_by_role("heading", name="登录").wait_for()
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        screenshot(page, "sign-in-zh")
        page.get_by_role("button", name="English").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        assert page.evaluate("document.documentElement.lang") == "en"
