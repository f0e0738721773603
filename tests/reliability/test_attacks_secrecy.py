"""Bidder A after bidder B's bid, and everyone after whether anyone bid.

Before the deadline nobody but a bidder itself learns whether it bid: every answer every
reader gets (the tender, the list, the opening, its events, record, results, the log, the live
room) is the same, byte for byte but the server's clock, before any bid and after several;
and the database statements behind those answers never read the bids or the log, so neither
does their timing depend on them. Bidder A's own answers are the same before and after B
bids, and name nothing of B's.

After the opening, A sees of B only what the published record and log make public to anyone:
never B's sealed header, B's Idempotency-Key or anything of B's through A's own endpoints.
"""

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding.crypto import age
from bidding.settings import Settings
from tests.reliability.attacks import generous_settings
from tests.support.live import auth_message, quiet_after_tail, receive, token_of, watch, welcome
from tests.support.scene import OCTETS, LiveServer, Party, Scene
from tests.tenders.conftest import TENDERS

Event = dict[str, Any]

B_IDEMPOTENCY_KEY = "b-private-retry-key-7f3a"
NOBODY_LEAF = "0" * 64
READS = (
    "",
    "/opening",
    "/opening/events",
    "/opening/record",
    "/results",
    "/log/head",
    "/log/leaves",
    f"/log/proof?leaf_hash={NOBODY_LEAF}",
)
OWN_READS = ("/bids/mine", "/bids/mine/header")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return generous_settings(tmp_path, database_url)


def form(price: str) -> dict[str, Any]:
    return {"price": price, "duration_days": 120}


def scrub(value: Any) -> Any:
    """The answer without the server's clock, the one thing that may change between reads."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k != "server_time"}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


async def view(scene: Scene, tender: Event, headers: dict[str, str], *, own: bool = False) -> Any:
    """Everything a reader can ask about the tender: each answer's status and body."""
    seen: dict[str, Any] = {}
    base = f"{TENDERS}/{tender['id']}"
    paths = [base + path for path in READS + (OWN_READS if own else ())]
    paths += [
        f"{TENDERS}?page_size=100",
        f"{TENDERS}?q={tender['reference']}",
        f"{TENDERS}?status=published&organization_id={tender['organization']['id']}",
    ]
    for path in paths:
        response = await scene.client.get(path, headers=headers)
        assert response.status_code < 500, (path, response.text)
        seen[path] = (response.status_code, scrub(response.json()))
    return seen


async def bid(
    scene: Scene, tender: Event, party: Party, price: str, **headers: str
) -> tuple[Event, bytes]:
    """The party seals and hands in a bid; its receipt and the sealed file."""
    sealed = age.seal_bytes(
        json.dumps(form(price)).encode(), [age.Recipient.parse(tender["opening_recipient"])]
    )
    response = await scene.client.post(
        f"{TENDERS}/{tender['id']}/bids",
        content=sealed,
        headers={**OCTETS, **party.headers, **headers},
    )
    assert response.status_code == 201, response.text
    receipt: Event = response.json()
    return receipt, sealed


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def reads_bids(statement: str) -> bool:
    return re.search(r"\b(bids|log_entries)\b", statement) is not None


async def cast_of(scene: Scene) -> dict[str, Party]:
    """The readers besides the bidders: the tender's officer, a supervisor of its organization,
    an officer elsewhere, an admin, a bidder that does not bid, and anonymous."""
    from bidding.auth.models import Organization, Role
    from bidding.db import create_session_factory
    from tests.factories import bearer, create_user

    assert scene.officer is not None
    people = {"officer": scene.officer}
    async with create_session_factory(scene.engine)() as session:
        own = await session.get(Organization, scene.officer.user.organization_id)
        for name, role, organization in (
            ("supervisor", Role.supervisor, own),
            ("other_officer", Role.officer, None),
            ("admin", Role.admin, None),
        ):
            user = await create_user(session, role=role, organization=organization)
            people[name] = Party(user, await bearer(session, user))
        await session.commit()
    people["onlooker"] = await scene.bidder("Onlooker Ltd")
    return people


class TestBeforeTheDeadline:
    async def test_nobody_learns_whether_anyone_bid(
        self, scene: Scene, engine: AsyncEngine
    ) -> None:
        tender = await scene.tender()
        readers = await cast_of(scene)
        headers = {name: party.headers for name, party in readers.items()} | {"anonymous": {}}
        before = {name: await view(scene, tender, h) for name, h in headers.items()}

        bidders = [await scene.bidder(f"Bidder {i} Ltd") for i in range(3)]
        receipts = [
            (await bid(scene, tender, b, f"{p + 1}000000.00"))[0] for p, b in enumerate(bidders)
        ]
        await bid(scene, tender, bidders[1], "990000.00")  # a replacement
        withdrawn = await scene.client.delete(
            f"{TENDERS}/{tender['id']}/bids/mine", headers=bidders[2].headers
        )
        assert withdrawn.status_code == 200, withdrawn.text

        with statements(scene.engine) as sent:
            after = {name: await view(scene, tender, h) for name, h in headers.items()}
        for name in headers:
            assert after[name] == before[name], f"{name} can tell that bids came in"
        # Not even a receipt's leaf hash gets another answer than a made-up one yet.
        for name, h in headers.items():
            proof = await scene.client.get(
                f"{TENDERS}/{tender['id']}/log/proof",
                params={"leaf_hash": receipts[0]["leaf_hash"]},
                headers=h,
            )
            made_up = before[name][f"{TENDERS}/{tender['id']}/log/proof?leaf_hash={NOBODY_LEAF}"]
            assert (proof.status_code, proof.json()) == made_up, name
        # The onlooker's own participation check reads its own bids only; nobody else's
        # answers read the bids or the log at all, so their timing cannot depend on them.
        own_bids = [s for s in sent if reads_bids(s)]
        assert own_bids, "the onlooker's participation check reads its own bids"
        assert all("bidder_id = " in s for s in own_bids), own_bids
        with statements(scene.engine) as sent:
            for name, h in headers.items():
                if name != "onlooker":
                    await view(scene, tender, h)
        assert [s for s in sent if reads_bids(s)] == []

    async def test_bidder_a_learns_nothing_of_b(self, scene: Scene) -> None:
        tender = await scene.tender()
        a, b, c = [await scene.bidder(name) for name in ("A Ltd", "B Ltd", "C Ltd")]
        a_receipt, _ = await bid(scene, tender, a, "1000000.00")
        alone = await view(scene, tender, a.headers, own=True)

        b_first, _ = await bid(
            scene, tender, b, "990000.00", **{"Idempotency-Key": B_IDEMPOTENCY_KEY}
        )
        b_receipt, _ = await bid(scene, tender, b, "980000.00")
        await bid(scene, tender, c, "970000.00")
        b_header = await scene.client.get(
            f"{TENDERS}/{tender['id']}/bids/mine/header", headers=b.headers
        )
        assert b_header.status_code == 200, b_header.text
        crowded = await view(scene, tender, a.headers, own=True)
        assert crowded == alone

        # A's own answers hold A's bid and receipt only.
        base = f"{TENDERS}/{tender['id']}"
        mine = crowded[f"{base}/bids/mine"][1]
        assert mine["bid"]["id"] == a_receipt["body"]["bid_id"]
        assert mine["receipts"] == [a_receipt]
        header = crowded[f"{base}/bids/mine/header"][1]
        assert header["bid_id"] == a_receipt["body"]["bid_id"]
        assert header["header"] != b_header.json()["header"]
        # Asking for B's things by their ids gets nothing: there is no such way.
        b_bid = b_receipt["body"]["bid_id"]
        b_org = b_receipt["body"]["bidder_id"]
        for path in (
            f"{base}/bids/{b_bid}",
            f"{base}/bids/{b_bid}/header",
            f"{base}/bids",
            f"{base}/bids/mine?bid_id={b_bid}&bidder_id={b_org}",
            f"{base}/bids/mine/header?bid_id={b_bid}&bidder_id={b_org}",
        ):
            response = await scene.client.get(path, headers=a.headers)
            text = response.text
            assert response.status_code in (200, 404, 405), (path, text)
            for secret in (b_bid, b_org, b_first["body"]["bid_id"], b_header.json()["header"]):
                assert secret not in text, path
        text = json.dumps(crowded)
        for receipt in (b_first, b_receipt):
            for value in (
                receipt["leaf_hash"],
                receipt["body"]["sha256"],
                receipt["body"]["bid_id"],
            ):
                assert value not in text
        assert b_org not in text and B_IDEMPOTENCY_KEY not in text

    async def test_a_watcher_in_the_room_hears_nothing_when_someone_bids(
        self, scene: Scene, live_server: LiveServer
    ) -> None:
        tender = await scene.tender()
        a = await scene.bidder("A Ltd")
        await bid(scene, tender, a, "1000000.00")
        assert scene.officer is not None
        async with (
            watch(live_server.room(tender)) as officer_ws,
            watch(live_server.room(tender)) as a_ws,
        ):
            await officer_ws.send(auth_message(token_of(scene.officer)))
            await a_ws.send(auth_message(token_of(a)))
            hellos = [scrub(await welcome(officer_ws)), scrub(await welcome(a_ws))]
            for _ in range(3):
                await bid(scene, tender, await scene.bidder(), "990000.00")
            await quiet_after_tail(officer_ws)
            await quiet_after_tail(a_ws)
        assert [hello["last_seq"] for hello in hellos] == [0, 0]
        async with watch(live_server.room(tender)) as ws:
            await ws.send(auth_message(token_of(scene.officer)))
            assert scrub(await welcome(ws)) == hellos[0]
            assert (await receive(ws))["type"] == "tick"


class TestAfterTheOpening:
    async def test_a_sees_of_b_only_what_everyone_may_see(self, scene: Scene) -> None:
        tender = await scene.tender()
        a, b, c = [await scene.bidder(name) for name in ("A Ltd", "B Ltd", "C Ltd")]
        a_receipt, _ = await bid(scene, tender, a, "1000000.00")
        b_first, _ = await bid(
            scene, tender, b, "990000.00", **{"Idempotency-Key": B_IDEMPOTENCY_KEY}
        )
        b_receipt, _ = await bid(scene, tender, b, "980000.00")
        await bid(scene, tender, c, "970000.00")
        b_header = (
            await scene.client.get(f"{TENDERS}/{tender['id']}/bids/mine/header", headers=b.headers)
        ).json()["header"]
        await scene.pass_deadline(tender)
        await scene.open(tender)

        base = f"{TENDERS}/{tender['id']}"
        seen_by_a = await view(scene, tender, a.headers, own=True)
        public = await view(scene, tender, {})
        # A's own endpoints: A's bid, header and receipt, nothing of B's.
        mine = seen_by_a[f"{base}/bids/mine"][1]
        assert mine["bid"]["id"] == a_receipt["body"]["bid_id"]
        assert mine["receipts"] == [a_receipt]
        assert seen_by_a[f"{base}/bids/mine/header"][1]["bid_id"] == a_receipt["body"]["bid_id"]
        # The outcome and the log are public now: A reads what anyone reads.
        for path in ("/opening/record", "/results", "/log/head", "/log/leaves"):
            assert seen_by_a[base + path][0] == 200, path
            assert seen_by_a[base + path] == public[base + path], path
        for receipt in (b_first, b_receipt):
            as_a = await scene.client.get(
                f"{base}/log/proof", params={"leaf_hash": receipt["leaf_hash"]}, headers=a.headers
            )
            as_anyone = await scene.client.get(
                f"{base}/log/proof", params={"leaf_hash": receipt["leaf_hash"]}
            )
            assert as_a.status_code == 200, as_a.text
            assert as_a.json() == as_anyone.json()
        # The events, for participants, say of the bids nothing that the record and the log
        # do not publish to everyone.
        corpus = json.dumps([public[base + p][1] for p in ("/opening/record", "/log/leaves")])
        events = seen_by_a[f"{base}/opening/events"][1]["events"]
        assert seen_by_a[f"{base}/opening/events"] == (
            200,
            scrub((await scene.get(tender, "/opening/events")).json()),
        )
        for item in events:
            if item["type"].startswith(("bid", "bids.")):
                for value in _scalars(item["data"]):
                    assert json.dumps(value) in corpus, (item["type"], value)
        # And never B's sealed header or B's retry key, anywhere A looks.
        text = json.dumps(seen_by_a)
        assert b_header not in text
        assert base64.b64decode(b_header)[:40].hex() not in text
        assert B_IDEMPOTENCY_KEY not in text


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value
