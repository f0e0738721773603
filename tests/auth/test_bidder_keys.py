"""A bidder organization's own recipient: registration with history, and the key check."""

import base64
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.auth.models import BidderKey, Role
from bidding.crypto import age
from bidding.db import utcnow
from tests.auth.conftest import KEYS, check, register
from tests.factories import bearer, create_organization, create_user


async def bidder_headers(session: AsyncSession) -> dict[str, str]:
    return await bearer(session, await create_user(session, role=Role.bidder))


class TestRegistration:
    async def test_a_new_key_retires_the_old_one_which_stays_in_the_history(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = await bidder_headers(session)
        first, second = age.Identity.generate(), age.Identity.generate()
        assert (await client.get(KEYS, headers=headers)).json() == {"current": None, "history": []}

        body = (await register(client, headers, first)).json()
        assert body["current"]["recipient"] == str(first.recipient)
        assert body["current"]["verified_at"] is None and body["history"] == []
        again = (await register(client, headers, first)).json()
        assert again == body, "registering the same recipient again changes nothing"

        body = (await register(client, headers, second)).json()
        assert body["current"]["recipient"] == str(second.recipient)
        assert [key["recipient"] for key in body["history"]] == [str(first.recipient)]
        assert body["history"][0]["retired_at"] is not None

    async def test_the_key_belongs_to_the_organization_not_the_person(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        company = await create_organization(session, name="Builder Ltd")
        alice = await create_user(session, role=Role.bidder, organization=company)
        bob = await create_user(session, role=Role.bidder, organization=company)
        identity = age.Identity.generate()
        await register(client, await bearer(session, alice), identity)
        seen_by_bob = (await client.get(KEYS, headers=await bearer(session, bob))).json()
        assert seen_by_bob["current"]["recipient"] == str(identity.recipient)
        assert seen_by_bob["current"]["registered_by_id"] == str(alice.id)

    async def test_what_is_not_an_x25519_recipient_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = await bidder_headers(session)
        identity = age.Identity.generate()
        for text in ("age1notbech32", str(identity), "ssh-ed25519 AAAAC3Nza", ""):
            answer = await client.put(KEYS, json={"recipient": text}, headers=headers)
            assert answer.status_code == 422, text
            assert answer.json()["type"] == "invalid_recipient", answer.text
        assert (await client.get(KEYS, headers=headers)).json()["current"] is None

    async def test_only_bidders_hold_keys(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        officer = await bearer(session, await create_user(session, role=Role.officer))
        assert (await client.get(KEYS, headers=officer)).status_code == 403
        identity = age.Identity.generate()
        assert (await register(client, officer, identity)).status_code == 403
        assert (await client.get(KEYS)).status_code == 401


class TestKeyCheck:
    async def test_answering_the_sealed_value_marks_the_key_verified(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = await bidder_headers(session)
        identity = age.Identity.generate()
        await register(client, headers, identity)
        answered = await check(client, headers, identity)
        assert answered.status_code == 200, answered.text
        assert answered.json()["current"]["verified_at"] is not None

        # A new key must be proven again; the old one keeps its verification in the history.
        body = (await register(client, headers, age.Identity.generate())).json()
        assert body["current"]["verified_at"] is None
        assert body["history"][0]["verified_at"] is not None

    async def test_another_identity_cannot_answer(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = await bidder_headers(session)
        await register(client, headers, age.Identity.generate())
        asked = await client.post(f"{KEYS}/challenge", headers=headers)
        sealed = base64.b64decode(asked.json()["challenge"])
        try:
            age.unseal_bytes(sealed, [age.Identity.generate()])
            raise AssertionError("a stranger's identity opened the challenge")
        except age.NoIdentityMatchError:
            pass
        guessed = await client.post(
            f"{KEYS}/challenge/answer", json={"answer": "bidding key check guess"}, headers=headers
        )
        assert guessed.status_code == 422
        assert guessed.json()["type"] == "wrong_answer"
        assert (await client.get(KEYS, headers=headers)).json()["current"]["verified_at"] is None

    async def test_no_key_no_challenge_and_an_expired_one_are_refused(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        headers = await bidder_headers(session)
        no_key = await client.post(f"{KEYS}/challenge", headers=headers)
        assert (no_key.status_code, no_key.json()["type"]) == (409, "no_key")
        identity = age.Identity.generate()
        await register(client, headers, identity)
        unasked = await client.post(
            f"{KEYS}/challenge/answer", json={"answer": "x"}, headers=headers
        )
        assert (unasked.status_code, unasked.json()["type"]) == (409, "no_challenge")

        asked = await client.post(f"{KEYS}/challenge", headers=headers)
        plaintext = age.unseal_bytes(base64.b64decode(asked.json()["challenge"]), [identity])
        await session.execute(
            update(BidderKey).values(challenge_expires_at=utcnow() - timedelta(seconds=1))
        )
        late = await client.post(
            f"{KEYS}/challenge/answer", json={"answer": plaintext.decode()}, headers=headers
        )
        assert (late.status_code, late.json()["type"]) == (409, "no_challenge")
