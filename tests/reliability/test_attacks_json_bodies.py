"""Hostile bodies on every write endpoint: malformed JSON, huge JSON, deep
nesting, wrong types, unknown fields, invalid UTF-8, NUL and lone surrogates. Never a 5xx,
always the project's error {"type", "detail"} with 400, 413, 415 or 422, and nothing written.

The write endpoints are read from the app's OpenAPI document, and each must be in one of the
tables below, so that an endpoint added later cannot be forgotten:

- JSON endpoints get the whole battery, each as a caller the endpoint would serve (so that what
  refuses the request is the body, not the caller), with the database's fingerprint taken
  before and after: equal, nothing was written.
- The sign-in form gets the battery a form can get.
- Sealed bids take octet-stream only: JSON is 415.
- Endpoints without a body ignore one, as HTTP allows; what they may not do is fail on it.
"""

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.crypto import age
from bidding.settings import Settings
from bidding.tenders.models import Tender, TenderStatus
from tests.factories import credit_code
from tests.reliability.attacks import assert_error_shape, fingerprint, generous_settings
from tests.tenders import conftest as tender_fixtures
from tests.tenders.conftest import TENDERS, Cast, create_tender, tender_body

cast = tender_fixtures.cast

JSON = {"Content-Type": "application/json"}
DEPTH = 100_000
MARK = "MARK-7f3a"  # replaced by raw bytes in the serialized body


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return generous_settings(tmp_path, database_url)


# --- the endpoints -------------------------------------------------------------------------


@dataclass
class Target:
    """One write endpoint, ready to be called as someone it would serve."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]  # a body it would accept


@dataclass
class World:
    """The state the targets need: a draft, a published tender, the cast."""

    cast: Cast
    draft: Tender
    published: Tender

    def person(self, name: str) -> dict[str, str]:
        return self.cast[name].headers


def _registration() -> dict[str, Any]:
    return {
        "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
        "password": "Tr0ub4dor&3 horse staple",
        "display_name": "Wang Fang",
        "organization": {"name": "Minjiang Builders Ltd", "code": credit_code()},
    }


JSON_TARGETS: dict[tuple[str, str], Callable[[World], Target]] = {
    ("POST", "/api/v1/auth/register"): lambda w: Target(
        "POST", "/api/v1/auth/register", {}, _registration()
    ),
    ("POST", "/api/v1/auth/activate"): lambda w: Target(
        "POST", "/api/v1/auth/activate", {}, {"token": "A" * 43, "password": "Tr0ub4dor&3 horse"}
    ),
    ("PUT", "/api/v1/me/keys"): lambda w: Target(
        "PUT",
        "/api/v1/me/keys",
        w.person("bidder"),
        {"recipient": str(age.Identity.generate().recipient)},
    ),
    ("POST", "/api/v1/me/keys/challenge/answer"): lambda w: Target(
        "POST", "/api/v1/me/keys/challenge/answer", w.person("bidder"), {"answer": "abc"}
    ),
    ("POST", "/api/v1/tenders"): lambda w: Target(
        "POST", TENDERS, w.person("author"), tender_body()
    ),
    ("PATCH", "/api/v1/tenders/{tender_id}"): lambda w: Target(
        "PATCH", f"{TENDERS}/{w.draft.id}", w.person("author"), {"title": "A new title"}
    ),
    ("POST", "/api/v1/tenders/{tender_id}/cancel"): lambda w: Target(
        "POST", f"{TENDERS}/{w.draft.id}/cancel", w.person("author"), {"reason": "Not needed"}
    ),
    ("POST", "/api/v1/tenders/{tender_id}/opening/objections"): lambda w: Target(
        "POST",
        f"{TENDERS}/{w.published.id}/opening/objections",
        w.person("bidder"),
        {"text": "The seal was broken"},
    ),
    ("POST", "/api/v1/tenders/{tender_id}/opening/objections/{objection_id}/answer"): lambda w: (
        Target(
            "POST",
            f"{TENDERS}/{w.published.id}/opening/objections/{uuid.uuid4()}/answer",
            w.person("author"),
            {"text": "It was not"},
        )
    ),
    ("POST", "/api/v1/tenders/{tender_id}/opening/reveal"): lambda w: Target(
        "POST",
        f"{TENDERS}/{w.published.id}/opening/reveal",
        w.person("bidder"),
        {"file_key": base64.b64encode(bytes(16)).decode()},
    ),
}
FORM_TARGETS = {("POST", "/api/v1/auth/token")}
OCTET_TARGETS = {
    ("POST", "/api/v1/tenders/{tender_id}/bids"): "sealed bids: JSON is refused with 415",
    ("POST", "/api/v1/tenders/{tender_id}/documents"): "any file is a document: never parsed",
}
BODILESS_TARGETS: dict[tuple[str, str], Callable[[World], Target]] = {
    ("POST", "/api/v1/auth/logout"): lambda w: Target(
        "POST", "/api/v1/auth/logout", w.person("colleague"), {}
    ),
    ("POST", "/api/v1/me/keys/challenge"): lambda w: Target(
        "POST", "/api/v1/me/keys/challenge", w.person("bidder"), {}
    ),
    ("POST", "/api/v1/tenders/{tender_id}/publish"): lambda w: Target(
        "POST", f"{TENDERS}/{w.published.id}/publish", w.person("author"), {}
    ),
    ("DELETE", "/api/v1/tenders/{tender_id}/documents/{document_id}"): lambda w: Target(
        "DELETE", f"{TENDERS}/{w.draft.id}/documents/{uuid.uuid4()}", w.person("author"), {}
    ),
    ("DELETE", "/api/v1/tenders/{tender_id}/bids/mine"): lambda w: Target(
        "DELETE", f"{TENDERS}/{w.published.id}/bids/mine", w.person("bidder"), {}
    ),
    ("POST", "/api/v1/tenders/{tender_id}/opening/check-in"): lambda w: Target(
        "POST", f"{TENDERS}/{w.published.id}/opening/check-in", w.person("supervisor"), {}
    ),
    ("POST", "/api/v1/tenders/{tender_id}/opening/record/confirm"): lambda w: Target(
        "POST", f"{TENDERS}/{w.published.id}/opening/record/confirm", w.person("bidder"), {}
    ),
}


def write_operations(app: FastAPI) -> dict[tuple[str, str], str]:
    """Every operation of the API that is not a read, with its request body's media type."""
    found = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                content = (operation.get("requestBody") or {}).get("content", {})
                found[(method.upper(), path)] = next(iter(content), "")
    return found


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _types(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = _resolve(spec, schema)
    types = {schema["type"]} if "type" in schema else set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        types |= _types(spec, option)
    if "properties" in schema or "discriminator" in schema:
        types.add("object")
    return types


def wrong_values(spec: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """Values that no reading of the property's schema accepts, not even a lax one."""
    types = _types(spec, schema)
    values: list[Any] = []
    if "array" not in types:
        values.append([[1], ["nested"]])
    if "object" not in types:
        values.append({"$ne": None, "$gt": ""})
    if types <= {"array", "object"}:
        values.append("a string")
    return values


def _request_schema(app: FastAPI, method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = app.openapi()
    operation = spec["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return spec, _resolve(spec, schema)


# --- the battery ---------------------------------------------------------------------------


@dataclass
class Hostile:
    """One hostile body: what it is, its bytes and headers, and the statuses allowed."""

    name: str
    content: bytes
    statuses: tuple[int, ...]
    content_type: str = "application/json"


MALFORMED = (
    b"{",
    b"}",
    b'{"a":',
    b'{"a" 1}',
    b"[1,]",
    b"{'single': 'quotes'}",
    b'{"a": 1,}',
    b'{"a": 1} trailing',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"a": 01}',
    b'{"a": .5}',
    b'{"a": "\\x41"}',
    b'{"a": "unterminated}',
    b'{"a": "tab\there"}',
    b"/* comment */ {}",
    b"\x00",
    b" ",
    b"null",
    b"true",
    b"12345678901234567890123456789",
    b'"a string"',
    b"[]",
    b"[{}]",
)


def battery(valid: dict[str, Any], limit: int) -> Iterator[Hostile]:
    """Every hostile body built around an accepted one."""
    for index, text in enumerate(MALFORMED):
        yield Hostile(f"malformed {index}: {text[:20]!r}", text, (400, 422))
    # Huge: one byte past the limit, as a string, as many keys, as a long array.
    pad = limit + 1 - len(json.dumps(valid | {"pad": ""}))
    yield Hostile("huge string", json.dumps(valid | {"pad": "x" * pad}).encode(), (413,))
    many = {f"k{i}": i for i in range(limit // 10)}
    yield Hostile("huge object", json.dumps(valid | many).encode(), (413,))
    yield Hostile("huge array", b"[" + b"0," * (limit // 2) + b"0]", (413,))
    # Deep: the whole body, and inside a field.
    yield Hostile("deep arrays", b"[" * DEPTH + b"]" * DEPTH, (400, 413, 422))
    yield Hostile("deep objects", b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, (400, 413, 422))
    first = next(iter(valid))
    inner = b"[" * DEPTH + b"]" * DEPTH
    nested = json.dumps(valid | {first: MARK}).encode().replace(f'"{MARK}"'.encode(), inner)
    yield Hostile("deep field", nested, (400, 413, 422))
    # Unknown fields, at the top and nested.
    yield Hostile("unknown field", json.dumps(valid | {"is_admin": True}).encode(), (422,))
    yield Hostile("unknown __proto__", json.dumps(valid | {"__proto__": {}}).encode(), (422,))
    for name, value in valid.items():
        if isinstance(value, dict):
            changed = valid | {name: value | {"role": "admin"}}
            yield Hostile(f"unknown field in {name}", json.dumps(changed).encode(), (422,))
    # Invalid UTF-8 inside a string, and text that is not UTF-8 at all.
    strings = [name for name, value in valid.items() if isinstance(value, str)]
    for raw in (b"\xff\xfe", b"\xc0\xaf", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"):
        for name in strings:
            text = json.dumps(valid | {name: MARK}).encode().replace(MARK.encode(), raw)
            yield Hostile(f"invalid UTF-8 {raw!r} in {name}", text, (400, 422))
    for name in strings:
        latin1 = json.dumps(valid | {name: "Müller"}, ensure_ascii=False).encode("latin-1")
        yield Hostile(f"latin-1 in {name}", latin1, (400, 422))
    # Escapes that decode to what no text column holds: NUL and lone surrogates.
    for name in strings:
        if "password" in name:
            continue  # hashed, never stored as text: a NUL in a password is the user's business
        for char in ("\x00", "\ud800", "\udfff"):
            text = json.dumps(valid | {name: f"a{char}b"}).encode()
            yield Hostile(f"{char!r} in {name}", text, (400, 404, 409, 422))
    # The right JSON under the wrong media type.
    for media in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        yield Hostile(f"as {media}", json.dumps(valid).encode(), (400, 415, 422), media)


async def _send(
    client: httpx.AsyncClient, target: Target, hostile: Hostile, **extra: str
) -> httpx.Response:
    headers = {**target.headers, "Content-Type": hostile.content_type, **extra}
    return await client.request(
        target.method, target.path, content=hostile.content, headers=headers
    )


@pytest.fixture
async def world(session: AsyncSession, cast: Cast) -> World:
    draft = await create_tender(session, officer=cast.author)
    published = await create_tender(session, officer=cast.author, status=TenderStatus.published)
    return World(cast=cast, draft=draft, published=published)


def _limit(settings: Settings) -> int:
    limit: int = getattr(settings, "max_json_bytes", 1024 * 1024)
    return limit


# --- the tests -----------------------------------------------------------------------------


class TestEveryWriteEndpointIsCovered:
    def test_each_write_operation_is_in_one_table(self, app: FastAPI) -> None:
        operations = write_operations(app)
        tables = [set(JSON_TARGETS), FORM_TARGETS, set(OCTET_TARGETS), set(BODILESS_TARGETS)]
        for key, media in operations.items():
            homes = [table for table in tables if key in table]
            assert len(homes) == 1, f"{key} ({media or 'no body'}) is not classified once"
        assert set().union(*tables) == set(operations), "a classified endpoint is gone"
        assert {k for k, m in operations.items() if m == "application/json"} == set(JSON_TARGETS)
        assert {k for k, m in operations.items() if m == ""} == set(BODILESS_TARGETS)


@pytest.mark.parametrize("key", list(JSON_TARGETS), ids=lambda key: f"{key[0]} {key[1]}")
class TestJsonEndpoints:
    async def test_the_battery_is_refused_and_writes_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
        settings: Settings,
        key: tuple[str, str],
    ) -> None:
        target = JSON_TARGETS[key](world)
        before = await fingerprint(session)
        for hostile in battery(target.body, _limit(settings)):
            response = await _send(client, target, hostile)
            assert_error_shape(response, *hostile.statuses, case=hostile.name)
        assert await fingerprint(session) == before

    async def test_wrong_types_are_422_and_write_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
        key: tuple[str, str],
    ) -> None:
        target = JSON_TARGETS[key](world)
        spec, schema = _request_schema(app, *key)
        before = await fingerprint(session)
        for name, property_schema in schema["properties"].items():
            for value in wrong_values(spec, property_schema):
                body = json.dumps(target.body | {name: value}).encode()
                hostile = Hostile(f"{name} = {value!r}", body, (422,))
                body_of = assert_error_shape(await _send(client, target, hostile), 422)
                assert body_of["type"] == "validation_error", (hostile.name, body_of)
        for whole in ([target.body], 1, "text", None, True):
            hostile = Hostile(f"the body is {whole!r}", json.dumps(whole).encode(), (422,))
            assert_error_shape(await _send(client, target, hostile), 422)
        assert await fingerprint(session) == before

    async def test_the_accepted_body_is_accepted(
        self, client: httpx.AsyncClient, world: World, key: tuple[str, str]
    ) -> None:
        # The battery's refusals are the body's doing: the same caller's valid body goes past
        # validation (it may still be refused for the tender's state, never as a bad body).
        target = JSON_TARGETS[key](world)
        response = await client.request(
            target.method, target.path, json=target.body, headers=target.headers
        )
        assert response.status_code < 500, response.text
        assert response.status_code not in (400, 413, 415), response.text
        if response.status_code == 422:
            assert response.json()["type"] != "validation_error", response.text


class TestSignInForm:
    async def test_hostile_forms_are_refused_and_write_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        settings: Settings,
    ) -> None:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        limit = _limit(settings)
        hostile: list[tuple[bytes, dict[str, str], tuple[int, ...]]] = [
            (b'{"username": "a@example.com", "password": "x"}', JSON, (400, 415, 422)),
            (b"[" * DEPTH + b"]" * DEPTH, JSON, (400, 413, 415, 422)),
            (b"username=" + b"a" * limit + b"&password=x", form, (413,)),
            (b"&" * (limit + 1), form, (413,)),
            (b"username=only", form, (400, 422)),
            (b"password=only", form, (400, 422)),
            (b"=&=&=", form, (400, 422)),
            (b"%ZZ=%ZZ", form, (400, 422)),
            (b"\xff\xfe=\xff", form, (400, 422)),
            (b"username[]=a&username[]=b", form, (400, 422)),
            (b"", form, (400, 422)),
        ]
        before = await fingerprint(session)
        for content, headers, statuses in hostile:
            response = await client.post("/api/v1/auth/token", content=content, headers=headers)
            assert_error_shape(response, *statuses)
        assert await fingerprint(session) == before


class TestSealedBids:
    async def test_json_bodies_are_415_and_write_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
        settings: Settings,
    ) -> None:
        target = Target("POST", f"{TENDERS}/{world.published.id}/bids", world.person("bidder"), {})
        before = await fingerprint(session)
        for hostile in battery({"price": "1000000.00"}, _limit(settings)):
            if hostile.content_type == "application/json":
                response = await _send(client, target, hostile)
                assert_error_shape(response, 415)
            # The same bytes declared a sealed file: read, and refused as not sealed.
            response = await _send(
                client,
                target,
                Hostile(hostile.name, hostile.content, (), "application/octet-stream"),
            )
            assert_error_shape(response, 422)
            assert response.json()["type"] == "not_sealed", hostile.name
        assert await fingerprint(session) == before


@pytest.mark.parametrize("key", list(BODILESS_TARGETS), ids=lambda key: f"{key[0]} {key[1]}")
async def test_endpoints_without_a_body_never_fail_on_one(
    client: httpx.AsyncClient, world: World, settings: Settings, key: tuple[str, str]
) -> None:
    target = BODILESS_TARGETS[key](world)
    samples = [
        h
        for h in battery({"a": "b"}, _limit(settings))
        if h.name.startswith(("malformed 0", "huge string", "deep arrays", "invalid UTF-8"))
    ]
    for hostile in samples:
        response = await _send(client, target, hostile)
        assert response.status_code < 500, (hostile.name, response.text)
        if response.status_code >= 400:
            assert_error_shape(response, response.status_code)


async def test_thousands_of_unknown_fields_get_a_short_answer(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    # Under the size limit, one field per 16 bytes: each was answered with its own error, a
    # 1 MB body bought a 4 MB answer and two seconds of the event loop from any bidder.
    fields = _limit(settings) // 20
    body = json.dumps({f"k{i}": i for i in range(fields)}).encode()
    assert len(body) <= _limit(settings)
    target = JSON_TARGETS[("PUT", "/api/v1/me/keys")](world)
    response = await _send(client, target, Hostile("many fields", body, (422,)))
    answer = assert_error_shape(response, 422)
    assert len(response.content) < 16 * 1024, len(response.content)
    assert answer["type"] == "validation_error"


async def test_a_nul_in_the_email_at_sign_in_is_a_failed_sign_in(client: httpx.AsyncClient) -> None:
    # Sign-in never refuses what is typed, it only fails to match it: a NUL failed with a 500
    # on PostgreSQL, which cannot compare text holding one.
    for username in ("a\x00@example.com", "\x00", "officer@example.com\x00"):
        response = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": "whatever it is"}
        )
        assert assert_error_shape(response, 401)["type"] == "invalid_credentials"
