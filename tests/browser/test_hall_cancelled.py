"""The hall of a cancelled tender, on a platform of its own.

A cancelled tender stays listed for good; on the platform the other browser modules share it
would appear in their lists (the public list filtered by status expects none), so this module
serves its own.
"""

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import Platform, api_call, fresh_platform, published_tender

expect = pytest.importorskip("playwright.sync_api").expect

OFFICER = "cancel-officer"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of this module's own."""
    with fresh_platform(tmp_path_factory, "browser-cancelled") as own:
        yield own


def test_nobody_is_offered_a_check_in_to_a_cancelled_tender(new_page, platform) -> None:
    platform.add_account(OFFICER, "officer", "Cancelled Works Bureau")
    tender = published_tender(platform, OFFICER, title="Bridge railings, withdrawn")
    api_call(
        platform,
        OFFICER,
        "POST",
        f"/tenders/{tender['id']}/cancel",
        json={"reason": "The budget was withdrawn."},
    )
    officer = new_page(OFFICER)
    officer.goto(f"/#/tenders/{tender['id']}/hall")
    officer.get_by_role("heading", name=re.compile("Opening hall")).wait_for()
    expect(officer.locator(".connection")).to_have_text(re.compile("Connected, live"))
    # The API would refuse anyone (check_in_closed): the button is not offered.
    expect(officer.get_by_role("button", name="Check in")).to_be_disabled()
    expect(officer.get_by_text("The tender was cancelled: nobody checks in.")).to_be_visible()
    assert officer.errors == []
