"""A scene for openings on real transactions: a published tender, bidders, sealed bids, the
deadline passing, and the pipeline run as the scheduler runs it."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding.auth.models import Role, User
from bidding.crypto import age
from bidding.db import create_session_factory, utcnow
from bidding.keys import PlatformKeys
from bidding.opening import lease, pipeline
from bidding.opening.live import MAX_CLIENT_FRAME_BYTES, Hub
from bidding.tenders.blobs import FilesystemBlobStore
from bidding.tenders.models import Tender
from bidding.tenders.schemas import TenderCreate
from tests.factories import bearer, create_organization, create_user
from tests.tenders.conftest import TENDERS, tender_body
from tests.test_serve import free_port

OCTETS = {"Content-Type": "application/octet-stream"}


@dataclass
class Party:
    """A signed-in user of the scene."""

    user: User
    headers: dict[str, str]


@dataclass
class Scene:
    """Builds openings through the API, with the deadline moved by hand instead of waited for."""

    app: FastAPI
    engine: AsyncEngine
    keys: PlatformKeys
    client: httpx.AsyncClient
    officer: Party | None = None
    bidders: list[Party] = field(default_factory=list)
    # What openings run by the scene call after each commit: a live hub's notify, if any.
    announce: Callable[[uuid.UUID], None] | None = None

    async def _party(self, role: Role, name: str) -> Party:
        async with create_session_factory(self.engine)() as session:
            organization = await create_organization(session, name=name)
            user = await create_user(session, role=role, organization=organization)
            headers = await bearer(session, user)
            await session.commit()
        return Party(user, headers)

    async def tender(self, **changes: Any) -> dict[str, Any]:
        """A published tender of a new officer's organization."""
        if self.officer is None:
            self.officer = await self._party(Role.officer, "Fuzhou Transport Bureau")
        body = tender_body(**changes)
        TenderCreate.model_validate(body)
        created = await self.client.post(TENDERS, json=body, headers=self.officer.headers)
        assert created.status_code == 201, created.text
        tender_id = created.json()["id"]
        published = await self.client.post(
            f"{TENDERS}/{tender_id}/publish", headers=self.officer.headers
        )
        assert published.status_code == 200, published.text
        result: dict[str, Any] = published.json()
        return result

    async def bidder(self, name: str | None = None) -> Party:
        party = await self._party(Role.bidder, name or f"Bidder {len(self.bidders) + 1} Ltd")
        self.bidders.append(party)
        return party

    async def bid(
        self,
        tender: dict[str, Any],
        form: dict[str, Any] | bytes,
        *,
        party: Party | None = None,
        recipient: age.Recipient | None = None,
        recipients: list[age.Recipient] | None = None,
    ) -> dict[str, Any]:
        """A new bidder seals the form to the tender (or to other recipients) and hands it in."""
        party = party or await self.bidder()
        plaintext = form if isinstance(form, bytes) else json.dumps(form).encode()
        recipient = recipient or age.Recipient.parse(tender["opening_recipient"])
        response = await self.client.post(
            f"{TENDERS}/{tender['id']}/bids",
            content=age.seal_bytes(plaintext, recipients or [recipient]),
            headers={**OCTETS, **party.headers},
        )
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt

    async def pass_deadline(self, tender: dict[str, Any]) -> None:
        """Move the deadline to now: no bid can be handed in any more."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(Tender)
                .where(Tender.id == uuid.UUID(tender["id"]))
                .values(bid_deadline=utcnow() - timedelta(milliseconds=1))
            )

    def context(self, instance: str = "test-instance", **changes: Any) -> lease.Context:
        values: dict[str, Any] = {
            "session_factory": create_session_factory(self.engine),
            "keys": self.keys,
            "blobs": self.app.state.blobs,
            "instance": instance,
            "announce": self.announce,
        }
        return lease.Context(**(values | changes))

    async def open(self, tender: dict[str, Any], **changes: Any) -> lease.Claim:
        """Run the opening as the scheduler would, to its end."""
        return await pipeline.run(self.context(**changes), uuid.UUID(tender["id"]))

    async def get(self, tender: dict[str, Any], path: str, **params: Any) -> httpx.Response:
        assert self.officer is not None
        return await self.client.get(
            f"{TENDERS}/{tender['id']}{path}", params=params, headers=self.officer.headers
        )

    async def events(self, tender: dict[str, Any]) -> list[dict[str, Any]]:
        """Every event of the opening, read through the API as the officer."""
        response = await self.get(tender, "/opening/events")
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


@pytest.fixture
async def scene(
    committing_app: FastAPI, engine: AsyncEngine, platform_keys: PlatformKeys
) -> AsyncIterator[Scene]:
    assert isinstance(committing_app.state.blobs, FilesystemBlobStore)
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Scene(committing_app, engine, platform_keys, client)


@dataclass
class LiveServer:
    """The scene's app served by uvicorn on a free port, with a live hub of its own."""

    url: str
    hub: Hub

    def room(self, tender: dict[str, Any], after: int = 0) -> str:
        base = self.url.replace("http", "ws", 1)
        return f"{base}{TENDERS}/{tender['id']}/opening/live?after={after}"


@pytest.fixture
async def live_server(scene: Scene, database_url: str) -> AsyncIterator[LiveServer]:
    """Uvicorn in this event loop, serving the scene's app; its hub hears every commit."""
    hub = Hub(create_session_factory(scene.engine), database_url=database_url, tick_seconds=0.5)
    await hub.start()
    scene.app.state.hub = hub
    scene.announce = hub.notify
    port = free_port()
    config = uvicorn.Config(
        scene.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_max_size=MAX_CLIENT_FRAME_BYTES,
        ws_per_message_deflate=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", hub)
    finally:
        server.should_exit = True
        await serving
        await hub.stop()
        del scene.app.state.hub
