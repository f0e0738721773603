"""The pages in a real browser: Debian's Chromium driven by Playwright, against `bidding serve`.

The platform runs as its own process on a fresh SQLite data folder with the scheduler on, so
an opening happens by itself at the deadline, as in production. Each test user gets its own
browser context (cookies, storage), like a person on their own machine.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bidding import client
from bidding.auth import uscc
from tests.support.processes import bidding, platform_env, platform_serving

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("BIDDING_CHROMIUM", "/usr/bin/chromium")
# What Chromium needs to run headless in a container without a desktop session.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"
# `make screenshots` keeps the pictures for the README; a plain test run leaves the tree as is.
SCREENSHOTS = os.environ.get("BIDDING_SCREENSHOTS")


def credit_code(serial: int) -> str:
    """A valid unified social credit code, different for each serial."""
    first17 = f"91350100{serial:09d}"
    return first17 + uscc.check_character(first17)


@dataclass
class Platform:
    """A running platform: its address, data folder, and the accounts made for the tests."""

    url: str
    data_dir: Path
    env: dict[str, str]
    accounts: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _serial: int = 0

    def add_account(self, name: str, role: str, org: str | None = None) -> str:
        """Create a user with the CLI (officers, supervisors and bidders belong to `org`)."""
        self._serial += 1
        email = f"{name}@example.com"
        command = [sys.executable, "-m", "bidding", "users", "create", "--email", email]
        command += ["--password-stdin", "--role", role, "--name", name]
        if org is not None:
            command += ["--org-name", org, "--org-code", credit_code(sum(map(ord, org)))]
        result = subprocess.run(
            command, input=f"{PASSWORD}\n", env=self.env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        self.accounts[name] = email
        return email


@contextmanager
def fresh_platform(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Platform]:
    """`bidding serve` on a fresh data folder; short bidding periods are allowed for tests."""
    data_dir = tmp_path_factory.mktemp(name) / "var"
    upgrade = bidding("db", "upgrade", env=platform_env(data_dir))
    assert upgrade.returncode == 0, upgrade.stderr
    with platform_serving(data_dir) as served:
        yield Platform(url=served.url, data_dir=data_dir, env=served.env)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform the browser modules share."""
    with fresh_platform(tmp_path_factory, "browser") as shared:
        yield shared


# Module scope: while sync Playwright runs, its event loop is the thread's running loop, which
# the suite's async tests elsewhere need; it must be gone before the next module's tests.
@pytest.fixture(scope="module")
def browser() -> Iterator["playwright_sync.Browser"]:
    """Headless Chromium; under CI a missing browser fails the run instead of skipping."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: "playwright_sync.Browser", platform: Platform) -> Iterator["PageFactory"]:
    """Pages in their own browser contexts, signed in as a named account or anonymous."""
    contexts: list[playwright_sync.BrowserContext] = []

    def make(
        account: str | None = None, *, width: int = 1280, height: int = 900, language: str = "en"
    ) -> "playwright_sync.Page":
        context = browser.new_context(
            base_url=platform.url,
            viewport={"width": width, "height": height},
            locale="en-US" if language == "en" else "zh-CN",
            accept_downloads=True,
        )
        context.add_init_script(f"localStorage.setItem('language', '{language}')")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A refused request (401 for an anonymous /me) is logged by Chromium but is no bug.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error"
                and not message.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.errors = errors  # type: ignore[attr-defined]
        if account is not None:
            sign_in(page, platform.accounts[account])
        return page

    yield make
    for context in contexts:
        context.close()


PageFactory = object  # the callable new_page yields: (account=None, *, width, height, language)


def sign_in(page: "playwright_sync.Page", email: str) -> None:
    """Sign in through the sign-in page, as a person would."""
    page.goto("/#/sign-in")
    # By the fields' names, so that it works in either language.
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.locator("#sign-out").wait_for()


def screenshot(page: "playwright_sync.Page", name: str) -> None:
    """Take a picture of the page; kept as NAME.png in $BIDDING_SCREENSHOTS when it is set."""
    if SCREENSHOTS is None:
        page.screenshot(full_page=True)
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)


# --- setting the scene through the API (what a test is not about is done the quick way) ----


def api_token(platform: Platform, account: str) -> str:
    """A bearer token for a named account, signed in once: the platform limits sign-ins per
    address, and every test here comes from the same one."""
    if account not in platform.tokens:
        with client.open_client(platform.url) as http:
            email = platform.accounts[account]
            platform.tokens[account] = client.sign_in(http, email=email, password=PASSWORD)
    return platform.tokens[account]


def api_call(platform: Platform, account: str | None, method: str, path: str, **kwargs: Any) -> Any:
    """One API call as a named account (or anonymous); the JSON answer, asserting success."""
    headers = {} if account is None else {"Authorization": f"Bearer {api_token(platform, account)}"}
    with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=30) as http:
        response = http.request(method, path, **kwargs)
    assert response.is_success, response.text
    return response.json() if response.content else None


def published_tender(
    platform: Platform, officer: str, *, seconds: float = 3600, **overrides: Any
) -> dict[str, Any]:
    """A published tender whose deadline is `seconds` from now (lowest price unless told)."""
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    body: dict[str, Any] = {
        "reference": f"BT-{uuid.uuid4().hex[:10]}",
        "title": "Road resurfacing, lot 3",
        "description": "Resurface 12 km of the county road.",
        "buyer_name": "County Transport Bureau",
        "ceiling_price": "5000000.00",
        "bid_deadline": deadline.isoformat(),
        "scoring": {"method": "lowest_price"},
        "min_bids": 1,
        "bid_fields": [{"name": "price", "label": "Price", "type": "decimal"}],
        **overrides,
    }
    tender = api_call(platform, officer, "POST", "/tenders", json=body)
    return api_call(platform, officer, "POST", f"/tenders/{tender['id']}/publish")  # type: ignore[no-any-return]


def submitted_bid(
    platform: Platform, bidder: str, tender: dict[str, Any], form: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    """A bid sealed and submitted with the platform's own client, as `bidding submit` does."""
    form_path = tmp / f"{bidder}-{tender['id']}.json"
    form_path.write_text(json.dumps(form))
    token = api_token(platform, bidder)
    with client.open_client(platform.url) as http:
        sealed = client.prepare_bid(http, tender_id=tender["id"], form_path=form_path, token=token)
        submission = client.submit(
            http,
            tender_id=tender["id"],
            sealed=sealed,
            token=token,
            idempotency_key=uuid.uuid4().hex,
        )
    return submission.receipt


def bid_posts(page: Any) -> list[Any]:
    """The sealed-bid uploads the page makes, as they are sent."""
    posts: list[Any] = []
    page.on(
        "request",
        lambda request: (
            posts.append(request)
            if request.method == "POST" and request.url.endswith("/bids")
            else None
        ),
    )
    return posts


def events_of(platform: Platform, account: str, tender_id: str) -> list[dict[str, Any]]:
    return api_call(platform, account, "GET", f"/tenders/{tender_id}/opening/events")["events"]  # type: ignore[no-any-return]


def wait_for_event(
    platform: Platform, account: str, tender_id: str, kind: str, timeout: float = 90
) -> dict[str, Any]:
    """The first event of a kind in the tender's opening, waiting for the scheduler."""
    headers = {"Authorization": f"Bearer {api_token(platform, account)}"}
    end = time.monotonic() + timeout
    with httpx.Client(base_url=f"{platform.url}/api/v1", headers=headers, timeout=30) as http:
        while time.monotonic() < end:
            answer = http.get(f"/tenders/{tender_id}/opening/events")
            if answer.status_code == 200:
                for event in answer.json()["events"]:
                    if event["type"] == kind:
                        return event  # type: ignore[no-any-return]
            time.sleep(0.5)
    raise AssertionError(f"no {kind} event within {timeout} s")
