"""Nobody can lock someone else out: an attacker failing on a victim's account from many
addresses gets 429s itself, while the victim's right password is taken at once from its own
address and after a bounded wait from a new one (README, Security, "Sign-in throttle")."""

import asyncio
import dataclasses
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.app import create_app
from bidding.auth import service as auth_service
from bidding.auth.models import LoginFailure, SignInAddress
from bidding.db import create_session_factory, utcnow
from bidding.ratelimit import RateLimits
from bidding.settings import Settings
from tests.auth.conftest import Pauses, client_from, sign_in
from tests.factories import PASSWORD, create_user

WRONG = "not the password at all"
VICTIM_HOME = "198.51.100.20"
ATTACKERS = [f"203.0.113.{n}" for n in range(1, 6)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The defaults, spelled out: the figures the README gives are these.
    return settings.model_copy(
        update={
            "login_max_failures": 5,
            "login_max_failures_per_address": 20,
            "login_window_seconds": 900,
            "login_delay_max_seconds": 10,
            "login_known_address_days": 30,
        }
    )


async def attempt(app: FastAPI, address: str, email: str, password: str) -> httpx.Response:
    async with client_from(app, address) as client:
        return await sign_in(client, email, password)


class TestTheVictimIsNeverLockedOut:
    async def test_many_addresses_failing_on_an_account_neither_refuse_nor_delay_its_user_at_home(
        self, app: FastAPI, session: AsyncSession, settings: Settings, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        assert (await attempt(app, VICTIM_HOME, victim.email, PASSWORD)).status_code == 200

        # A competitor, minutes before a deadline, fails on the victim's account from several
        # addresses until each is refused.
        for address in ATTACKERS:
            answers = [await attempt(app, address, victim.email, WRONG) for _ in range(6)]
            assert [a.status_code for a in answers] == [401] * 5 + [429]
            refused = answers[-1]
            assert refused.json()["type"] == "too_many_requests"
            retry_after = int(refused.headers["Retry-After"])
            assert 0 < retry_after <= settings.login_window_seconds
            # Even the right password is refused there: the guesser learns nothing.
            assert (await attempt(app, address, victim.email, PASSWORD)).status_code == 429

        pauses.waited.clear()
        answer = await attempt(app, VICTIM_HOME, victim.email, PASSWORD)
        assert answer.status_code == 200 and answer.json()["access_token"]
        assert pauses.waited == []  # at once, no delay

    async def test_from_a_new_address_the_user_gets_in_after_a_bounded_wait(
        self, app: FastAPI, session: AsyncSession, settings: Settings, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        for address in ATTACKERS[:2]:
            for _ in range(5):
                assert (await attempt(app, address, victim.email, WRONG)).status_code == 401
        # The waits the attacker's own attempts got grew, and never passed the bound.
        assert pauses.waited == sorted(pauses.waited)
        assert max(pauses.waited) == settings.login_delay_max_seconds

        pauses.waited.clear()
        answer = await attempt(app, "192.0.2.77", victim.email, PASSWORD)  # a hotel's wifi
        assert answer.status_code == 200
        assert pauses.waited == [settings.login_delay_max_seconds]

        # Known from now on: the next sign-in from there is not held up.
        pauses.waited.clear()
        assert (await attempt(app, "192.0.2.77", victim.email, PASSWORD)).status_code == 200
        assert pauses.waited == []

    async def test_a_guesser_behind_the_users_own_address_cannot_lock_it_out_by_failing_elsewhere(
        self, app: FastAPI, session: AsyncSession, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        office = "198.51.100.30"
        assert (await attempt(app, office, victim.email, PASSWORD)).status_code == 200
        for n in range(20):
            assert (await attempt(app, office, f"guess{n}@example.com", WRONG)).status_code == 401
        # The office's address is refused for any other account...
        stranger = await create_user(session)
        assert (await attempt(app, office, stranger.email, PASSWORD)).status_code == 429
        # ...but not for the account that signed in from it.
        assert (await attempt(app, office, victim.email, PASSWORD)).status_code == 200

    async def test_an_address_known_long_ago_is_new_again(
        self, app: FastAPI, session: AsyncSession, settings: Settings, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        long_ago = utcnow() - timedelta(days=31)
        session.add(SignInAddress(user_id=victim.id, client=VICTIM_HOME, signed_in_at=long_ago))
        session.add_all(
            LoginFailure(email=victim.email, client=address, at=utcnow())
            for address in [f"192.0.2.{n}" for n in range(6)]
        )
        await session.flush()
        assert (await attempt(app, VICTIM_HOME, victim.email, PASSWORD)).status_code == 200
        assert pauses.waited == [2.0]  # six failures: the second step of the delay
        remembered = await session.scalar(
            select(SignInAddress.signed_in_at).where(
                SignInAddress.user_id == victim.id, SignInAddress.client == VICTIM_HOME
            )
        )
        assert remembered is not None and remembered > long_ago


class TestTheGuessingRateIsBounded:
    async def test_each_address_gets_a_few_guesses_per_account_and_window(
        self, app: FastAPI, session: AsyncSession, settings: Settings, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        addresses = ATTACKERS[:2]
        checked = 0
        for _ in range(3):  # three rounds over the addresses, all in one window
            for address in addresses:
                for _ in range(4):
                    answer = await attempt(app, address, victim.email, WRONG)
                    assert answer.status_code in (401, 429)
                    checked += answer.status_code == 401
        # 24 tries, of which only 5 per address had their password checked.
        assert checked == settings.login_max_failures * len(addresses)

    async def test_an_address_gets_a_few_guesses_over_all_accounts(
        self, app: FastAPI, session: AsyncSession, settings: Settings, pauses: Pauses
    ) -> None:
        victims = [await create_user(session) for _ in range(6)]
        statuses = [
            (await attempt(app, ATTACKERS[0], victim.email, WRONG)).status_code
            for victim in victims
            for _ in range(5)
        ]
        assert statuses.count(401) == settings.login_max_failures_per_address
        assert statuses[settings.login_max_failures_per_address :] == [429] * 10

    async def test_ipv6_addresses_of_one_subscriber_share_their_guesses(
        self, app: FastAPI, session: AsyncSession, pauses: Pauses
    ) -> None:
        victim = await create_user(session)
        one_subscriber = [f"2001:db8:5:6::{n:x}" for n in range(1, 7)]
        statuses = [
            (await attempt(app, host, victim.email, WRONG)).status_code for host in one_subscriber
        ]
        assert statuses == [401] * 5 + [429]
        assert (await attempt(app, "2001:db8:5:7::1", victim.email, WRONG)).status_code == 401

    async def test_attempts_sent_at_once_from_one_address_get_no_more_guesses(
        self,
        committing_app: FastAPI,
        engine: AsyncEngine,
        settings: Settings,
    ) -> None:
        async with create_session_factory(engine)() as session:
            victim = await create_user(session)
            await session.commit()
        app = committing_app
        pauses = Pauses()
        app.state.rate_limits = RateLimits.of(
            sign_in=settings.rate_limit_sign_in,
            registration=settings.rate_limit_registration,
            submission=settings.rate_limit_submission,
            pause=pauses,
        )
        async with client_from(app, ATTACKERS[0]) as client:
            answers = await asyncio.gather(
                *(sign_in(client, victim.email, WRONG) for _ in range(15))
            )
        statuses = sorted(a.status_code for a in answers)
        # Each attempt is counted before any password is checked: no burst slips past.
        assert statuses == [401] * settings.login_max_failures + [429] * 10


class TestSeveralInstances:
    async def test_two_instances_on_one_database_count_the_same_failures(
        self, committing_app: FastAPI, engine: AsyncEngine, settings: Settings
    ) -> None:
        # Each instance has rate limits of its own in memory; the throttle is in the database.
        second = create_app(settings, manage_state=False)
        second.state.session_factory = create_session_factory(engine)
        second.state.keys = committing_app.state.keys
        instances = [committing_app, second]
        for app in instances:
            app.state.rate_limits = dataclasses.replace(app.state.rate_limits, pause=Pauses())
        async with create_session_factory(engine)() as session:
            victim = await create_user(session)
            await session.commit()
        home = await attempt(second, VICTIM_HOME, victim.email, PASSWORD)
        assert home.status_code == 200

        statuses = [
            (await attempt(instances[n % 2], ATTACKERS[0], victim.email, WRONG)).status_code
            for n in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
        for _ in range(5):  # the account's failures reach the most delay, on either instance
            await attempt(committing_app, ATTACKERS[1], victim.email, WRONG)

        # The victim, at home, on the other instance: at once; from a new address: bounded.
        assert (await attempt(second, VICTIM_HOME, victim.email, PASSWORD)).status_code == 200
        assert second.state.rate_limits.pause.waited == []
        assert (await attempt(second, "192.0.2.88", victim.email, PASSWORD)).status_code == 200
        assert second.state.rate_limits.pause.waited == [settings.login_delay_max_seconds]


class TestTheDelay:
    def test_it_grows_from_the_limit_on_and_stops_at_the_bound(self, settings: Settings) -> None:
        waits = [auth_service.sign_in_delay(failures=n, settings=settings) for n in range(0, 12)]
        assert waits == [0, 0, 0, 0, 0, 1, 2, 4, 8, 10, 10, 10]
        assert auth_service.sign_in_delay(failures=10**9, settings=settings) == 10
