"""Each security-relevant action writes exactly its entry (who, what, which tender, details),
in the action's own transaction: refused actions leave none, failed sign-ins and reveals
leave theirs although the request fails, and nothing secret is ever written."""

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.audit.models import AuditEntry
from bidding.auth.models import AccessToken, BidderKey, Role, User
from bidding.crypto import age
from bidding.db import create_session_factory, iso_utc, utcnow
from bidding.opening import events as ev
from bidding.opening import lease, pipeline
from bidding.tenders.models import Bid, Tender, TenderStatus
from tests.audit.conftest import Trail, summary
from tests.auth.conftest import REGISTER, check, register, register_and_activate, registration
from tests.factories import PASSWORD, bearer, create_user
from tests.support.bidder_mode import file_key_of, reveal
from tests.support.bids import OCTETS, sealed
from tests.support.scene import Party, Scene
from tests.tenders.conftest import TENDERS, create_tender, tender_body

TOKEN = "/api/v1/auth/token"
CLIENT = "127.0.0.1"  # httpx's ASGI transport


def ids(entries: list[AuditEntry]) -> list[tuple[str, uuid.UUID | None]]:
    return [(entry.action, entry.actor_user_id) for entry in entries]


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, data={"username": email, "password": password})


# --- accounts ------------------------------------------------------------------------------


class TestAccounts:
    async def test_a_sign_in_names_the_user_and_the_client_and_keeps_no_secret(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        user = await create_user(session, role=Role.officer)
        answer = await sign_in(client, user.email, PASSWORD)
        assert answer.status_code == 200, answer.text

        (entry,) = await trail.new()
        assert summary(entry) == ("auth.signed_in", user.id, None, {"client": CLIENT})
        assert (entry.chain, entry.actor_role, entry.actor_organization_id) == (
            "platform",
            "officer",
            user.organization_id,
        )
        text = await trail.text()
        assert PASSWORD not in text and answer.json()["access_token"] not in text

    async def test_failed_sign_ins_are_recorded_although_the_request_fails(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        user = await create_user(session, role=Role.bidder)
        wrong = await sign_in(client, user.email.upper(), "not the password at all")
        unknown = await sign_in(client, "nobody@example.com", PASSWORD)
        await session.execute(update(User).where(User.id == user.id).values(is_active=False))
        inactive = await sign_in(client, user.email, PASSWORD)
        assert [r.status_code for r in (wrong, unknown, inactive)] == [401, 401, 401]

        entries = await trail.new()
        assert [summary(entry) for entry in entries] == [
            ("auth.sign_in_failed", None, None, details)
            for details in (
                {"email": user.email, "client": CLIENT, "reason": "wrong_password"},
                {"email": "nobody@example.com", "client": CLIENT, "reason": "unknown_account"},
                {"email": user.email, "client": CLIENT, "reason": "inactive"},
            )
        ]
        text = await trail.text()
        assert "not the password at all" not in text and PASSWORD not in text

    async def test_a_registration_is_recorded_by_the_new_account(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        body = registration()
        user = await register_and_activate(client, session, body)
        tried = registration(email=body["email"])
        again = await client.post(REGISTER, json=tried)
        assert again.status_code == 202

        registered, activated, refused = await trail.new()
        pending_until = registered.details["pending_until"]
        assert summary(registered) == (
            "auth.registered",
            uuid.UUID(user["id"]),
            None,
            {
                "user_id": user["id"],
                "email": user["email"],
                "role": "bidder",
                "organization_id": user["organization"]["id"],
                "organization_created": True,
                "pending_until": pending_until,
            },
        )
        assert summary(activated) == (
            "auth.activated",
            uuid.UUID(user["id"]),
            None,
            {"user_id": user["id"]},
        )
        # Who tried to register a taken address: for an administrator, never for the caller.
        assert summary(refused) == (
            "auth.registration_refused",
            None,
            None,
            {
                "email": user["email"],
                "organization_code": tried["organization"]["code"],
                "reason": "email_taken",
            },
        )
        assert body["password"] not in await trail.text()

    async def test_a_sign_out_revokes_once_and_says_which_session(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        user = await create_user(session, role=Role.supervisor)
        headers = await bearer(session, user)
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        assert (await client.post("/api/v1/auth/logout")).status_code == 204

        (entry,) = await trail.new()
        token_id = await session.scalar(
            select(AccessToken.id).where(AccessToken.user_id == user.id)
        )
        assert summary(entry) == ("auth.signed_out", user.id, None, {"token_id": str(token_id)})
        assert headers["Authorization"].removeprefix("Bearer ") not in await trail.text()

    async def test_a_bidders_key_registered_then_proven(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        bidder = await create_user(session, role=Role.bidder)
        headers = await bearer(session, bidder)
        identity = age.Identity.generate()
        assert (await register(client, headers, identity)).status_code == 200
        assert (await check(client, headers, identity)).status_code == 200

        key = await session.scalar(select(BidderKey).where(BidderKey.registered_by_id == bidder.id))
        assert key is not None
        registered, verified = await trail.new()
        recipient = str(identity.recipient)
        assert summary(registered) == (
            "bidder_key.registered",
            bidder.id,
            None,
            {"key_id": str(key.id), "recipient": recipient, "retired_key_id": None},
        )
        assert summary(verified) == (
            "bidder_key.verified",
            bidder.id,
            None,
            {"key_id": str(key.id), "recipient": recipient},
        )
        text = await trail.text()
        assert str(identity) not in text and "bidding key check" not in text


# --- tenders -------------------------------------------------------------------------------


async def officer_of(session: AsyncSession) -> tuple[User, dict[str, str]]:
    officer = await create_user(session, role=Role.officer)
    return officer, await bearer(session, officer)


class TestTenders:
    async def test_a_draft_created_edited_given_a_document_and_relieved_of_it(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        officer, headers = await officer_of(session)
        body = tender_body()
        created = (await client.post(TENDERS, json=body, headers=headers)).json()
        tender_id = uuid.UUID(created["id"])
        edited = await client.patch(
            f"{TENDERS}/{tender_id}", json={"title": "New title", "min_bids": 4}, headers=headers
        )
        assert edited.status_code == 200, edited.text
        document = (
            await client.post(
                f"{TENDERS}/{tender_id}/documents",
                params={"name": "conditions.pdf"},
                content=b"%PDF-1.7 conditions",
                headers={**headers, "Content-Type": "application/pdf"},
            )
        ).json()
        removed = await client.delete(
            f"{TENDERS}/{tender_id}/documents/{document['id']}", headers=headers
        )
        assert removed.status_code == 204

        digest = hashlib.sha256(b"%PDF-1.7 conditions").hexdigest()
        assert [summary(entry) for entry in await trail.new()] == [
            (
                "tender.created",
                officer.id,
                tender_id,
                {
                    "reference": body["reference"],
                    "title": body["title"],
                    "bid_deadline": created["bid_deadline"].replace("+00:00", "Z"),
                    "opening_mode": "platform",
                },
            ),
            ("tender.edited", officer.id, tender_id, {"fields": ["min_bids", "title"]}),
            (
                "tender.document_added",
                officer.id,
                tender_id,
                {
                    "document_id": document["id"],
                    "name": "conditions.pdf",
                    "sha256": digest,
                    "size": 19,
                    "amendment": None,
                },
            ),
            (
                "tender.document_removed",
                officer.id,
                tender_id,
                {"document_id": document["id"], "name": "conditions.pdf", "sha256": digest},
            ),
        ]

    async def test_publication_amendments_and_cancellation_name_the_officer(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        officer, headers = await officer_of(session)
        tender_id = (await client.post(TENDERS, json=tender_body(), headers=headers)).json()["id"]
        published = (await client.post(f"{TENDERS}/{tender_id}/publish", headers=headers)).json()
        later = utcnow() + timedelta(days=20)
        amended = await client.patch(
            f"{TENDERS}/{tender_id}",
            json={"bid_deadline": later.isoformat(), "description": "More.", "reason": "Q&A"},
            headers=headers,
        )
        assert amended.status_code == 200, amended.text
        added = await client.post(
            f"{TENDERS}/{tender_id}/documents",
            params={"name": "answers.txt", "reason": "Q&A"},
            content=b"answers",
            headers=headers,
        )
        assert added.status_code == 201, added.text
        cancelled = await client.post(
            f"{TENDERS}/{tender_id}/cancel", json={"reason": "Budget withdrawn"}, headers=headers
        )
        assert cancelled.status_code == 200, cancelled.text

        entries = (await trail.new())[1:]
        assert ids(entries) == [
            ("tender.published", officer.id),
            ("tender.amended", officer.id),
            ("tender.document_added", officer.id),
            ("tender.cancelled", officer.id),
        ]
        assert {entry.tender_id for entry in entries} == {uuid.UUID(tender_id)}
        assert entries[0].details == {
            "bid_deadline": published["bid_deadline"].replace("+00:00", "Z"),
            "opening_recipient": published["opening_recipient"],
            "coefficient_commitment": published["coefficient_commitment"],
        }
        amendment = amended.json()["amendments"][0]
        assert entries[1].details == {
            "number": 1,
            "fields": ["bid_deadline", "description"],
            "bid_deadline": amendment["changes"]["bid_deadline"],
        }
        assert entries[2].details["amendment"] == 2
        assert entries[3].details == {"was": "published", "reason": "Budget withdrawn"}
        tender = await session.get(Tender, uuid.UUID(tender_id))
        assert tender is not None and tender.opening_identity_wrapped is not None
        text = await trail.text()
        assert tender.opening_identity_wrapped.hex() not in text

    async def test_refused_changes_leave_no_entry(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        _officer, headers = await officer_of(session)
        _other, outsider = await officer_of(session)
        tender_id = (await client.post(TENDERS, json=tender_body(), headers=headers)).json()["id"]
        await client.post(f"{TENDERS}/{tender_id}/publish", headers=headers)
        await trail.new()

        refusals = [
            await client.post(f"{TENDERS}/{tender_id}/publish", headers=headers),
            await client.patch(
                f"{TENDERS}/{tender_id}",
                json={"bid_deadline": (utcnow() + timedelta(days=2)).isoformat()},
                headers=headers,
            ),
            await client.post(
                f"{TENDERS}/{tender_id}/cancel", json={"reason": "x"}, headers=outsider
            ),
        ]

        assert [answer.status_code for answer in refusals] == [409, 422, 403]
        assert await trail.new() == []


# --- bids ----------------------------------------------------------------------------------


class TestBids:
    async def test_submissions_by_digest_then_a_withdrawal(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        _officer, headers = await officer_of(session)
        tender_id = (await client.post(TENDERS, json=tender_body(), headers=headers)).json()["id"]
        published = (await client.post(f"{TENDERS}/{tender_id}/publish", headers=headers)).json()
        bidder = await create_user(session, role=Role.bidder)
        bidder_headers = await bearer(session, bidder)
        recipient = age.Recipient.parse(published["opening_recipient"])
        plaintext = b'{"price": "1111111.11", "duration_days": 90}'
        bodies = [age.seal_bytes(plaintext, [recipient]) for _ in range(2)]
        await trail.new()

        receipts = []
        for number, body in enumerate(bodies):
            answer = await client.post(
                f"{TENDERS}/{tender_id}/bids",
                content=body,
                headers={**OCTETS, **bidder_headers, "Idempotency-Key": f"upload-{number}"},
            )
            assert answer.status_code == 201, answer.text
            receipts.append(answer.json()["body"])
        withdrawn = await client.delete(f"{TENDERS}/{tender_id}/bids/mine", headers=bidder_headers)
        assert withdrawn.status_code == 200

        organization = str(bidder.organization_id)
        assert [summary(entry) for entry in await trail.new()] == [
            *(
                (
                    "bid.submitted",
                    bidder.id,
                    uuid.UUID(tender_id),
                    {
                        "bid_id": receipt["bid_id"],
                        "bidder_id": organization,
                        "version": version,
                        "sha256": hashlib.sha256(body).hexdigest(),
                        "size": len(body),
                        "log_position": version - 1,
                    },
                )
                for version, (receipt, body) in enumerate(zip(receipts, bodies, strict=True), 1)
            ),
            (
                "bid.withdrawn",
                bidder.id,
                uuid.UUID(tender_id),
                {
                    "bid_id": receipts[1]["bid_id"],
                    "bidder_id": organization,
                    "version": 2,
                    "log_position": 2,
                },
            ),
        ]
        text = await trail.text()
        assert "1111111.11" not in text and published["opening_recipient"] in text

    async def test_a_retried_upload_and_a_late_bid_add_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, trail: Trail
    ) -> None:
        officer, _headers = await officer_of(session)
        tender = await create_tender(session, officer=officer, status=TenderStatus.published)
        headers = {**OCTETS, **await bearer(session, await create_user(session))}
        body = sealed()
        first = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=body,
            headers={**headers, "Idempotency-Key": "k1"},
        )
        retried = await client.post(
            f"{TENDERS}/{tender.id}/bids",
            content=body,
            headers={**headers, "Idempotency-Key": "k1"},
        )
        assert (first.status_code, retried.status_code) == (201, 200)
        assert [entry.action for entry in await trail.new()] == ["bid.submitted"]

        tender.bid_deadline = utcnow() - timedelta(seconds=1)
        await session.flush()
        late = await client.post(f"{TENDERS}/{tender.id}/bids", content=sealed(), headers=headers)
        withdrawal = await client.delete(f"{TENDERS}/{tender.id}/bids/mine", headers=headers)
        assert (late.status_code, withdrawal.status_code) == (409, 409)
        assert await trail.new() == []
        assert await session.scalar(select(Bid.version).where(Bid.tender_id == tender.id)) == 1


# --- the opening ---------------------------------------------------------------------------


async def an_admin(scene: Scene) -> User:
    async with create_session_factory(scene.engine)() as session:
        admin = await create_user(session, role=Role.admin)
        await session.commit()
    return admin


class TestOpening:
    async def test_an_opening_is_recorded_when_it_starts_and_when_it_completes(
        self, scene: Scene, committed: Trail
    ) -> None:
        tender = await scene.tender()
        for price in ("1000000.00", "1100000.00", "1200000.00"):
            await scene.bid(tender, {"price": price, "duration_days": 100})
        await scene.pass_deadline(tender)
        await committed.new()

        assert isinstance(await scene.open(tender), lease.Claimed)

        started, finished = await committed.new()
        tender_id = uuid.UUID(tender["id"])
        events = await scene.events(tender)
        assert summary(started) == (
            "opening.started",
            None,
            tender_id,
            {"bid_deadline": events[0]["data"]["bid_deadline"], "instance": "test-instance"},
        )
        published = next(event for event in events if event["type"] == ev.RECORD_PUBLISHED)
        assert summary(finished) == (
            "opening.completed",
            None,
            tender_id,
            {"record_sha256": published["data"]["sha256"], "instance": "test-instance"},
        )

    async def test_a_failed_opening_is_recorded_with_its_reason(
        self, scene: Scene, committed: Trail
    ) -> None:
        tender = await scene.tender()
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100})
        await scene.pass_deadline(tender)
        await committed.new()

        await scene.open(tender)

        started, failed = await committed.new()
        assert (started.action, failed.action) == ("opening.started", "opening.failed")
        assert failed.details["reason"] == "too_few_bids"
        assert set(failed.details) == {"record_sha256", "instance", "reason"}

    async def test_an_opening_asked_for_before_the_deadline_is_refused_and_recorded(
        self, scene: Scene, committed: Trail
    ) -> None:
        tender = await scene.tender()
        await scene.bid(tender, {"price": "1000000.00", "duration_days": 100})
        assert scene.officer is not None
        officer, admin = scene.officer.user, await an_admin(scene)
        await committed.new()

        # The scheduler firing early, an officer's and an administrator's code calling the
        # opening directly: the one way into an opening refuses them all.
        outcomes = [
            await pipeline.run(scene.context(), uuid.UUID(tender["id"]), actor=actor)
            for actor in (None, officer.actor, admin.actor)
        ]

        assert all(isinstance(outcome, lease.NotDue) for outcome in outcomes)
        refusals = await committed.new()
        assert ids(refusals) == [
            ("opening.refused_early", None),
            ("opening.refused_early", officer.id),
            ("opening.refused_early", admin.id),
        ]
        assert isinstance(outcomes[0], lease.NotDue)
        deadline = iso_utc(outcomes[0].deadline)
        assert {entry.tender_id for entry in refusals} == {uuid.UUID(tender["id"])}
        assert [entry.details for entry in refusals] == [
            {"bid_deadline": deadline, "instance": "test-instance"}
        ] * 3
        assert [entry.actor_role for entry in refusals] == [None, "officer", "admin"]
        read = await scene.client.get(f"{TENDERS}/{tender['id']}", headers=scene.officer.headers)
        assert read.json()["status"] == "published"
        assert await scene.events(tender) == []


async def room(
    scene: Scene, tender: dict[str, Any], path: str, party: Party, text: str | None = None
) -> httpx.Response:
    return await scene.client.post(
        f"{TENDERS}/{tender['id']}/opening{path}",
        json=None if text is None else {"text": text},
        headers=party.headers,
    )


class TestRoom:
    async def test_check_ins_objections_answers_reveals_and_confirmations(
        self, scene: Scene, committed: Trail
    ) -> None:
        tender = await scene.tender(opening_mode="bidder", decryption_window_minutes=30)
        officer = scene.officer
        assert officer is not None
        parties, identities = [], []
        for price in ("1000000.00", "1100000.00", "1200000.00"):
            party, own = await scene.bidder(), age.Identity.generate()
            form = {"price": price, "duration_days": 100}
            await scene.bid(tender, form, party=party, recipients=[own.recipient])
            parties.append(party)
            identities.append(own)
        assert (await room(scene, tender, "/check-in", officer)).status_code == 200
        await scene.pass_deadline(tender)
        start = utcnow()
        waiting = await scene.open(tender, clock=lambda: start)
        assert isinstance(waiting, lease.Waiting)
        await committed.new()
        first = parties[0]

        assert (await room(scene, tender, "/check-in", first)).status_code == 200
        assert (await room(scene, tender, "/check-in", first)).status_code == 200  # again
        raised = await room(scene, tender, "/objections", first, "The clock was wrong.")
        objection = raised.json()["data"]["objection_id"]
        answer = await room(
            scene, tender, f"/objections/{objection}/answer", officer, "It was not."
        )
        assert answer.status_code == 201, answer.text
        wrong = await reveal(scene, tender, first, bytes(16))
        assert wrong.status_code == 422
        keys = [
            await file_key_of(scene, tender, party, own)
            for party, own in zip(parties, identities, strict=True)
        ]
        revealed = [
            await reveal(scene, tender, party, key)
            for party, key in zip(parties, keys, strict=True)
        ]
        assert [answer.status_code for answer in revealed] == [201] * 3
        late = waiting.until + timedelta(seconds=1)
        assert isinstance(await scene.open(tender, clock=lambda: late), lease.Claimed)
        confirmed = await room(scene, tender, "/record/confirm", first)
        assert confirmed.status_code == 201, confirmed.text

        entries = await committed.new()
        room_entries = [entry for entry in entries if not entry.action.startswith("opening.")]
        seq = {
            (event["type"], event["data"].get("bidder_id")): event["seq"]
            for event in await scene.events(tender)
        }
        bid_ids = {
            party.user.id: str(
                (
                    await scene.client.get(
                        f"{TENDERS}/{tender['id']}/bids/mine", headers=party.headers
                    )
                ).json()["bid"]["id"]
            )
            for party in parties
        }
        organization = str(first.user.organization_id)
        assert [summary(entry) for entry in room_entries] == [
            (
                ev.CHECKED_IN,
                first.user.id,
                uuid.UUID(tender["id"]),
                {"event_seq": seq[ev.CHECKED_IN, None]},
            ),
            (
                ev.OBJECTION_RAISED,
                first.user.id,
                uuid.UUID(tender["id"]),
                {"event_seq": seq[ev.OBJECTION_RAISED, organization], "objection_id": objection},
            ),
            (
                ev.OBJECTION_ANSWERED,
                officer.user.id,
                uuid.UUID(tender["id"]),
                {"event_seq": seq[ev.OBJECTION_ANSWERED, None], "objection_id": objection},
            ),
            (
                "bid.reveal_failed",
                first.user.id,
                uuid.UUID(tender["id"]),
                {"bid_id": bid_ids[first.user.id], "bidder_id": organization, "tries_left": 4},
            ),
            *(
                (
                    "bid.revealed",
                    party.user.id,
                    uuid.UUID(tender["id"]),
                    {
                        "bid_id": bid_ids[party.user.id],
                        "bidder_id": str(party.user.organization_id),
                        "event_seq": seq[ev.BID_DECRYPTED, str(party.user.organization_id)],
                        "outcome": ev.BID_DECRYPTED,
                    },
                )
                for party in parties
            ),
            (
                ev.RECORD_CONFIRMED,
                first.user.id,
                uuid.UUID(tender["id"]),
                {
                    "event_seq": seq[ev.RECORD_CONFIRMED, organization],
                    "record_sha256": confirmed.json()["data"]["record_sha256"],
                },
            ),
        ]
        assert [entry.action for entry in entries if entry.action.startswith("opening.")] == [
            "opening.completed"
        ]
        text = await committed.text()
        for key in keys:
            assert key.hex() not in text and base64.b64encode(key).decode() not in text
        assert "The clock was wrong." not in text and "1000000.00" not in text
