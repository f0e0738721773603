"""Sealed bids handed in over the API: open tenders, sealed files, uploads, and the keys that
check their receipts."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.types import Scope

from bidding.auth.models import Role
from bidding.crypto import age
from bidding.crypto.signing import VerifyKey
from bidding.db import create_session_factory
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import bearer, create_user
from tests.tenders.conftest import TENDERS, create_tender

OCTETS = {"Content-Type": "application/octet-stream"}


async def open_tender(session: AsyncSession, **columns: object) -> Tender:
    officer = await create_user(session, role=Role.officer)
    return await create_tender(session, officer=officer, status=TenderStatus.published, **columns)


def sealed(text: bytes = b'{"price": "1000000.00"}') -> bytes:
    return age.seal_bytes(text, [age.Identity.generate().recipient])


async def submit(
    client: httpx.AsyncClient, tender: Tender, headers: dict[str, str], body: bytes, **extra: str
) -> httpx.Response:
    return await client.post(
        f"{TENDERS}/{tender.id}/bids", content=body, headers={**OCTETS, **headers, **extra}
    )


async def keys(client: httpx.AsyncClient) -> dict[str, VerifyKey]:
    listed = (await client.get("/api/v1/keys")).json()["keys"]
    return {k["key_id"]: VerifyKey.from_dict(k) for k in listed}


async def published_tender(
    engine: AsyncEngine, *, bidders: int, **columns: Any
) -> tuple[uuid.UUID, list[dict[str, str]]]:
    """A committed, published tender and the headers of bidders of distinct organizations."""
    async with create_session_factory(engine)() as session:
        officer = await create_user(session, role=Role.officer)
        tender = await create_tender(
            session, officer=officer, status=TenderStatus.published, **columns
        )
        headers = [
            await bearer(session, await create_user(session, role=Role.bidder))
            for _ in range(bidders)
        ]
        await session.commit()
        return tender.id, headers


async def overlapping(body: bytes, everyone_started: asyncio.Barrier) -> AsyncIterator[bytes]:
    """An upload that finishes only once every upload of the group has begun."""
    yield body[:64]
    await asyncio.wait_for(everyone_started.wait(), timeout=20)
    for start in range(64, len(body), 4096):
        await asyncio.sleep(0)
        yield body[start : start + 4096]


async def upload(
    client: httpx.AsyncClient,
    tender_id: uuid.UUID,
    headers: dict[str, str],
    body: bytes,
    everyone_started: asyncio.Barrier,
) -> httpx.Response:
    return await client.post(
        f"{TENDERS}/{tender_id}/bids",
        content=overlapping(body, everyone_started),
        headers={**OCTETS, **headers},
    )


def post_scope(path: str, headers: dict[str, str]) -> Scope:
    """The ASGI scope of a POST as a server hands it to the app."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


def padded_header(stanzas: list[age.Stanza], file_key: bytes, length: int) -> bytes:
    """A valid header of exactly `length` bytes: the stanzas and one unknown stanza of padding,
    which age skips (as it must skip any stanza type it does not know)."""
    fixed = len(age.encode_header(stanzas, file_key))
    room = length - fixed  # what the padding stanza must take, its lines and newlines
    body = bytes(max(room - 200, 0) * 64 // 65 * 3 // 4)
    short = room - len(age.Stanza("pad", ("x",), body).encode())
    assert short >= 0, "length too small to pad to"
    padding = age.Stanza("pad", ("x" * (1 + short),), body)
    header = age.encode_header([*stanzas, padding], file_key)
    assert len(header) == length
    return header
