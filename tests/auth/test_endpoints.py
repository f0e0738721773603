"""Accounts over HTTP: registering, signing in and out, throttling, cookie sessions and CSRF."""

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth import service as auth_service
from bidding.auth.models import AccessToken, LoginFailure, Role
from bidding.auth.tokens import hash_token, new_token
from bidding.db import utcnow
from bidding.settings import Settings
from tests.auth.conftest import (
    REGISTER,
    Pauses,
    activation_token,
    client_from,
    messages_to,
    only_message_to,
    register_and_activate,
    registration,
    sign_in,
)
from tests.factories import bearer, create_organization, create_user, credit_code


class TestRegister:
    async def test_a_bidder_registers_activates_and_signs_in(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        response = await client.post(REGISTER, json=body)
        assert response.status_code == 202
        assert response.json()["status"] == "check_your_mailbox"
        assert "password" not in response.text and "hash" not in response.text
        token = activation_token(await only_message_to(session, body["email"]))

        activated = await client.post(
            "/api/v1/auth/activate", json={"token": token, "password": body["password"]}
        )
        assert activated.status_code == 200, activated.text
        user = activated.json()
        assert user["email"] == body["email"].lower()
        assert user["role"] == "bidder"
        assert user["organization"]["code"] == body["organization"]["code"]
        assert "password" not in str(user) and "hash" not in str(user)

        token = (await sign_in(client, body["email"].upper(), body["password"])).json()
        me = await client.get("/api/v1/me", headers=bearer_header(token["access_token"]))
        assert me.json() == user

    async def test_an_email_taken_in_another_case_gets_the_same_answer_and_its_owner_a_message(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        first = registration()
        await register_and_activate(client, session, first)
        again = registration(email=f"  {first['email'].swapcase()} ")
        response = await client.post(REGISTER, json=again)
        assert response.status_code == 202
        assert response.json()["status"] == "check_your_mailbox"
        kinds = [message.kind for message in await messages_to(session, first["email"])]
        assert kinds == ["activation", "email_taken"]

    async def test_a_mistyped_credit_code_names_the_field(self, client: httpx.AsyncClient) -> None:
        code = credit_code()
        wrong = code[:17] + next(c for c in "0123456789AB" if c != code[17])
        body = registration(organization={"name": "Typo Ltd", "code": wrong})
        response = await client.post(REGISTER, json=body)
        assert response.status_code == 422
        error = response.json()
        assert error["type"] == "validation_error"
        assert error["errors"][0]["field"] == "body.organization.code"
        assert "check character" in error["detail"]

    @pytest.mark.parametrize(
        "password", ["short", "aaaaaaaaaaaaaaaa", "x" * 257], ids=["short", "repeated", "long"]
    )
    async def test_a_weak_password_is_refused(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        response = await client.post(REGISTER, json=registration(password=password))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.password"

    async def test_an_invalid_email_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(REGISTER, json=registration(email="li.wei@@example.com"))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.email"

    async def test_nobody_registers_as_an_officer(self, client: httpx.AsyncClient) -> None:
        response = await client.post(REGISTER, json=registration(role="officer"))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.role"

    async def test_a_registered_organization_cannot_be_joined_by_knowing_its_code(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        organization = await create_organization(session, name="Buyer Bureau")
        body = registration(organization={"name": "Buyer Bureau", "code": organization.code})
        response = await client.post(REGISTER, json=body)
        assert response.status_code == 202
        assert (await only_message_to(session, body["email"])).kind == "organization_registered"
        assert await auth_service.get_user_by_email(session=session, email=body["email"]) is None

    async def test_a_body_that_is_not_json_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            REGISTER, content=b"email=a@example.com", headers={"Content-Type": "text/plain"}
        )
        assert response.status_code == 422
        assert response.json()["type"] == "validation_error"


class TestSignIn:
    async def test_the_token_works_until_logout(
        self, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(session, role=Role.officer)
        response = await sign_in(client, user.email)
        assert response.status_code == 200
        token = response.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == settings.token_ttl_seconds
        assert "csrf_token" not in token and "set-cookie" not in response.headers
        headers = bearer_header(token["access_token"])

        me = await client.get("/api/v1/me", headers=headers)
        assert me.status_code == 200 and me.json()["email"] == user.email
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 401

    async def test_only_the_hash_of_a_token_is_stored(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        token = (await sign_in(client, user.email)).json()["access_token"]
        stored = (await session.scalars(select(AccessToken.token_hash))).all()
        assert hash_token(token) in stored and token not in stored

    async def test_wrong_password_and_unknown_email_get_the_same_answer(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        wrong_password = await sign_in(client, user.email, "not the password at all")
        unknown_email = await sign_in(client, "nobody@example.com")
        assert wrong_password.status_code == unknown_email.status_code == 401
        assert wrong_password.json() == unknown_email.json()
        assert wrong_password.json()["detail"] == "invalid email or password"
        assert wrong_password.headers["www-authenticate"] == "Bearer"

    async def test_an_inactive_user_gets_the_same_answer(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        user.is_active = False
        await session.flush()
        response = await sign_in(client, user.email)
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid email or password"

    async def test_deactivating_a_user_ends_their_sessions(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        headers = await bearer(session, user)
        user.is_active = False
        await session.flush()
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


class TestThrottle:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "login_max_failures": 3,
                "login_max_failures_per_address": 3,
                "login_window_seconds": 600,
            }
        )

    async def test_an_account_is_throttled_after_repeated_failures(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        for _ in range(3):
            assert (await sign_in(client, user.email, "wrong password!")).status_code == 401
        # Even the right password is refused now: a guesser must not learn it was right.
        response = await sign_in(client, user.email)
        assert response.status_code == 429
        assert response.json()["type"] == "too_many_requests"
        assert 590 <= int(response.headers["retry-after"]) <= 600
        assert response.json()["retry_after"] == int(response.headers["retry-after"])

    async def test_a_client_is_throttled_across_different_emails(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        for n in range(3):
            assert (await sign_in(client, f"guess{n}@example.com")).status_code == 401
        user = await create_user(session)
        response = await sign_in(client, user.email)
        assert response.status_code == 429
        assert "retry-after" in response.headers

    async def test_failures_from_other_addresses_still_slow_the_account_down(
        self, client: httpx.AsyncClient, session: AsyncSession, pauses: Pauses
    ) -> None:
        user = await create_user(session)
        now = utcnow()
        session.add_all(
            LoginFailure(email=user.email, client=f"203.0.113.{n}", at=now) for n in range(3)
        )
        await session.flush()
        # Not refused (others' failures must not lock the user out), but held up a while.
        assert (await sign_in(client, user.email)).status_code == 200
        assert pauses.waited == [1.0]

    async def test_retry_after_counts_down_to_when_a_failure_leaves_the_window(
        self, app: FastAPI, session: AsyncSession
    ) -> None:
        now = utcnow()
        email = "target@example.com"
        ages = [500, 400, 100]  # seconds ago; the oldest leaves the 600 s window in 100 s
        session.add_all(
            LoginFailure(email=email, client="203.0.113.9", at=now - timedelta(seconds=age))
            for age in ages
        )
        await session.flush()
        async with client_from(app, "203.0.113.9") as client:
            response = await sign_in(client, email)
        assert response.status_code == 429
        assert 95 <= int(response.headers["retry-after"]) <= 100

    async def test_failures_older_than_the_window_do_not_count(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        long_ago = utcnow() - timedelta(seconds=601)
        session.add_all(
            LoginFailure(email=user.email, client="testclient", at=long_ago) for _ in range(3)
        )
        await session.flush()
        assert (await sign_in(client, user.email)).status_code == 200

    async def test_a_success_forgives_earlier_typos(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        for _ in range(2):
            await sign_in(client, user.email, "a typo in it")
        assert (await sign_in(client, user.email)).status_code == 200
        for _ in range(2):
            await sign_in(client, user.email, "a typo in it")
        assert (await sign_in(client, user.email)).status_code == 200


class TestTokens:
    async def test_an_expired_token_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        token = new_token()
        session.add(
            AccessToken(
                token_hash=hash_token(token),
                user_id=user.id,
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
        await session.flush()
        response = await client.get("/api/v1/me", headers=bearer_header(token))
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"

    async def test_me_needs_a_sign_in(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json() == {"type": "unauthorized", "detail": "sign in first"}

    @pytest.mark.parametrize(
        "authorization", ["Bearer not-a-real-token", "Bearer", "Basic dXNlcjpwYXNz"]
    )
    async def test_a_bad_authorization_header_is_refused_even_where_anyone_may_read(
        self, client: httpx.AsyncClient, authorization: str
    ) -> None:
        assert (await client.get("/api/v1/probe/anyone")).json() == {"email": None}
        response = await client.get(
            "/api/v1/probe/anyone", headers={"Authorization": authorization}
        )
        assert response.status_code == 401

    async def test_logout_revokes_only_its_own_token(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        laptop = bearer_header((await sign_in(client, user.email)).json()["access_token"])
        phone = await bearer(session, user)
        assert (await client.post("/api/v1/auth/logout", headers=laptop)).status_code == 204
        assert (await client.get("/api/v1/me", headers=laptop)).status_code == 401
        assert (await client.get("/api/v1/me", headers=phone)).status_code == 200


class TestCookieSession:
    async def test_a_browser_sign_in_sets_a_protected_cookie(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        response = await sign_in(client, user.email, session="cookie")
        assert response.status_code == 200
        cookies = {
            header.split("=", 1)[0]: header.lower()
            for header in response.headers.get_list("set-cookie")
        }
        assert {"bidding_session", "bidding_csrf"} <= cookies.keys()
        session_cookie = cookies["bidding_session"]
        assert "httponly" in session_cookie and "samesite=lax" in session_cookie
        assert "path=/" in session_cookie and "max-age=" in session_cookie
        assert "httponly" not in cookies["bidding_csrf"]  # the page must read it
        assert response.json()["csrf_token"] == client.cookies["bidding_csrf"]

    async def test_the_cookie_signs_in_reads(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        await sign_in(client, user.email, session="cookie")
        response = await client.get("/api/v1/me")
        assert response.status_code == 200 and response.json()["email"] == user.email

    async def test_a_change_relying_on_the_cookie_needs_the_csrf_header(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        csrf = (await sign_in(client, user.email, session="cookie")).json()["csrf_token"]

        for headers in ({}, {"X-CSRF-Token": "forged"}):
            response = await client.post("/api/v1/probe/signed-in", headers=headers)
            assert response.status_code == 403
            assert response.json()["type"] == "csrf_failed"
            # Not even where anyone may write: the request would act as the signed-in user.
            response = await client.post("/api/v1/probe/anyone", headers=headers)
            assert response.status_code == 403

        response = await client.post("/api/v1/probe/signed-in", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 200 and response.json()["email"] == user.email

    async def test_a_bearer_token_needs_no_csrf_header(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        token = (await sign_in(client, user.email, session="cookie")).json()["access_token"]
        client.cookies.clear()
        response = await client.post("/api/v1/probe/signed-in", headers=bearer_header(token))
        assert response.status_code == 200

    async def test_logout_ends_the_cookie_session(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        login = await sign_in(client, user.email, session="cookie")
        stolen = login.cookies["bidding_session"]
        csrf = login.json()["csrf_token"]

        refused = await client.post("/api/v1/auth/logout")
        assert refused.status_code == 403 and refused.json()["type"] == "csrf_failed"
        response = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 204
        assert "bidding_session" not in client.cookies
        # The cookie's value is dead on the server too, not only forgotten by the browser.
        client.cookies.set("bidding_session", stolen)
        assert (await client.get("/api/v1/me")).status_code == 401

    async def test_a_stale_cookie_is_anonymous_where_anyone_may_read(
        self, client: httpx.AsyncClient
    ) -> None:
        client.cookies.set("bidding_session", "long-expired")
        assert (await client.get("/api/v1/probe/anyone")).json() == {"email": None}
        assert (await client.get("/api/v1/me")).status_code == 401

    async def test_an_unknown_session_kind_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        response = await sign_in(client, user.email, session="forever")
        assert response.status_code == 422


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
