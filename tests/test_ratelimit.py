"""Rate limits: the token bucket on a fake clock, and the 429s of sign-in, registration and
bid submission, each with Retry-After and the platform's error shape."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Role
from bidding.crypto import age
from bidding.ratelimit import Rate, RateLimiter, RateLimits
from bidding.settings import Settings
from tests.factories import PASSWORD, bearer, create_organization, create_user, credit_code
from tests.tenders.conftest import TENDERS, tender_body


class FakeClock:
    """Seconds that pass only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRate:
    @pytest.mark.parametrize(
        ("text", "burst", "period"),
        [("10/minute", 10, 60), ("1/second", 1, 1), (" 20 / hour ", 20, 3600), ("5/day", 5, 86400)],
    )
    def test_a_rate_is_count_per_unit(self, text: str, burst: int, period: float) -> None:
        rate = Rate.parse(text)
        assert (rate.burst, rate.period) == (burst, period)

    @pytest.mark.parametrize("text", ["", "10", "10/fortnight", "-1/minute", "0/minute", "x/hour"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"COUNT/UNIT|at least 1"):
            Rate.parse(text)

    def test_settings_read_rates_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("BIDDING_RATE_LIMIT_SUBMISSION", "3/second")
        settings = Settings()
        assert settings.rate_limit_submission == Rate(burst=3, period=1)
        assert str(settings.rate_limit_sign_in) == "60/minute"
        assert str(settings.rate_limit_registration) == "20/hour"


class TestTokenBucket:
    def test_a_burst_passes_then_one_per_interval(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(Rate(burst=3, period=60), clock=clock)
        assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
        assert limiter.take("a") == pytest.approx(20)
        clock.now += 19.5
        assert limiter.take("a") == pytest.approx(0.5)
        clock.now += 0.5
        assert limiter.take("a") == 0
        assert limiter.take("a") == pytest.approx(20)

    def test_a_refused_request_spends_nothing(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(Rate(burst=1, period=10), clock=clock)
        assert limiter.take("a") == 0
        for _ in range(50):  # hammering while refused does not push the wait back
            assert limiter.take("a") == pytest.approx(10)
        clock.now += 10
        assert limiter.take("a") == 0

    def test_keys_count_apart_and_a_full_bucket_holds_no_more_than_the_burst(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(Rate(burst=2, period=60), clock=clock)
        assert limiter.take("a") == limiter.take("a") == 0
        assert limiter.take("a") > 0
        assert limiter.take("b") == 0
        clock.now += 3600  # a long quiet time refills to the burst, not beyond
        assert [limiter.take("a") for _ in range(2)] == [0, 0]
        assert limiter.take("a") > 0

    def test_memory_is_bounded_by_forgetting_the_least_recently_seen(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(Rate(burst=1, period=60), clock=clock, max_keys=100)
        for n in range(1000):
            limiter.take(f"address-{n}")
        assert len(limiter) == 100
        assert limiter.take("address-999") > 0  # recently seen: still counted
        assert limiter.take("address-0") == 0  # long forgotten: a fresh bucket


# --- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        demo=False,
        rate_limit_sign_in="3/minute",
        rate_limit_registration="2/hour",
        rate_limit_submission="2/minute",
    )


@pytest.fixture
def clock(app: FastAPI, settings: Settings) -> FakeClock:
    """The app's limiters on a clock of the test's."""
    clock = FakeClock()
    app.state.rate_limits = RateLimits.of(
        sign_in=settings.rate_limit_sign_in,
        registration=settings.rate_limit_registration,
        submission=settings.rate_limit_submission,
        clock=clock,
    )
    return clock


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def clients(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two clients, each from an address of its own."""
    async with client_from(app, "192.0.2.10") as one, client_from(app, "192.0.2.11") as two:
        yield one, two


def assert_throttled(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    body = response.json()
    assert body["type"] == "too_many_requests"
    assert body["retry_after"] == retry_after and body["detail"]


class TestSignIn:
    async def test_an_address_is_limited_whether_its_sign_ins_succeed_or_not(
        self,
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
        clock: FakeClock,
        session: AsyncSession,
    ) -> None:
        one, two = clients
        user = await create_user(session)
        form = {"username": user.email, "password": PASSWORD}
        answers = [await one.post("/api/v1/auth/token", data=form) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]

        assert_throttled(await one.post("/api/v1/auth/token", data=form), retry_after=20)
        # Another address is not held up, nor is the account.
        assert (await two.post("/api/v1/auth/token", data=form)).status_code == 200

        clock.now += 20
        assert (await one.post("/api/v1/auth/token", data=form)).status_code == 200

    async def test_ipv6_addresses_count_by_their_64(self, app: FastAPI, clock: FakeClock) -> None:
        form = {"username": "nobody@example.com", "password": "wrong wrong wrong"}
        one_subscriber = [
            "2001:db8:1:2::1",
            "2001:db8:1:2::2",
            "2001:db8:1:2:ff::3",
            "2001:db8:1:2::4",
        ]
        statuses = []
        for host in [*one_subscriber, "2001:db8:1:3::1"]:
            async with client_from(app, host) as client:
                statuses.append((await client.post("/api/v1/auth/token", data=form)).status_code)
        assert statuses == [401, 401, 401, 429, 401]

    async def test_the_limit_comes_before_the_password_is_checked(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], clock: FakeClock
    ) -> None:
        one, _ = clients
        form = {"username": "nobody@example.com", "password": "wrong wrong wrong"}
        for _ in range(3):
            await one.post("/api/v1/auth/token", data=form)
        assert_throttled(await one.post("/api/v1/auth/token", data=form), retry_after=20)


def registration() -> dict[str, Any]:
    return {
        "email": f"bids-{secrets.token_hex(4)}@example.com",
        "password": "a long enough passphrase",
        "display_name": "Bids Desk",
        "organization": {"name": f"Builder {secrets.token_hex(3)}", "code": credit_code()},
    }


class TestRegistration:
    async def test_an_address_registers_a_few_organizations_an_hour(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], clock: FakeClock
    ) -> None:
        one, two = clients
        for _ in range(2):
            answer = await one.post("/api/v1/auth/register", json=registration())
            assert answer.status_code == 202, answer.text
        assert_throttled(await one.post("/api/v1/auth/register", json=registration()), 1800)
        assert (await two.post("/api/v1/auth/register", json=registration())).status_code == 202
        clock.now += 1800
        assert (await one.post("/api/v1/auth/register", json=registration())).status_code == 202


class TestSubmission:
    async def published(self, client: httpx.AsyncClient, session: AsyncSession) -> dict[str, Any]:
        officer = await create_user(session, role=Role.officer)
        headers = await bearer(session, officer)
        created = await client.post(TENDERS, json=tender_body(), headers=headers)
        published = await client.post(f"{TENDERS}/{created.json()['id']}/publish", headers=headers)
        assert published.status_code == 200, published.text
        tender: dict[str, Any] = published.json()
        return tender

    async def test_a_bidder_has_a_burst_per_tender_then_a_steady_rate(
        self, client: httpx.AsyncClient, session: AsyncSession, clock: FakeClock
    ) -> None:
        first, second = [await self.published(client, session) for _ in range(2)]
        organization = await create_organization(session, name="Builder Ltd")
        alice = await bearer(session, await create_user(session, organization=organization))
        colleague = await bearer(session, await create_user(session, organization=organization))
        other = await bearer(session, await create_user(session))

        async def upload(tender: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            recipient = age.Recipient.parse(tender["opening_recipient"])
            return await client.post(
                f"{TENDERS}/{tender['id']}/bids",
                content=age.seal_bytes(
                    b'{"price": "1000000.00", "duration_days": 90}', [recipient]
                ),
                headers={**headers, "Content-Type": "application/octet-stream"},
            )

        assert [(await upload(first, alice)).status_code for _ in range(2)] == [201, 201]
        # The organization's bucket: a colleague of the same bidder shares it.
        assert_throttled(await upload(first, colleague), retry_after=30)
        assert (await upload(second, alice)).status_code == 201
        assert (await upload(first, other)).status_code == 201
        clock.now += 30
        replaced = await upload(first, alice)
        assert replaced.status_code == 201
        assert replaced.json()["body"]["version"] == 3
