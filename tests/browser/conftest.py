"""The pages in a real browser: Debian's Chromium driven by Playwright, against `bidding serve`.

The platform runs as its own process on a fresh SQLite data folder with the scheduler on, so
an opening happens by itself at the deadline, as in production. Each test user gets its own
browser context (cookies, storage), like a person on their own machine.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bidding.auth import uscc
from tests.test_serve import bidding_env, free_port

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
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"


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
    _serial: int = 0

    def add_account(self, name: str, role: str, org: str | None = None) -> str:
        """Create a user with the CLI (officers, supervisors and bidders belong to `org`)."""
        self._serial += 1
        email = f"{name}@example.com"
        command = [sys.executable, "-m", "bidding", "users", "create", "--email", email]
        command += ["--password", PASSWORD, "--role", role, "--name", name]
        if org is not None:
            command += ["--org-name", org, "--org-code", credit_code(sum(map(ord, org)))]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        self.accounts[name] = email
        return email


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """`bidding serve` on a fresh data folder; short bidding periods are allowed for tests."""
    data_dir = tmp_path_factory.mktemp("browser") / "var"
    env = bidding_env(
        data_dir,
        BIDDING_DEMO="0",
        BIDDING_MIN_BIDDING_PERIOD_SECONDS="0",
        BIDDING_SCHEDULER_SYNC_SECONDS="1",
    )
    upgrade = subprocess.run(
        [sys.executable, "-m", "bidding", "db", "upgrade"], env=env, capture_output=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = free_port()
    log = (data_dir.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bidding", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert process.poll() is None, (data_dir.parent / "serve.log").read_text()
                time.sleep(0.1)
        else:
            pytest.fail("the platform did not start")
        yield Platform(url=url, data_dir=data_dir, env=env)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
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
def new_page(
    browser: "playwright_sync.Browser", platform: Platform
) -> Iterator["PageFactory"]:
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
            lambda message: errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None,
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
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def screenshot(page: "playwright_sync.Page", name: str) -> None:
    """Keep a picture of the page for the README (docs/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
