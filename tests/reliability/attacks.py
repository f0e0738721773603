"""Helpers of the attack tests (tests/reliability/test_attacks_*.py): the error shape every
refusal must have, a fingerprint of the whole database to prove that nothing was written, and
settings whose rate limits stay out of the way of tests that send many requests."""

import hashlib
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.models import Base
from bidding.settings import Settings

# Statuses the issue allows for a refused body.
BODY_REFUSALS = (400, 413, 415, 422)


def assert_error_shape(
    response: httpx.Response, *statuses: int, case: object = None
) -> dict[str, Any]:
    """The response is one of the statuses and the project's JSON error {"type", "detail"}."""
    assert response.status_code in statuses, (case, response.status_code, response.text[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str) and body["type"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


async def fingerprint(session: AsyncSession) -> dict[str, str]:
    """A digest of every row of every table: equal before and after means nothing was written."""
    digests = {}
    for table in Base.metadata.sorted_tables:
        rows = sorted(repr(tuple(row)) for row in (await session.execute(select(table))).all())
        digests[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


def generous_settings(data_dir: Path, database_url: str, **changes: Any) -> Settings:
    """Settings for tests that send hundreds of requests: every rate limit far away."""
    generous = {
        name: "1000000/second" for name in Settings.model_fields if name.startswith("rate_limit")
    }
    values: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url, "demo": False}
    return Settings(**(values | generous | changes))
