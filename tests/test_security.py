"""Hardening at the edge: security headers on every answer, CORS closed unless opened, body
limits enforced while reading, hostile JSON on every write endpoint, Secure cookies over
HTTPS, and no secret in any log."""

import base64
import hashlib
import json
import logging
import re
import secrets
import select
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.sync.client import connect as ws_connect

from bidding import client as bidding_client
from bidding import frontend, security
from bidding.app import create_app
from bidding.auth.models import Role
from bidding.crypto import age
from bidding.settings import Settings
from bidding.tenders.models import TenderStatus
from tests.auth.conftest import register_and_activate
from tests.factories import PASSWORD, bearer, create_organization, create_user, credit_code
from tests.support.bidder_mode import bidder_mode_tender, file_key_of
from tests.support.processes import Served, platform_serving
from tests.support.scene import Scene
from tests.tenders.conftest import TENDERS, create_tender, tender_body

API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}
MIB = 1024 * 1024


def https_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as directive -> sources."""
    directives = [d.split() for d in response.headers["content-security-policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


def registration() -> dict[str, Any]:
    return {
        "email": f"bids-{secrets.token_hex(4)}@example.com",
        "password": "a long enough passphrase",
        "display_name": "Bids Desk",
        "organization": {"name": f"Builder {secrets.token_hex(3)}", "code": credit_code()},
    }


# --- headers -------------------------------------------------------------------------------


class TestHeaders:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/api/v1/health", 200),
            ("GET", "/api/v1/me", 401),
            ("GET", "/api/v1/no-such-thing", 404),
            ("POST", "/api/v1/auth/register", 422),
            ("GET", "/openapi.json", 200),
        ],
    )
    async def test_every_api_answer_may_do_nothing_in_a_browser(
        self, client: httpx.AsyncClient, method: str, path: str, status: int
    ) -> None:
        response = await client.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == status
        assert {name: response.headers.get(name) for name in API_HEADERS} == API_HEADERS
        assert "strict-transport-security" not in response.headers

    async def test_hsts_over_https(self, app: FastAPI) -> None:
        async with https_client(app) as client:
            response = await client.get("/api/v1/health")
        assert response.headers["strict-transport-security"] == security.HSTS

    async def test_hsts_always_in_production(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, environment="production", demo=False)
        app = create_app(settings, manage_state=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/v1/no-such-thing")
        assert response.headers["strict-transport-security"] == security.HSTS

    async def test_a_failure_of_the_server_is_json_with_the_headers_and_no_trace(
        self, app: FastAPI
    ) -> None:
        @app.get("/api/v1/broken")
        async def broken() -> None:
            raise RuntimeError("secret internals")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/api/v1/broken")
        assert response.status_code == 500
        assert response.json() == {
            "type": "internal_error",
            "detail": "the server failed; try again later",
        }
        assert {name: response.headers.get(name) for name in API_HEADERS} == API_HEADERS

    async def test_a_page_keeps_its_own_policy_and_gets_the_rest(
        self, client: httpx.AsyncClient
    ) -> None:
        if frontend.pages() is None:
            pytest.skip("the front end is not built")
        page = await client.get("/")
        assert page.headers["content-security-policy"] == frontend.CONTENT_SECURITY_POLICY
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert page.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/redoc"])
    async def test_the_docs_may_run_their_own_inline_script_and_the_cdn_only(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        page = await client.get(path)
        assert page.status_code == 200
        directives = policy(page)
        assert directives["default-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["connect-src"] == ["'self'"]
        scripts = directives["script-src"]
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
        inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
        hashes = {
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in inline
        }
        assert set(scripts) == {"https://cdn.jsdelivr.net", *hashes}
        for source in re.findall(r'<script src="([^"]+)"', page.text):
            assert source.startswith("https://cdn.jsdelivr.net/")
        assert page.headers["x-frame-options"] == "DENY"


# --- CORS ----------------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


class TestCors:
    async def test_closed_by_default(self, client: httpx.AsyncClient) -> None:
        asked = await client.options(
            "/api/v1/tenders", headers=preflight("https://elsewhere.example")
        )
        assert "access-control-allow-origin" not in asked.headers
        read = await client.get("/api/v1/tenders", headers={"Origin": "https://elsewhere.example"})
        assert read.status_code == 200
        assert not [name for name in read.headers if name.startswith("access-control-")]

    async def test_opened_to_the_listed_origins_only_and_without_cookies(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(
            data_dir=tmp_path, demo=False, cors_origins="https://portal.example.gov.cn"
        )
        app = create_app(settings, manage_state=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            allowed = await client.options(
                "/api/v1/tenders", headers=preflight("https://portal.example.gov.cn")
            )
            other = await client.options(
                "/api/v1/tenders", headers=preflight("https://portal.example.gov.cn.evil.example")
            )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example.gov.cn"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in allowed.headers
        assert allowed.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in other.headers

    @pytest.mark.parametrize(
        "origins", ["*", "https://portal.example/", "https://*.example", "portal.example"]
    )
    def test_only_exact_origins_can_be_listed(self, origins: str) -> None:
        with pytest.raises(ValueError, match="an origin is"):
            Settings(cors_origins=origins)


# --- request bodies ------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Small limits: the tests send a few times each, not megabytes.
    return Settings(
        data_dir=tmp_path, database_url=database_url, demo=False, max_json_bytes=64 * 1024
    )


LIMIT = 64 * 1024


class TestBodyLimits:
    async def test_a_declared_length_over_the_limit_is_refused_before_reading(
        self, client: httpx.AsyncClient
    ) -> None:
        body = json.dumps(registration() | {"display_name": "x" * LIMIT}).encode()
        response = await client.post(
            "/api/v1/auth/register", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json() == {
            "type": "payload_too_large",
            "detail": f"the body may be at most {LIMIT} bytes",
            "limit": LIMIT,
        }

    async def test_a_chunked_body_is_counted_as_it_arrives_and_not_read_further(
        self, client: httpx.AsyncClient
    ) -> None:
        pulled = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal pulled
            yield b'{"display_name": "'
            while True:
                pulled += 16 * 1024
                yield b"x" * (16 * 1024)

        response = await client.post(
            "/api/v1/auth/register", content=endless(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["type"] == "payload_too_large"
        assert pulled <= LIMIT + 16 * 1024

    async def test_a_form_is_limited_too(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/token", data={"username": "a@example.com", "password": "x" * LIMIT}
        )
        assert response.status_code == 413

    @pytest.mark.parametrize("length", ["-1", "12abc", "0x10", "1e3", " "])
    async def test_a_length_that_is_no_number_is_refused(
        self, client: httpx.AsyncClient, length: str
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": length},
        )
        assert response.status_code == 400
        assert response.json()["type"] == "bad_length"

    async def test_documents_and_bids_keep_their_own_larger_limits(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        officer = await bearer(session, await create_user(session, role=Role.officer))
        created = await client.post(TENDERS, json=tender_body(), headers=officer)
        tender_id = created.json()["id"]
        document = await client.post(
            f"{TENDERS}/{tender_id}/documents",
            params={"name": "drawings.pdf"},
            content=secrets.token_bytes(4 * LIMIT),
            headers={**officer, "Content-Type": "application/pdf"},
        )
        assert document.status_code == 201, document.text
        published = await client.post(f"{TENDERS}/{tender_id}/publish", headers=officer)
        recipient = age.Recipient.parse(published.json()["opening_recipient"])
        bidder = await bearer(session, await create_user(session))
        sealed = age.seal_bytes(secrets.token_bytes(4 * LIMIT), [recipient])
        bid = await client.post(
            f"{TENDERS}/{tender_id}/bids",
            content=sealed,
            headers={**bidder, "Content-Type": "application/octet-stream"},
        )
        assert bid.status_code == 201, bid.text


# Every write endpoint that takes JSON, and who may call it: hostile bodies must meet the
# endpoint's validation, not an authorization refusal. A new one belongs here.
JSON_WRITES = {
    ("POST", "/api/v1/auth/register"): "anonymous",
    ("POST", "/api/v1/auth/activate"): "anonymous",
    ("PUT", "/api/v1/me/keys"): "bidder",
    ("POST", "/api/v1/me/keys/challenge/answer"): "bidder",
    ("POST", "/api/v1/tenders"): "officer",
    ("PATCH", "/api/v1/tenders/{tender_id}"): "officer",
    ("POST", "/api/v1/tenders/{tender_id}/cancel"): "officer",
    ("POST", "/api/v1/tenders/{tender_id}/opening/objections"): "bidder",
    ("POST", "/api/v1/tenders/{tender_id}/opening/objections/{objection_id}/answer"): "officer",
    ("POST", "/api/v1/tenders/{tender_id}/opening/reveal"): "bidder",
}


def nested(depth: int) -> bytes:
    return b'{"x": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE = {
    "malformed": (b'{"email": "a@example.com", ', {422}),
    "not_utf8": (b'{"email": "\xff\xfe"}', {400, 422}),
    "nan": (b'{"x": NaN}', {422}),
    "deeply_nested": (nested(30_000), {400, 422}),  # past any parser's recursion
    "nested_below_the_parser_limit": (nested(900), {422}),
    "huge": (b'{"x": "' + b"a" * LIMIT + b'"}', {413}),
    "array": (b"[]", {422}),
    "string": (b'"text"', {422}),
    "number": (b"42", {422}),
    "null": (b"null", {422}),
    "empty_object": (b"{}", {422}),
}


class TestHostileJson:
    @pytest.fixture
    async def callers(
        self, session: AsyncSession, client: httpx.AsyncClient
    ) -> dict[str, dict[str, str]]:
        buyer = await create_organization(session, name="Buyer")
        officer = await create_user(session, role=Role.officer, organization=buyer)
        tender = await create_tender(session, officer=officer, status=TenderStatus.published)
        self.tender_id = str(tender.id)
        return {
            "anonymous": {},
            "officer": await bearer(session, officer),
            "bidder": await bearer(session, await create_user(session)),
        }

    def url(self, path: str) -> str:
        return path.format(tender_id=self.tender_id, objection_id=secrets.token_hex(16))

    def test_the_table_names_every_json_write_endpoint(self, app: FastAPI) -> None:
        found = {
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
            if "application/json" in operation.get("requestBody", {}).get("content", {})
        }
        assert found == JSON_WRITES.keys()

    @pytest.mark.parametrize("endpoint", list(JSON_WRITES))
    @pytest.mark.parametrize("kind", list(HOSTILE))
    async def test_a_hostile_body_is_a_client_error_in_the_error_shape(
        self,
        client: httpx.AsyncClient,
        callers: dict[str, dict[str, str]],
        endpoint: tuple[str, str],
        kind: str,
    ) -> None:
        method, path = endpoint
        body, expected = HOSTILE[kind]
        if kind == "empty_object" and method == "PATCH":
            expected = {200}  # an empty patch changes nothing, and says so
        response = await client.request(
            method,
            self.url(path),
            content=body,
            headers={**callers[JSON_WRITES[endpoint]], "Content-Type": "application/json"},
        )
        assert response.status_code in expected, response.text
        answer = response.json()
        if response.status_code == 200:
            return
        assert isinstance(answer["type"], str) and isinstance(answer["detail"], str)
        if response.status_code == 422:
            assert answer["type"] == "validation_error"
            assert answer["errors"] and all(
                {"field", "message"} <= e.keys() for e in answer["errors"]
            )

    @pytest.mark.parametrize("endpoint", list(JSON_WRITES))
    async def test_every_field_of_the_wrong_type_is_named(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        callers: dict[str, dict[str, str]],
        endpoint: tuple[str, str],
    ) -> None:
        method, path = endpoint
        schema = app.openapi()
        operation = schema["paths"][path][method.lower()]
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
        # No field of any endpoint takes a list of objects with a key "wrong".
        body = {name: [{"wrong": True}] for name in model["properties"]}
        response = await client.request(
            method, self.url(path), json=body, headers=callers[JSON_WRITES[endpoint]]
        )
        assert response.status_code == 422, response.text
        answer = response.json()
        assert answer["type"] == "validation_error"
        named = {e["field"].split(".")[1] for e in answer["errors"] if e["field"].count(".")}
        assert named == set(model["properties"])

    async def test_the_sign_in_form_refuses_a_wrong_session_kind(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/api/v1/auth/token",
            data={"username": "a@example.com", "password": "x", "session": "websocket"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.session"


# --- cookies -------------------------------------------------------------------------------


def cookie_flags(response: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h.lower() for h in response.headers.get_list("set-cookie")}


class TestSecureCookies:
    async def sign_in(self, client: httpx.AsyncClient, email: str) -> httpx.Response:
        response = await client.post(
            "/api/v1/auth/token",
            data={"username": email, "password": PASSWORD, "session": "cookie"},
            headers={"Origin": str(client.base_url).rstrip("/")},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        return response

    async def test_over_plain_http_in_development_the_cookies_are_not_secure(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        flags = cookie_flags(await self.sign_in(client, (await create_user(session)).email))
        assert {"bidding_session", "bidding_csrf"} == flags.keys()
        assert not any("secure" in value for value in flags.values())

    async def test_over_https_the_cookies_are_secure_whatever_the_setting(
        self, app: FastAPI, session: AsyncSession
    ) -> None:
        user = await create_user(session)
        async with https_client(app) as client:
            flags = cookie_flags(await self.sign_in(client, user.email))
            assert all("; secure" in value for value in flags.values())
            signed_out = await client.post(
                "/api/v1/auth/logout", headers={"X-CSRF-Token": client.cookies["bidding_csrf"]}
            )
        assert all("; secure" in value for value in cookie_flags(signed_out).values())

    async def test_in_production_the_cookies_are_secure(
        self, settings: Settings, session: AsyncSession, app: FastAPI
    ) -> None:
        app.state.settings = settings.model_copy(update={"environment": "production"})
        user = await create_user(session)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            flags = cookie_flags(await self.sign_in(client, user.email))
        assert all("; secure" in value for value in flags.values())


# --- logs ----------------------------------------------------------------------------------


class TestNoSecretInLogs:
    async def test_accounts_sessions_and_key_checks_log_no_secret_at_any_level(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        secrets_seen: list[str] = []
        account = registration()
        secrets_seen.append(account["password"])
        await register_and_activate(client, session, account)
        wrong = await client.post(
            "/api/v1/auth/token", data={"username": account["email"], "password": "not it at all"}
        )
        assert wrong.status_code == 401
        secrets_seen.append("not it at all")
        form = {"username": account["email"], "password": account["password"]}
        bearer_token = (await client.post("/api/v1/auth/token", data=form)).json()["access_token"]
        cookie_answer = await client.post(
            "/api/v1/auth/token",
            data=form | {"session": "cookie"},
            headers={"Origin": "http://testserver"},
        )
        csrf = cookie_answer.json()["csrf_token"]
        secrets_seen += [bearer_token, cookie_answer.json()["access_token"], csrf]

        identity = age.Identity.generate()
        secrets_seen.append(str(identity))
        # With the cookie session and its CSRF token, as the page does.
        registered = await client.put(
            "/api/v1/me/keys",
            json={"recipient": str(identity.recipient)},
            headers={"X-CSRF-Token": csrf},
        )
        assert registered.status_code == 200, registered.text
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {bearer_token}"}
        asked = await client.post("/api/v1/me/keys/challenge", headers=headers)
        plaintext = age.unseal_bytes(base64.b64decode(asked.json()["challenge"]), [identity])
        secrets_seen.append(plaintext.decode())
        answered = await client.post(
            "/api/v1/me/keys/challenge/answer", json={"answer": plaintext.decode()}, headers=headers
        )
        assert answered.status_code == 200, answered.text

        assert caplog.records, "nothing was captured: the test would prove nothing"
        logged = "\n".join(record.getMessage() for record in caplog.records)
        logged += "\n".join(repr(record.__dict__) for record in caplog.records)
        for secret in secrets_seen:
            assert secret not in logged

    async def test_a_revealed_file_key_is_logged_nowhere(
        self,
        scene: Scene,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        tender, identities = await bidder_mode_tender(scene, backup=False)
        await scene.pass_deadline(tender)
        await scene.open(tender)
        caplog.set_level(logging.DEBUG)
        party = scene.bidders[0]
        file_key = await file_key_of(scene, tender, party, identities[0])
        encoded = base64.b64encode(file_key).decode()
        answer = await scene.client.post(
            f"{TENDERS}/{tender['id']}/opening/reveal",
            json={"file_key": encoded},
            headers=party.headers,
        )
        assert answer.status_code == 201, answer.text
        assert caplog.records
        logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
        token = party.headers["Authorization"].removeprefix("Bearer ")
        for secret in (encoded, file_key.hex(), str(identities[0]), token):
            assert secret not in logged


# --- a real `bidding serve` ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with platform_serving(
        tmp_path_factory.mktemp("served") / "var",
        BIDDING_RATE_LIMIT_SIGN_IN="3/minute",
        BIDDING_MAX_BID_BYTES=str(16 * MIB),
    ) as server:
        yield server


def activate_from_the_log(served: Served, http: httpx.Client, account: dict[str, Any]) -> None:
    """Follow the activation link that the server (development, no SMTP) wrote to its log,
    from an address of its own: the server limits sign-ins and activations per address."""
    deadline = time.monotonic() + 30
    while True:
        after = served.output().partition(f"to {account['email']}")[2]
        if (found := _LOGGED_LINK.search(after)) is not None:
            break
        assert time.monotonic() < deadline, "no activation link in the server's log"
        time.sleep(0.2)
    activated = http.post(
        "/api/v1/auth/activate",
        json={"token": found.group(1), "password": account["password"]},
        headers={"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250)}"},
    )
    assert activated.status_code == 200, activated.text


_LOGGED_LINK = re.compile(r"/#/activate/([A-Za-z0-9_-]+)")


def sign_in(served: Served, email: str, password: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        return http.post(
            "/api/v1/auth/token",
            data={"username": email, "password": password, "session": "cookie"},
            headers={"Origin": served.url, **headers},
        )


@pytest.mark.process
class TestBehindAProxy:
    def test_the_trusted_proxy_tells_the_scheme_and_the_client(self, served: Served) -> None:
        email, password = served.create_officer()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        answer = sign_in(served, email, password, **proxied)
        assert answer.status_code == 200
        assert all("; secure" in v for v in cookie_flags(answer).values())
        assert answer.headers["strict-transport-security"] == security.HSTS
        plain = sign_in(served, email, password, **{"X-Forwarded-For": "203.0.113.7"})
        assert not any("secure" in v for v in cookie_flags(plain).values())
        assert "strict-transport-security" not in plain.headers

        # The limit counts the client the proxy names (3 a minute on this server).
        assert sign_in(served, email, password, **proxied).status_code == 200
        throttled = sign_in(served, email, password, **proxied)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
        assert throttled.json()["type"] == "too_many_requests"
        other = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.8"}
        assert sign_in(served, email, password, **other).status_code == 200

    def test_headers_from_an_untrusted_peer_are_ignored(self, tmp_path: Path) -> None:
        with platform_serving(
            tmp_path / "var",
            "--forwarded-allow-ips",
            "192.0.2.1",
            BIDDING_RATE_LIMIT_SIGN_IN="2/minute",
        ) as server:
            email, password = server.create_officer()
            answers = [
                sign_in(
                    server,
                    email,
                    password,
                    **{"X-Forwarded-Proto": "https", "X-Forwarded-For": f"203.0.113.{n}"},
                )
                for n in range(3)
            ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert not any("secure" in v for v in cookie_flags(answers[0]).values())
        assert "strict-transport-security" not in answers[0].headers


def raw_exchange(served: Served, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request's head, then body chunks until the server answers; its first line."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        for chunk in body_chunks:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable:
                break
            try:
                connection.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        while b"\r\n" not in answer:
            try:
                received = connection.recv(65536)
            except ConnectionResetError:
                break
            if not received:
                break
            answer += received
    return answer.split(b"\r\n", 1)[0]


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(total: int, first: bytes = b"") -> Iterator[bytes]:
    """A chunked body that goes on for `total` bytes without ever ending."""
    sent = 0
    block = b"x" * (64 * 1024)
    if first:
        yield b"%x\r\n%s\r\n" % (len(first), first)
    while sent < total:
        sent += len(block)
        yield b"%x\r\n%s\r\n" % (len(block), block)


@pytest.mark.process
class TestLyingBodies:
    def test_a_negative_length_is_a_bad_request(self, served: Served) -> None:
        status = raw_exchange(served, head("/api/v1/auth/register", "Content-Length: -1"))
        assert status.startswith(b"HTTP/1.1 400")
        assert served.alive()

    def test_a_declared_length_over_the_limit_is_refused_before_any_body(
        self, served: Served
    ) -> None:
        status = raw_exchange(served, head("/api/v1/auth/register", f"Content-Length: {2 * MIB}"))
        assert status.startswith(b"HTTP/1.1 413")

    def test_a_body_longer_than_its_length_is_cut_at_the_length(self, served: Served) -> None:
        status = raw_exchange(
            served,
            head("/api/v1/auth/register", "Content-Length: 12") + b'{"email": "a' + b"b" * MIB,
        )
        assert status.startswith(b"HTTP/1.1 422")  # the 12 bytes are not JSON
        assert served.alive()

    def test_a_body_shorter_than_its_length_leaves_the_server_serving(self, served: Served) -> None:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
            connection.sendall(head("/api/v1/auth/register", "Content-Length: 1000") + b"{")
        assert served.alive()

    def test_an_endless_chunked_body_is_refused_with_flat_memory(self, served: Served) -> None:
        before = served.rss_mib()
        status = raw_exchange(
            served, head("/api/v1/auth/register", "Transfer-Encoding: chunked"), chunked(64 * MIB)
        )
        assert status.startswith(b"HTTP/1.1 413")
        assert served.rss_mib() - before < 16
        assert served.alive()

    def test_an_endless_sealed_upload_stops_at_the_bid_limit_with_flat_memory(
        self, served: Served
    ) -> None:
        email, password = served.create_officer()
        with httpx.Client(base_url=served.url, timeout=30) as http:
            token = bidding_client.sign_in(http, email=email, password=password)
            officer = {"Authorization": f"Bearer {token}"}
            created = http.post(f"{TENDERS}", json=tender_body(), headers=officer).json()
            tender = http.post(f"{TENDERS}/{created['id']}/publish", headers=officer).json()
            account = registration()
            assert http.post("/api/v1/auth/register", json=account).status_code == 202
            activate_from_the_log(served, http, account)
            token = bidding_client.sign_in(
                http, email=account["email"], password=account["password"]
            )
        recipient = age.Recipient.parse(tender["opening_recipient"])
        sealed_start = age.seal_bytes(b"x" * 65536, [recipient])[:1024]
        before = served.rss_mib()
        status = raw_exchange(
            served,
            head(
                f"{TENDERS}/{tender['id']}/bids",
                "Transfer-Encoding: chunked",
                f"Authorization: Bearer {token}",
            ).replace(b"application/json", b"application/octet-stream"),
            chunked(64 * MIB, first=sealed_start),
        )
        assert status.startswith(b"HTTP/1.1 413")
        assert served.rss_mib() - before < 16
        assert not list((Path(served.env["BIDDING_DATA_DIR"]) / "staging").glob("*"))


@pytest.mark.process
class TestServerOutput:
    def test_no_secret_reaches_the_servers_output(self, served: Served) -> None:
        """Sign-ins (bearer and cookie), a registration, a cookie session's write with its
        CSRF token, a key check, the live room's auth message and a reveal, through the real
        server: none of their secrets is in what it prints."""
        seen: list[str] = []
        officer_email, officer_password = served.create_officer()
        seen.append(officer_password)
        account = registration()
        seen.append(account["password"])
        identity = age.Identity.generate()
        seen.append(str(identity))
        # Room for the sign-ins (Argon2) and the upload on a loaded machine before it passes.
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        with httpx.Client(base_url=served.url, timeout=30) as http:

            def forwarded() -> dict[str, str]:  # each sign-in from its own client address
                return {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250)}"}

            http.headers.update(forwarded())
            officer = bidding_client.sign_in(http, email=officer_email, password=officer_password)
            seen.append(officer)
            officer_auth = {"Authorization": f"Bearer {officer}"}
            body = tender_body(opening_mode="bidder", min_bids=1, bid_deadline=deadline.isoformat())
            created = http.post(TENDERS, json=body, headers=officer_auth)
            assert created.status_code == 201, created.text
            tender_id = created.json()["id"]
            published = http.post(f"{TENDERS}/{tender_id}/publish", headers=officer_auth)
            assert published.status_code == 200, published.text

            assert http.post("/api/v1/auth/register", json=account).status_code == 202
            activate_from_the_log(served, http, account)
            http.headers.update(forwarded())
            wrong = http.post(
                "/api/v1/auth/token", data={"username": account["email"], "password": "nope nope"}
            )
            assert wrong.status_code == 401
            seen.append("nope nope")
            http.headers.update(forwarded())
            token = bidding_client.sign_in(
                http, email=account["email"], password=account["password"]
            )
            seen.append(token)
            bidder = {"Authorization": f"Bearer {token}"}

            # A browser's session: the cookie and the CSRF token, used for a write (sign out).
            http.headers.update(forwarded())
            browser = http.post(
                "/api/v1/auth/token",
                data={
                    "username": account["email"],
                    "password": account["password"],
                    "session": "cookie",
                },
                headers={"Origin": served.url},
            ).json()
            seen += [browser["access_token"], browser["csrf_token"]]
            signed_out = http.post(
                "/api/v1/auth/logout", headers={"X-CSRF-Token": browser["csrf_token"]}
            )
            assert signed_out.status_code == 204
            http.cookies.clear()

            # The key check: the challenge's plaintext is the proof.
            registered = http.put(
                "/api/v1/me/keys", json={"recipient": str(identity.recipient)}, headers=bidder
            )
            assert registered.status_code == 200, registered.text
            asked = http.post("/api/v1/me/keys/challenge", headers=bidder).json()
            plaintext = age.unseal_bytes(base64.b64decode(asked["challenge"]), [identity]).decode()
            seen.append(plaintext)
            answered = http.post(
                "/api/v1/me/keys/challenge/answer", json={"answer": plaintext}, headers=bidder
            )
            assert answered.status_code == 200, answered.text

            form = json.dumps({"price": "1000000.00", "duration_days": 90}).encode()
            submitted = http.post(
                f"{TENDERS}/{tender_id}/bids",
                content=age.seal_bytes(form, [identity.recipient]),
                headers={**bidder, "Content-Type": "application/octet-stream"},
            )
            assert submitted.status_code == 201, submitted.text

            room = served.url.replace("http", "ws", 1) + f"{TENDERS}/{tender_id}/opening/live"
            with ws_connect(room) as ws:
                ws.send(json.dumps({"type": "auth", "token": token}))
                assert json.loads(ws.recv(timeout=10))["type"] == "welcome"

            until = time.monotonic() + 60
            while True:
                events = http.get(f"{TENDERS}/{tender_id}/opening/events", headers=bidder).json()
                if "decryption.window_opened" in [e["type"] for e in events["events"]]:
                    break
                assert time.monotonic() < until, events
                time.sleep(0.5)
            header = http.get(f"{TENDERS}/{tender_id}/bids/mine/header", headers=bidder).json()
            file_key = age.parse_header(base64.b64decode(header["header"])).file_key([identity])
            encoded = base64.b64encode(file_key).decode()
            seen += [encoded, file_key.hex()]
            revealed = http.post(
                f"{TENDERS}/{tender_id}/opening/reveal", json={"file_key": encoded}, headers=bidder
            )
            assert revealed.status_code == 201, revealed.text

        output = served.output()
        assert '"POST /api/v1/auth/token HTTP/1.1" 200' in output  # the access log is there
        assert "WebSocket /api/v1/tenders/" in output
        for secret in seen:
            assert secret not in output
