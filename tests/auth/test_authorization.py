"""The authorization matrix of the accounts part, role by role (tender routes: tests/tenders)."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import Role
from tests.factories import bearer, create_user

ANONYMOUS = None
EVERYONE = (ANONYMOUS, Role.admin, Role.officer, Role.supervisor, Role.bidder)

# route -> the roles that get in; everyone else gets 401 (anonymous) or 403 (signed in).
# Admins manage accounts and are no officers: the one who runs the platform does not also
# publish tenders and see what only a tender's officers see.
MATRIX: dict[str, set[Role | None]] = {
    "GET /api/v1/me": {Role.admin, Role.officer, Role.supervisor, Role.bidder},
    "POST /api/v1/probe/signed-in": {Role.admin, Role.officer, Role.supervisor, Role.bidder},
    "POST /api/v1/probe/officer": {Role.officer},
    "POST /api/v1/probe/admin": {Role.admin},
    "POST /api/v1/probe/oversight": {Role.officer, Role.supervisor},
    "GET /api/v1/probe/anyone": set(EVERYONE),
    "POST /api/v1/auth/logout": set(EVERYONE),
}


class TestMatrix:
    @pytest.mark.parametrize("role", EVERYONE, ids=lambda role: role or "anonymous")
    async def test_each_route_lets_in_exactly_its_roles(
        self, client: httpx.AsyncClient, session: AsyncSession, role: Role | None
    ) -> None:
        # A token per route: logout revokes the one it was called with.
        user = await create_user(session, role=role) if role is not None else None
        outcomes = {}
        for route in MATRIX:
            method, path = route.split(" ")
            headers = await bearer(session, user) if user is not None else {}
            response = await client.request(method, path, headers=headers)
            outcomes[route] = response.status_code
            if response.status_code == 403:
                assert response.json()["type"] == "forbidden"
                assert response.json()["roles"]  # names what would have been needed

        def expected(route: str) -> int:
            if role in MATRIX[route]:
                return 204 if route.endswith("logout") else 200
            return 401 if role is None else 403

        assert outcomes == {route: expected(route) for route in MATRIX}

    @pytest.mark.parametrize("role", list(Role))
    async def test_me_shows_the_role_and_organization(
        self, client: httpx.AsyncClient, session: AsyncSession, role: Role
    ) -> None:
        user = await create_user(session, role=role)
        me = (await client.get("/api/v1/me", headers=await bearer(session, user))).json()
        assert me["role"] == role.value
        if role is Role.admin:
            assert me["organization"] is None
        else:
            assert set(me["organization"]) == {"id", "name", "code"}
