"""Login CSRF: another site's page cannot post the attacker's credentials to the sign-in and
leave the victim's browser in the attacker's session. The headers are those real browsers
send; tests/browser/test_login_csrf.py has Chromium do it."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import AccessToken
from bidding.ratelimit import Rate, RateLimits
from bidding.settings import Settings
from tests.factories import PASSWORD, create_user

TOKEN = "/api/v1/auth/token"
OURS = "http://testserver"

# A form on https://evil.example auto-submitted to the sign-in, by each kind of browser.
CROSS_SITE = {
    "a current browser": {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    "a browser without Fetch Metadata": {"Origin": "https://evil.example"},
    "a sandboxed frame or a data: page": {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    "an opaque origin without Fetch Metadata": {"Origin": "null"},
    # Origin cannot be forged by a page; Fetch Metadata alone says cross-site.
    "a cross-site request naming our origin": {"Origin": OURS, "Sec-Fetch-Site": "cross-site"},
    "a sibling subdomain (same site, not listed)": {
        "Origin": "http://uploads.testserver",
        "Sec-Fetch-Site": "same-site",
    },
    "a look-alike host": {"Origin": "http://testserver.evil.example"},
    "an origin that is no URL": {"Origin": "http://[::1"},
    "neither header": {},
}
# The platform's own page: fetch() from http://testserver, as accounts.js does.
OWN_PAGE = {
    "a current browser": {"Origin": OURS, "Sec-Fetch-Site": "same-origin"},
    "a browser without Fetch Metadata": {"Origin": OURS},
    "Fetch Metadata alone": {"Sec-Fetch-Site": "same-origin"},
}


async def cookie_sign_in(
    client: httpx.AsyncClient, email: str, headers: dict[str, str]
) -> httpx.Response:
    form = {"username": email, "password": PASSWORD, "session": "cookie"}
    return await client.post(TOKEN, data=form, headers=headers)


async def tokens(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(AccessToken)) or 0


class TestCookieSignIn:
    @pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
    async def test_another_sites_page_gets_no_session(
        self, client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str]
    ) -> None:
        attacker = await create_user(session)
        before = await tokens(session)
        response = await cookie_sign_in(client, attacker.email, headers)
        assert response.status_code == 403
        assert response.json()["type"] == "cross_site_request"
        assert response.json()["detail"]
        assert "set-cookie" not in response.headers
        assert "bidding_session" not in client.cookies
        assert await tokens(session) == before  # no session was made at all

    @pytest.mark.parametrize("headers", OWN_PAGE.values(), ids=OWN_PAGE.keys())
    async def test_the_platforms_own_page_signs_in(
        self, client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str]
    ) -> None:
        user = await create_user(session)
        response = await cookie_sign_in(client, user.email, headers)
        assert response.status_code == 200, response.text
        assert client.cookies["bidding_session"]
        assert (await client.get("/api/v1/me")).json()["email"] == user.email

    async def test_a_refused_sign_in_spends_no_guess_on_the_account(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        victim = await create_user(session)
        for _ in range(settings.login_max_failures + 1):
            refused = await cookie_sign_in(client, victim.email, CROSS_SITE["a current browser"])
            assert refused.status_code == 403
        own = await cookie_sign_in(client, victim.email, OWN_PAGE["a current browser"])
        assert own.status_code == 200


class TestListedOrigins:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"cors_origins": ["http://portal.testserver"]})

    async def test_a_listed_same_site_origin_may_start_a_browser_session(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        listed = {"Origin": "http://portal.testserver", "Sec-Fetch-Site": "same-site"}
        assert (await cookie_sign_in(client, user.email, listed)).status_code == 200

    async def test_a_listed_origin_of_another_site_may_not(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        cross = {"Origin": "http://portal.testserver", "Sec-Fetch-Site": "cross-site"}
        response = await cookie_sign_in(client, user.email, cross)
        assert response.status_code == 403
        assert response.json()["type"] == "cross_site_request"


class TestBearerSignIn:
    async def test_the_command_line_signs_in_without_either_header(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        response = await client.post(TOKEN, data={"username": user.email, "password": PASSWORD})
        assert response.status_code == 200 and response.json()["access_token"]

    async def test_another_sites_page_cannot_throttle_the_victims_own_address(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        # The victim's browser, on the attacker's page, posts wrong passwords for the
        # victim's account: from the victim's own address, where its sign-ins come from.
        victim = await create_user(session)
        home = await client.post(TOKEN, data={"username": victim.email, "password": PASSWORD})
        assert home.status_code == 200
        wrong = {"username": victim.email, "password": "a wrong password"}
        for _ in range(settings.login_max_failures + 1):
            answer = await client.post(TOKEN, data=wrong, headers=CROSS_SITE["a current browser"])
            assert answer.status_code == 403
            assert answer.json()["type"] == "cross_site_request"
        own = await cookie_sign_in(client, victim.email, OWN_PAGE["a current browser"])
        assert own.status_code == 200

    async def test_another_sites_page_cannot_spend_the_addresses_sign_in_rate(
        self, app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        app.state.rate_limits = RateLimits.of(
            sign_in=Rate.parse("3/minute"),
            registration=settings.rate_limit_registration,
            submission=settings.rate_limit_submission,
        )
        victim = await create_user(session)
        wrong = {"username": victim.email, "password": "a wrong password"}
        for _ in range(5):
            answer = await client.post(TOKEN, data=wrong, headers=CROSS_SITE["a current browser"])
            assert answer.status_code == 403
        own = await cookie_sign_in(client, victim.email, OWN_PAGE["a current browser"])
        assert own.status_code == 200
