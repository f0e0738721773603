"""The built web pages, served by the app next to the API with a strict security policy."""

import os

import httpx
import pytest

from bidding import frontend


@pytest.fixture
def built() -> None:
    # `make test` builds the pages first; only a bare pytest run may lack them.
    if frontend.pages() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the front end is not built (make test builds it)")
        pytest.skip("the front end is not built: run make test or make run")


class TestPages:
    async def test_the_home_page_loads_its_script_from_the_origin_under_a_strict_policy(
        self, client: httpx.AsyncClient, built: None
    ) -> None:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/app.js"></script>' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        script = await client.get("/app.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]

    async def test_the_api_and_its_docs_are_still_answered_by_the_api(
        self, client: httpx.AsyncClient, built: None
    ) -> None:
        assert (await client.get("/api/v1/health")).json()["database"] == "ok"
        assert (await client.get("/docs")).status_code == 200
        missing = await client.get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/json"
