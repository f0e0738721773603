"""Auth-only fixtures: the app with probe routes guarded by each kind of dependency."""

import dataclasses
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from bidding.auth.dependencies import (
    Admin,
    CurrentUser,
    Officer,
    OptionalUser,
    require_roles,
)
from bidding.auth.models import Role, User
from tests.factories import PASSWORD

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


# What a browser adds to a POST from the platform's own page at http://testserver.
BROWSER_SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
