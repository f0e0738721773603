"""Numbers at the edge of what the database holds, in every place a client gives one: a page
or position past 64 bits is refused with 422 (or the room's 4400), never a 500 or a dropped
connection, on SQLite and PostgreSQL alike."""

from pathlib import Path
from typing import Any

import pytest

from bidding.auth.models import Role
from bidding.db import create_session_factory
from bidding.opening.endpoints import CLOSE_BAD_REQUEST
from bidding.settings import Settings
from tests.factories import bearer, create_user
from tests.reliability.attacks import generous_settings
from tests.support.live import closing, watch
from tests.support.scene import LiveServer, Scene
from tests.tenders.conftest import TENDERS

HUGE = [str(2**63), "9" * 30, "-1", "1e3", "0x10"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return generous_settings(tmp_path, database_url)


async def admin_headers(scene: Scene) -> dict[str, str]:
    async with create_session_factory(scene.engine)() as session:
        admin = await create_user(session, role=Role.admin)
        headers = await bearer(session, admin)
        await session.commit()
    return headers


class TestNumbersAtTheEdge:
    @pytest.mark.parametrize("number", HUGE)
    async def test_positions_and_pages_past_what_the_database_holds_are_422(
        self, scene: Scene, number: str
    ) -> None:
        tender: dict[str, Any] = await scene.tender()
        await scene.pass_deadline(tender)
        await scene.open(tender)
        assert scene.officer is not None
        base = f"{TENDERS}/{tender['id']}"
        asks = [
            (f"{base}/opening/events", {"after": number}, scene.officer.headers),
            (f"{base}/log/leaves", {"start": number}, scene.officer.headers),
            (TENDERS, {"page": number}, {}),
            ("/api/v1/audit", {"after": number}, await admin_headers(scene)),
            ("/api/v1/audit", {"after": number, "tender_id": tender["id"]}, scene.officer.headers),
        ]
        for path, params, headers in asks:
            response = await scene.client.get(path, params=params, headers=headers)
            assert response.status_code == 422, (path, params, response.text)
            assert response.json()["type"] == "validation_error"

    @pytest.mark.parametrize("number", [str(2**31), "999999999999", "9" * 13])
    async def test_the_live_room_refuses_a_position_it_cannot_hold(
        self, scene: Scene, live_server: LiveServer, number: str
    ) -> None:
        tender: dict[str, Any] = await scene.tender(public_opening=True)
        room = live_server.room(tender).replace("after=0", f"after={number}")
        async with watch(room) as ws:
            code, reason, messages = await closing(ws)
        assert code == CLOSE_BAD_REQUEST, (code, reason)
        assert "after" in reason
        assert messages == []
