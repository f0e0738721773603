"""A platform for the bidder's command: `bidding serve` with an officer and a bidder created by
the operator's command, and the in-process app behind the bidder client's blocking transport."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import PASSWORD, credit_code
from tests.support.processes import bidding, bidding_env, serving

# A bid form that the fields of tests.tenders.conftest.tender_body accept.
FORM = {"price": "1180000.50", "duration_days": 180}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`bidding serve` on a fresh data dir, with an officer and a bidder created by the CLI."""
    data_dir = tmp_path_factory.mktemp("var")
    env = bidding_env(data_dir, BIDDING_DEMO="0", BIDDING_MIN_BIDDING_PERIOD_SECONDS="0")
    for role in ("officer", "bidder"):
        created = bidding(
            "users", "create", "--email", f"{role}@example.com", "--password-stdin",
            "--role", role, "--org-name", f"{role} org", "--org-code", credit_code(),
            stdin=f"{PASSWORD}\n".encode(), env=env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    with serving(env, logs=data_dir, seconds=30) as served:
        yield served.url


def sign_in(server: str, email: str) -> str:
    response = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


class AppTransport(httpx.BaseTransport):
    """A blocking transport for a client in a worker thread, answered by the app on the loop."""

    def __init__(self, app: object, loop: asyncio.AbstractEventLoop) -> None:
        self.app = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()  # drains the upload's blocks, as a socket would
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        async def send() -> httpx.Response:
            response = await self.app.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(send(), self.loop).result()
