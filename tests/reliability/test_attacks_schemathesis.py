"""Schemathesis against the API's own OpenAPI document: every operation,
with generated valid and invalid input, called as each kind of user (an admin, the tenders'
officer, a supervisor of their organization, a bidder that bid, anonymous), in process against
the app as `bidding serve` builds it (its lifespan, scheduler and live hub included). No answer
is a 5xx, and every answer matches what the document declares: status, media type, headers
and body schema.

Real data is there first, so that ids exist: a draft, a published tender with a document and
a bid, an opened tender (three bids, the log sealed, the record signed). Path ids and leaf
hashes that Schemathesis generates as UUIDs or hashes are mostly swapped for these.
"""

import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi as schemathesis_asgi
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding.app import create_app
from bidding.auth.models import Organization, Role
from bidding.db import create_session_factory
from bidding.keys import load_platform_keys
from bidding.models import Base
from bidding.settings import Settings
from tests.factories import bearer, create_user
from tests.reliability.attacks import generous_settings
from tests.support.scene import Scene
from tests.tenders.conftest import TENDERS, tender_body

EXAMPLES = 5  # generated cases per operation (besides its coverage cases), each sent as 5 users
ROLES = ("admin", "officer", "supervisor", "bidder", "anonymous")
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": EXAMPLES},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"positive_data_acceptance": {"enabled": False}},
    }
)

# The document is loaded from an app in process once, at collection, to make one test per
# operation; each test then calls the app of its own database (`case.call(app=...)`).
# (schemathesis.pytest.from_fixture would load it per test, but reads a pytest node attribute
# that pytest 9 no longer has.)
_DOCUMENT_APP = create_app(
    Settings(data_dir=Path(tempfile.gettempdir()) / "bidding-openapi", demo=False),
    manage_state=False,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _DOCUMENT_APP, config=CONFIG)


@dataclass
class World:
    """The app under test and what exists in its database before Schemathesis starts."""

    app: FastAPI
    tenders: list[str]
    documents: list[str]
    leaf_hashes: list[str]
    headers: dict[str, dict[str, str]]
    # Signing out revokes the token it is sent with: each sign-out gets a token of its own.
    spare_tokens: dict[str, list[str]] = field(default_factory=dict)


async def _seed(scene: Scene) -> dict[str, Any]:
    opened = await scene.tender()
    bidder = await scene.bidder("Seeded Bidder Ltd")
    form = {"price": "1000000.00", "duration_days": 9}
    receipts = [await scene.bid(opened, form, party=bidder)]
    for price in ("950000.00", "1100000.00"):
        receipts.append(await scene.bid(opened, form | {"price": price}))
    await scene.pass_deadline(opened)
    await scene.open(opened)
    published = await scene.tender()
    receipts.append(await scene.bid(published, form | {"price": "990000.00"}, party=bidder))
    assert scene.officer is not None
    officer = scene.officer
    document = await scene.client.post(
        f"{TENDERS}/{published['id']}/documents",
        params={"name": "drawings.pdf", "reason": "the drawings"},
        content=b"%PDF-1.7 drawings",
        headers={**officer.headers, "Content-Type": "application/pdf"},
    )
    assert document.status_code == 201, document.text
    draft = await scene.client.post(TENDERS, json=tender_body(), headers=officer.headers)
    assert draft.status_code == 201, draft.text

    headers = {"officer": officer.headers, "bidder": bidder.headers, "anonymous": {}}
    spare: dict[str, list[str]] = {}
    async with create_session_factory(scene.engine)() as session:
        organization = await session.get(Organization, officer.user.organization_id)
        supervisor = await create_user(session, role=Role.supervisor, organization=organization)
        admin = await create_user(session, role=Role.admin)
        headers["supervisor"] = await bearer(session, supervisor)
        headers["admin"] = await bearer(session, admin)
        users = {"officer": officer.user, "bidder": bidder.user}
        users |= {"supervisor": supervisor, "admin": admin}
        for role, user in users.items():
            spare[role] = [
                (await bearer(session, user))["Authorization"] for _ in range(4 * EXAMPLES + 40)
            ]
        await session.commit()
    return {
        "tenders": [opened["id"], published["id"], draft.json()["id"]],
        "documents": [document.json()["id"]],
        "leaf_hashes": [receipt["leaf_hash"] for receipt in receipts],
        "headers": headers,
        "spare_tokens": spare,
    }


@pytest.fixture(scope="module")
async def world(
    engine: AsyncEngine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The seeded database, and the app as `bidding serve` builds it, on the same data folder."""
    settings = generous_settings(tmp_path_factory.mktemp("schemathesis"), database_url)
    keys = load_platform_keys(settings)  # the app loads the same from its data folder
    seeding = create_app(settings, manage_state=False)
    seeding.state.session_factory = create_session_factory(engine)
    seeding.state.keys = keys
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=seeding)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            seeded = await _seed(Scene(seeding, engine, keys, client))
        yield World(app=app, **seeded)
    finally:
        # The app's lifespan (engine, scheduler, live hub) ends before the data is emptied.
        schemathesis_asgi.shutdown_lifespans()
        async with engine.begin() as connection:
            # As tests/conftest.py's committing_app: the audit trail refuses deletions on
            # PostgreSQL, so it is emptied as an administrator would.
            postgresql = connection.dialect.name == "postgresql"
            if postgresql:
                await connection.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
            if postgresql:
                await connection.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))


def _aim(generated: Any, choices: list[str]) -> Any:
    """A generated UUID or hash swapped for a seeded one, three times in four."""
    if not isinstance(generated, str) or not choices:
        return generated
    digest = hashlib.sha256(generated.encode()).digest()
    if digest[0] % 4 == 3:
        return generated
    return choices[digest[1] % len(choices)]


def aim(case: Any, world: World) -> None:
    """Point the case at the seeded data where it names ids."""
    path = case.path_parameters or {}
    if "tender_id" in path and _is_uuid(path["tender_id"]):
        path["tender_id"] = _aim(path["tender_id"], world.tenders)
    if "document_id" in path and _is_uuid(path["document_id"]):
        path["document_id"] = _aim(path["document_id"], world.documents)
    query = case.query or {}
    if isinstance(query.get("leaf_hash"), str) and len(query["leaf_hash"]) == 64:
        query["leaf_hash"] = _aim(query["leaf_hash"], world.leaf_hashes)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@pytest.mark.slow
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_every_answer_matches_the_document_for_every_role(case: Any, world: World) -> None:
    aim(case, world)
    for role in ROLES:
        headers = dict(world.headers[role])
        if case.operation.path.endswith("/auth/logout") and role != "anonymous":
            headers["Authorization"] = world.spare_tokens[role].pop()
        case.call_and_validate(headers=headers, app=world.app)


# --- what Schemathesis found, each on its own ------------------------------------------------


async def test_a_405_names_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    # Starlette answered with the methods of the first route on the path alone.
    tender = f"{TENDERS}/{uuid.uuid4()}"
    for path, methods in (
        (TENDERS, "GET, HEAD, POST"),
        (tender, "GET, HEAD, PATCH"),
        (f"{tender}/bids/mine", "DELETE, GET, HEAD"),
        (f"{tender}/documents/{uuid.uuid4()}", "DELETE, GET, HEAD"),
        ("/api/v1/me/keys", "GET, HEAD, PUT"),
    ):
        response = await client.request("OPTIONS", path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == methods, path
        assert response.json()["type"] == "method_not_allowed"


def test_a_documents_download_is_documented_in_any_media_type() -> None:
    operation = _DOCUMENT_APP.openapi()["paths"][
        f"{TENDERS}/{{tender_id}}/documents/{{document_id}}"
    ]
    assert set(operation["get"]["responses"]["200"]["content"]) == {"*/*"}
