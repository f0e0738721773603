"""Self-registration tells the caller nothing: the same answer whatever is registered, the
outcome by message to the address, pending accounts activated by the mailed link and the
password, and organization names that cannot pass for another's."""

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.auth import service as auth_service
from bidding.auth.models import Organization, OutboxMessage, Role, User
from bidding.auth.names import name_key
from bidding.auth.tokens import hash_token
from bidding.db import create_session_factory, utcnow
from bidding.errors import Conflict, Unprocessable
from bidding.settings import Settings
from tests.auth.conftest import (
    activation_token,
    messages_to,
    only_message_to,
    register_and_activate,
    sign_in,
)
from tests.factories import PASSWORD, bearer, create_user, credit_code

REGISTER = "/api/v1/auth/register"
ACTIVATE = "/api/v1/auth/activate"


def registration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"bids-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long enough passphrase",
        "display_name": "Lin Hui",
        "organization": {
            "name": f"Minhou Civil Works {uuid.uuid4().hex[:6]} Co., Ltd",
            "code": credit_code(),
        },
    }
    body.update(changes)
    return body


def organization(name: str, code: str | None = None) -> dict[str, str]:
    return {"name": name, "code": code or credit_code()}


async def count(session: AsyncSession, model: type[User] | type[Organization]) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def expire(session: AsyncSession, email: str) -> None:
    """Let the pending registration of this address pass its expiry."""
    await session.execute(
        update(User)
        .where(User.email == email)
        .values(activation_expires_at=utcnow() - timedelta(seconds=1))
    )


class TestTheSameAnswer:
    async def test_registered_address_code_and_name_get_the_answer_a_new_one_gets(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        owner = registration()
        await register_and_activate(client, session, owner)
        users, organizations = await count(session, User), await count(session, Organization)

        fresh = await client.post(REGISTER, json=registration())
        taken_email = await client.post(REGISTER, json=registration(email=owner["email"]))
        taken_code = registration(organization=organization("Anything Ltd", owner_code(owner)))
        by_code = await client.post(REGISTER, json=taken_code)
        lookalike = registration(organization=organization(owner_name(owner).upper()))
        by_name = await client.post(REGISTER, json=lookalike)

        answers = [fresh, taken_email, by_code, by_name]
        assert {(a.status_code, a.text) for a in answers} == {(202, fresh.text)}
        # Only the fresh one created anything.
        assert await count(session, User) == users + 1
        assert await count(session, Organization) == organizations + 1
        # What each outcome was went to the address, and only there.
        assert [m.kind for m in await messages_to(session, owner["email"])] == [
            "activation",
            "email_taken",
        ]
        assert (await only_message_to(session, taken_code["email"])).kind == (
            "organization_registered"
        )
        assert (await only_message_to(session, lookalike["email"])).kind == (
            "organization_lookalike"
        )

    async def test_the_owner_of_a_taken_address_is_told_nothing_the_caller_typed(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        owner = registration()
        await register_and_activate(client, session, owner)
        spam = registration(
            email=owner["email"],
            display_name="Call 400-000-0000 now",
            organization=organization("Win A Prize Ltd"),
        )
        assert (await client.post(REGISTER, json=spam)).status_code == 202
        told = (await messages_to(session, owner["email"]))[-1]
        assert told.kind == "email_taken" and told.body is not None
        assert "400-000-0000" not in told.body and "Prize" not in told.body

    async def test_a_pending_account_is_refused_at_sign_in_exactly_as_a_wrong_password(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        assert (await client.post(REGISTER, json=body)).status_code == 202
        user = await create_user(session)
        pending = await sign_in(client, body["email"], body["password"])
        wrong = await sign_in(client, user.email, "not the password at all")
        assert (pending.status_code, pending.json()) == (wrong.status_code, wrong.json())
        assert pending.status_code == 401
        assert pending.headers["www-authenticate"] == wrong.headers["www-authenticate"]


def owner_code(body: dict[str, Any]) -> str:
    code: str = body["organization"]["code"]
    return code


def owner_name(body: dict[str, Any]) -> str:
    name: str = body["organization"]["name"]
    return name


class TestActivation:
    async def test_the_link_with_the_password_activates_once(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        assert (await client.post(REGISTER, json=body)).status_code == 202
        message = await only_message_to(session, body["email"])
        token = activation_token(message)
        # Only the token's hash is stored with the account.
        stored = await session.scalar(
            select(User.activation_token_hash).where(User.email == body["email"])
        )
        assert stored == hash_token(token)

        wrong = await client.post(ACTIVATE, json={"token": token, "password": "not the one!"})
        assert (wrong.status_code, wrong.json()["type"]) == (401, "invalid_credentials")
        right = await client.post(ACTIVATE, json={"token": token, "password": body["password"]})
        assert right.status_code == 200, right.text
        assert (await sign_in(client, body["email"], body["password"])).status_code == 200
        again = await client.post(ACTIVATE, json={"token": token, "password": body["password"]})
        assert (again.status_code, again.json()["type"]) == (404, "activation_invalid")

    async def test_a_link_to_an_address_someone_else_registered_activates_nothing_for_its_reader(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        # Someone registers the victim's address with their own password and organization;
        # the victim, following the link, cannot activate it for them.
        squatted = registration(password="the squatter's own password")
        assert (await client.post(REGISTER, json=squatted)).status_code == 202
        token = activation_token(await only_message_to(session, squatted["email"]))
        answer = await client.post(
            ACTIVATE, json={"token": token, "password": "the victim's password"}
        )
        assert answer.status_code == 401
        pending = await auth_service.get_user_by_email(session=session, email=squatted["email"])
        assert pending is not None and not pending.is_active

    @pytest.mark.parametrize(
        "token", ["A" * 43, "short", "x" * 101, "a+b/c=" * 8, "\u00e9" * 43, "..%2F" * 9]
    )
    async def test_an_unknown_or_malformed_token_activates_nothing(
        self, client: httpx.AsyncClient, token: str
    ) -> None:
        answer = await client.post(ACTIVATE, json={"token": token, "password": PASSWORD})
        assert answer.status_code in (404, 422), answer.text
        assert answer.json()["type"] in ("activation_invalid", "validation_error")

    async def test_an_expired_registration_lapses_and_may_be_repeated_with_a_fresh_link(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        assert (await client.post(REGISTER, json=body)).status_code == 202
        old_token = activation_token(await only_message_to(session, body["email"]))
        first = await auth_service.get_user_by_email(session=session, email=body["email"])
        assert first is not None
        await expire(session, body["email"])

        late = await client.post(ACTIVATE, json={"token": old_token, "password": body["password"]})
        assert (late.status_code, late.json()["type"]) == (404, "activation_invalid")
        # The same address, code and name again: the lapsed registration is out of the way.
        assert (await client.post(REGISTER, json=body)).status_code == 202
        fresh = (await messages_to(session, body["email"]))[-1]
        assert fresh.kind == "activation"
        new_token = activation_token(fresh)
        assert new_token != old_token
        assert await session.get(User, first.id, populate_existing=True) is None
        activated = await client.post(
            ACTIVATE, json={"token": new_token, "password": body["password"]}
        )
        assert activated.status_code == 200, activated.text
        assert activated.json()["organization"]["code"] == owner_code(body)

    async def test_registering_again_while_pending_replaces_the_registration(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        assert (await client.post(REGISTER, json=body)).status_code == 202
        old_token = activation_token(await only_message_to(session, body["email"]))
        typo_fixed = registration(
            email=body["email"], organization=organization("Minhou Civil Works Co., Ltd")
        )
        organizations = await count(session, Organization)
        assert (await client.post(REGISTER, json=typo_fixed)).status_code == 202
        assert await count(session, Organization) == organizations  # the first one is gone
        new_token = activation_token((await messages_to(session, body["email"]))[-1])

        stale = await client.post(ACTIVATE, json={"token": old_token, "password": PASSWORD})
        assert stale.status_code == 404
        user = await client.post(
            ACTIVATE, json={"token": new_token, "password": typo_fixed["password"]}
        )
        assert user.json()["organization"]["name"] == "Minhou Civil Works Co., Ltd"

    async def test_lapsed_registrations_are_cleared_by_later_ones(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        lapsed = registration()
        assert (await client.post(REGISTER, json=lapsed)).status_code == 202
        await expire(session, lapsed["email"])
        assert (await client.post(REGISTER, json=registration())).status_code == 202
        assert await auth_service.get_user_by_email(session=session, email=lapsed["email"]) is None
        code = owner_code(lapsed)
        assert await auth_service.get_organization_by_code(session=session, code=code) is None


class TestNames:
    @pytest.mark.parametrize(
        ("name", "problem"),
        [
            ("演示建设有\u200b限公司", "zero-width"),  # ZERO WIDTH SPACE inside 有限公司
            ("Demo\u200dConstruction", "zero-width"),
            ("\ufeffDemo Construction", "zero-width"),
            ("Demo Construction\u2060Ltd", "zero-width"),
            ("Demo \u202eLtd noitcurtsnoC", "bidirectional"),  # RIGHT-TO-LEFT OVERRIDE
            ("Demo \u2066Construction\u2069", "bidirectional"),
            ("\u200fDemo Construction", "bidirectional"),
            ("Demo\u061c Construction", "bidirectional"),
            ("Demo\u00adConstruction", "invisible"),  # SOFT HYPHEN
            ("Demo \u3164 Construction", "invisible"),  # HANGUL FILLER
            ("Demo\tConstruction", "control"),
            ("Demo\x07Construction", "control"),
            ("Demo\u2028Construction", "line separator"),
            ("Demo \ue000 Construction", "private-use"),
        ],
    )
    async def test_invisible_and_direction_characters_are_refused_at_once(
        self, client: httpx.AsyncClient, session: AsyncSession, name: str, problem: str
    ) -> None:
        body = registration(organization=organization(name))
        answer = await client.post(REGISTER, json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()["errors"][0]
        assert error["field"] == "body.organization.name"
        assert problem in error["message"] and "U+" in error["message"]
        as_display_name = await client.post(REGISTER, json=registration(display_name=name))
        assert as_display_name.status_code == 422
        assert as_display_name.json()["errors"][0]["field"] == "body.display_name"
        assert await messages_to(session, body["email"]) == []

    @pytest.mark.parametrize("name", ["...", "（）、", "- - -"])
    async def test_an_organization_name_of_punctuation_alone_is_refused(
        self, client: httpx.AsyncClient, name: str
    ) -> None:
        answer = await client.post(REGISTER, json=registration(organization=organization(name)))
        assert answer.status_code == 422
        assert "a letter or a digit" in answer.json()["errors"][0]["message"]

    async def test_names_are_stored_in_nfkc(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration(
            display_name="Ｌｉｎ　Ｈｕｉ",
            organization=organization("ＦＵＪＩＡＮ　Ｈａｒｂｏｕｒ（Ｆｕｚｈｏｕ）"),
        )
        user = await register_and_activate(client, session, body)
        assert user["display_name"] == "Lin Hui"
        assert user["organization"]["name"] == "FUJIAN Harbour(Fuzhou)"

    @pytest.mark.parametrize(
        ("registered", "lookalike"),
        [
            ("Demo Construction Co., Ltd", "Demo Constructi0n Co., Ltd"),  # zero for O
            ("Demo Construction Co., Ltd", "Dem\u043e Construction Co., Ltd"),  # Cyrillic о
            ("Xiamen Harbour Authority", "Xi\u0430men H\u0430rbour Authority"),  # Cyrillic а
            ("Demo Construction Co., Ltd", "ＤＥＭＯ ＣＯＮＳＴＲＵＣＴＩＯＮ ＣＯ ＬＴＤ"),
            ("Demo Construction Co., Ltd", "demo construction co ltd"),
            ("Fujian Rail Ltd", "FUJIAN RAIl LTD"),  # a small L among capitals, for an I
            ("Demo Construction Co., Ltd", "Dern\u043e Construction Co., Ltd"),  # rn for m
            ("演示建设有限公司（福州）", "演示建设有限公司(福州)"),
            ("甲、乙工程有限公司", "甲乙工程有限公司"),
            ("Sample Roads & Bridges", "Sample Roads  &  Bridges."),
        ],
    )
    async def test_a_name_that_looks_like_a_registered_one_creates_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, registered: str, lookalike: str
    ) -> None:
        first = registration(organization=organization(registered))
        await register_and_activate(client, session, first)
        organizations = await count(session, Organization)
        body = registration(organization=organization(lookalike))
        answer = await client.post(REGISTER, json=body)
        assert answer.status_code == 202
        message = await only_message_to(session, body["email"])
        assert message.kind == "organization_lookalike"
        assert message.body is not None and "/#/activate/" not in message.body
        assert await count(session, Organization) == organizations

    async def test_names_that_only_share_words_are_different_organizations(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        await register_and_activate(
            client, session, registration(organization=organization("Demo Construction Ltd"))
        )
        for other in ("Demo Constructions Ltd", "演示建设有限公司", "Demo Construction Group"):
            body = registration(organization=organization(other))
            assert (await client.post(REGISTER, json=body)).status_code == 202
            assert (await only_message_to(session, body["email"])).kind == "activation"


class TestTrustedCallers:
    async def test_the_command_line_and_the_demo_are_refused_a_look_alike_name(
        self, session: AsyncSession
    ) -> None:
        registered = await auth_service.create_user(
            session=session,
            email="first@example.com",
            password=PASSWORD,
            display_name="First",
            role=Role.bidder,
            organization_name="Example Engineering Group",
            organization_code=credit_code(),
            via="cli",
        )
        assert registered.is_active  # trusted callers make accounts active at once
        with pytest.raises(Conflict) as refused:
            await auth_service.create_user(
                session=session,
                email="second@example.com",
                password=PASSWORD,
                display_name="Second",
                role=Role.bidder,
                organization_name="Examp1e Engineering Gr\u043eup",
                organization_code=credit_code(),
                via="cli",
            )
        assert refused.value.type == "organization_lookalike"
        assert "Example Engineering Group" in refused.value.detail

    async def test_the_command_line_is_refused_invisible_characters(
        self, session: AsyncSession
    ) -> None:
        with pytest.raises(Unprocessable) as refused:
            await auth_service.create_user(
                session=session,
                email="officer@example.com",
                password=PASSWORD,
                display_name="Officer",
                role=Role.officer,
                organization_name="Fuzhou\u202e Bureau",
                organization_code=credit_code(),
            )
        assert refused.value.extra["errors"][0]["field"] == "organization.name"

    async def test_a_colleague_joins_by_code_under_a_name_that_looks_the_same(
        self, session: AsyncSession
    ) -> None:
        first = await auth_service.create_user(
            session=session,
            email="a@example.com",
            password=PASSWORD,
            display_name="A",
            role=Role.officer,
            organization_name="Fuzhou Transport Bureau",
            organization_code=(code := credit_code()),
        )
        colleague = await auth_service.create_user(
            session=session,
            email="b@example.com",
            password=PASSWORD,
            display_name="B",
            role=Role.officer,
            organization_name="FUZHOU TRANSPORT BUREAU",
            organization_code=code,
        )
        assert colleague.organization_id == first.organization_id


class TestClosedRegistration:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"environment": "production"})

    async def test_production_without_smtp_refuses_registration_plainly(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        answer = await client.post(REGISTER, json=body)
        assert answer.status_code == 503
        assert answer.json()["type"] == "registration_unavailable"
        assert "administrator" in answer.json()["detail"]
        assert await messages_to(session, body["email"]) == []
        assert await auth_service.get_user_by_email(session=session, email=body["email"]) is None


class TestProductionWithSmtp:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "environment": "production",
                "smtp_url": SecretStr("smtp://127.0.0.1:2525"),
                "public_url": "https://bidding.example.cn",
                "mail_from": "bids@example.cn",
            }
        )

    async def test_the_link_points_to_the_public_address_whatever_the_host_header(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        answer = await client.post(REGISTER, json=body, headers={"Host": "evil.example"})
        assert answer.status_code == 202
        message = await only_message_to(session, body["email"])
        assert message.body is not None
        assert "https://bidding.example.cn/#/activate/" in message.body
        assert "evil.example" not in message.body


class TestOutboxEndpoint:
    async def test_only_an_administrator_reads_the_outbox(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        body = registration()
        assert (await client.post(REGISTER, json=body)).status_code == 202
        admin = await bearer(session, await create_user(session, role=Role.admin))
        read = await client.get("/api/v1/outbox", params={"to": body["email"]}, headers=admin)
        assert read.status_code == 200
        (message,) = read.json()
        assert message["kind"] == "activation" and "/#/activate/" in message["body"]
        bidder = await bearer(session, await create_user(session))
        assert (await client.get("/api/v1/outbox", headers=bidder)).status_code == 403
        assert (await client.get("/api/v1/outbox")).status_code == 401


class TestRaces:
    async def test_two_registrations_of_look_alike_names_cannot_both_win(
        self, committing_app: object, engine: AsyncEngine
    ) -> None:
        """The second checks before the first commits, so it sees no look-alike; the unique
        key stops it all the same, and it is told so by message."""
        sessions = create_session_factory(engine)
        arguments = {
            "password": PASSWORD,
            "display_name": "Racer",
            "organization_code": None,
            "site": "http://testserver",
            "activation_ttl": timedelta(hours=1),
        }

        async def register(session: AsyncSession, email: str, name: str) -> OutboxMessage:
            values = arguments | {"organization_code": credit_code()}
            return await auth_service.register(
                session=session, email=email, organization_name=name, **values
            )

        async with sessions() as first, sessions() as second:
            won = await register(first, "first@example.com", "Racing Bridges Ltd")
            assert won.kind == "activation"
            late = asyncio.create_task(
                register(second, "second@example.com", "Rac\u0456ng Bridges Ltd.")
            )
            await waiting_for_a_lock(engine)
            await first.commit()
            lost = await late
            await second.commit()
        assert lost.kind == "organization_lookalike"
        async with sessions() as session:
            keys = (await session.scalars(select(Organization.name_key))).all()
            emails = (await session.scalars(select(User.email))).all()
        assert keys == [name_key("Racing Bridges Ltd")]
        assert emails == ["first@example.com"]


async def waiting_for_a_lock(engine: AsyncEngine) -> None:
    """Until another transaction waits on a row lock (PostgreSQL), or a moment (SQLite,
    where the second writer waits for the first before reading anything)."""
    if engine.dialect.name != "postgresql":
        await asyncio.sleep(0.5)
        return
    deadline = time.monotonic() + 30
    async with engine.connect() as connection:
        while True:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            await connection.rollback()
            if waiting:
                return
            assert time.monotonic() < deadline, "the second registration never waited"
            await asyncio.sleep(0.05)
