"""Signing in, registering and signing out in the browser, in both languages."""

import re

from tests.browser.conftest import PASSWORD, Platform, credit_code, screenshot


class TestAccounts:
    def test_a_bidder_registers_is_signed_in_and_signs_out(
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
        navigation = page.get_by_role("navigation", name="Main navigation")
        navigation.get_by_text("Chen Jing · Bidder").wait_for()
        names = {cookie["name"]: cookie for cookie in page.context.cookies()}
        assert names["bidding_session"]["httpOnly"] is True
        page.get_by_role("button", name="Sign out").click()
        navigation.get_by_role("link", name="Sign in").wait_for()
        names = {cookie["name"] for cookie in page.context.cookies()}
        assert "bidding_session" not in names
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
