"""Auth-only fixtures: the app with probe routes guarded by each kind of dependency."""

import base64
import dataclasses
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.dependencies import (
    Admin,
    CurrentUser,
    Officer,
    OptionalUser,
    require_roles,
)
from bidding.auth.models import OutboxMessage, Role, User
from bidding.crypto import age
from tests.factories import PASSWORD, credit_code

probe = APIRouter()


def _who(user: User | None) -> dict[str, Any]:
    return {"email": user.email if user else None}


@probe.get("/anyone")
async def read_as_anyone(user: OptionalUser) -> dict[str, Any]:
    return _who(user)


@probe.post("/anyone")
async def write_as_anyone(user: OptionalUser) -> dict[str, Any]:
    return _who(user)


@probe.post("/signed-in")
async def write_signed_in(user: CurrentUser) -> dict[str, Any]:
    return _who(user)


@probe.post("/officer")
async def write_as_officer(user: Officer) -> dict[str, Any]:
    return _who(user)


@probe.post("/admin")
async def write_as_admin(user: Admin) -> dict[str, Any]:
    return _who(user)


@probe.post("/oversight")
async def write_as_officer_or_supervisor(
    user: Annotated[User, Depends(require_roles(Role.officer, Role.supervisor))],
) -> dict[str, Any]:
    return _who(user)


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app plus /api/v1/probe/* routes, one per guard."""
    app.include_router(probe, prefix="/api/v1/probe")
    return app


class Pauses:
    """The app's pauses on a clock of the test's: each is noted, none takes real time."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


@pytest.fixture
def pauses(app: FastAPI) -> Pauses:
    """The waits the app imposes on sign-ins, noted instead of slept."""
    pauses = Pauses()
    app.state.rate_limits = dataclasses.replace(app.state.rate_limits, pause=pauses)
    return pauses


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """An HTTP client whose requests come from this address."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with an address of its own, so throttling counts only this test's calls."""
    address = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **form: str
) -> httpx.Response:
    """POST the OAuth2 password form; a cookie sign-in as the platform's own page sends it."""
    headers = BROWSER_SAME_ORIGIN if form.get("session") == "cookie" else {}
    return await client.post(
        "/api/v1/auth/token",
        data={"username": email, "password": password, **form},
        headers=headers,
    )


# --- the outbox: what registration tells, read as the mailbox would ------------------------

ACTIVATION_LINK = re.compile(r"(\S+)/#/activate/([A-Za-z0-9_-]+)")


async def messages_to(session: AsyncSession, email: str) -> list[OutboxMessage]:
    """The outbox's messages to this address, oldest first, as stored now."""
    found = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to_address == email.strip().lower())
        .order_by(OutboxMessage.created_at)
        .execution_options(populate_existing=True)
    )
    return list(found.all())


async def only_message_to(session: AsyncSession, email: str) -> OutboxMessage:
    """The one message to this address, asserting there is exactly one."""
    (message,) = await messages_to(session, email)
    return message


def activation_token(message: OutboxMessage) -> str:
    """The token of the activation link in a message."""
    assert message.kind == "activation", message.kind
    assert message.body is not None
    found = ACTIVATION_LINK.search(message.body)
    assert found is not None, message.body
    return found.group(2)


async def register_and_activate(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any]
) -> dict[str, Any]:
    """Register through the API and follow the link of the message: the active account."""
    answer = await client.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 202, answer.text
    token = activation_token((await messages_to(session, body["email"]))[-1])
    activated = await client.post(
        "/api/v1/auth/activate", json={"token": token, "password": body["password"]}
    )
    assert activated.status_code == 200, activated.text
    user: dict[str, Any] = activated.json()
    return user


# What a browser adds to a POST from the platform's own page at http://testserver.
BROWSER_SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}

# --- registration and bidder keys over the API ---------------------------------------------

REGISTER = "/api/v1/auth/register"


def registration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"Bidder-{uuid.uuid4().hex[:8]}@Example.com",
        "password": "a long enough passphrase",
        "display_name": "Li Wei",
        "organization": {"name": "Fujian Road Works Co., Ltd.", "code": credit_code()},
    }
    body.update(changes)
    return body


KEYS = "/api/v1/me/keys"


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], identity: age.Identity
) -> httpx.Response:
    return await client.put(KEYS, json={"recipient": str(identity.recipient)}, headers=headers)


async def check(
    client: httpx.AsyncClient, headers: dict[str, str], identity: age.Identity
) -> httpx.Response:
    """Ask for a challenge, unseal it with the identity, answer it."""
    asked = await client.post(f"{KEYS}/challenge", headers=headers)
    assert asked.status_code == 200, asked.text
    sealed = base64.b64decode(asked.json()["challenge"])
    plaintext = age.unseal_bytes(sealed, [identity]).decode()
    return await client.post(
        f"{KEYS}/challenge/answer", json={"answer": plaintext}, headers=headers
    )
