"""`bidding audit verify` and `bidding users create` as an operator runs them: real processes
against a data folder (SQLite) or a database URL (PostgreSQL), the trail tampered with in
the database as its administrator could, anchors signed with the platform's key in the data
folder and copies of them kept outside."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bidding.app import create_app
from bidding.audit import anchors as audit_anchors
from bidding.audit import service as audit
from bidding.audit.models import AuditAnchor, AuditChain, AuditEntry
from bidding.auth.models import Role
from bidding.crypto.signing import SigningKey, load_or_create_signing_key
from bidding.db import create_engine, create_session_factory
from bidding.migrations import upgrade
from bidding.opening import service as opening_service
from bidding.settings import Settings
from bidding.tenders.models import TenderStatus
from tests.conftest import fresh_postgres_database
from tests.factories import create_organization, create_user
from tests.support.tampering import (
    CHAIN,
    TENDER,
    Tampering,
    delete_one,
    edit_details,
    forge_in_the_middle,
    rewrite_from,
    swap_two,
)
from tests.tenders.conftest import create_tender

pytestmark = pytest.mark.process


@dataclass
class Place:
    """A migrated database of its own: the environment that points the command at it."""

    env: dict[str, str]
    engine: AsyncEngine
    backend: str

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=Path(self.env["BIDDING_DATA_DIR"]),
            database_url=self.env.get("BIDDING_DATABASE_URL"),
            demo=False,
        )

    def signing_key(self) -> SigningKey:
        """The platform's key in the data folder, as `bidding serve` makes it."""
        return load_or_create_signing_key(self.settings.signing_key_path)

    def bidding(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bidding", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(params=["sqlite", "postgresql"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BIDDING_")}
    env["BIDDING_DATA_DIR"] = str(tmp_path)
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bidding.sqlite3'}"
        engine = create_engine(url)
        await upgrade(engine)
        yield Place(env, engine, "sqlite")
        await engine.dispose()
        return
    async with fresh_postgres_database("bidding_audit") as url:
        engine = create_engine(url)
        await upgrade(engine)
        yield Place(env | {"BIDDING_DATABASE_URL": url}, engine, "postgresql")
        await engine.dispose()


async def fill(place: Place) -> None:
    """A platform chain of three entries and a tender's chain of five, committed."""
    async with create_session_factory(place.engine)() as session:
        for number in range(3):
            await audit.record(
                session=session, action="auth.sign_in_failed", details={"email": f"x{number}@y.cn"}
            )
        for number in range(5):
            details = {"bid_id": str(uuid.uuid4()), "sha256": f"{number:064x}", "size": number}
            await audit.record(
                session=session, action="bid.submitted", tender_id=TENDER, details=details
            )
        await session.commit()


async def tampered(place: Place, tamper: Tampering) -> None:
    """Tamper as the database's administrator: its guard switched off first."""
    async with create_session_factory(place.engine)() as session:
        if place.backend == "postgresql":
            await session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        await tamper(session)
        if place.backend == "postgresql":
            await session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        await session.commit()


class TestVerify:
    async def test_an_untouched_trail_verifies_and_prints_each_chain_and_its_head(
        self, place: Place
    ) -> None:
        await fill(place)
        async with create_session_factory(place.engine)() as session:
            heads = {
                head.chain: head.head_hash for head in await session.scalars(select(AuditChain))
            }

        result = place.bidding("audit", "verify")

        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == (
            f"audit trail intact: 8 entries in 2 chains: platform 3 (head {heads['platform']}), "
            f"{CHAIN} 5 (head {heads[CHAIN]})\n"
        )

    @pytest.mark.parametrize(
        ("tamper", "position", "problem"),
        [
            (edit_details, 3, "edited"),
            (delete_one, 2, "missing"),
            (swap_two, 2, "reordered"),
            (forge_in_the_middle, 3, "inserted"),
        ],
        ids=["edited", "deleted", "swapped", "forged"],
    )
    async def test_tampering_exits_1_naming_the_first_broken_link(
        self, place: Place, tamper: Tampering, position: int, problem: str
    ) -> None:
        await fill(place)
        await tampered(place, tamper)

        result = place.bidding("audit", "verify")

        assert (result.returncode, result.stdout) == (1, "")
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            f"bidding: error: audit trail broken: chain {CHAIN}, position {position}: {problem} ("
        ), lines[0]

    async def test_an_empty_trail_verifies(self, place: Place) -> None:
        result = place.bidding("audit", "verify")
        assert (result.returncode, result.stdout) == (
            0,
            "audit trail intact: 0 entries in 0 chains\n",
        )


async def finish_the_tender(place: Place) -> None:
    """Make TENDER an opened tender: its chain is anchored from then on."""
    async with create_session_factory(place.engine)() as session:
        organization = await create_organization(session)
        officer = await create_user(session, role=Role.officer, organization=organization)
        await create_tender(session, officer=officer, status=TenderStatus.opened, id=TENDER)
        await session.commit()


async def anchored(place: Place) -> list[audit_anchors.Anchor]:
    """The anchoring job, run by an instance of this platform."""
    return await audit_anchors.anchor_moved_chains(
        session_factory=create_session_factory(place.engine),
        signing=place.signing_key(),
        recorded=opening_service.recorded,
    )


async def published(place: Place) -> dict[str, object]:
    """GET /api/v1/audit/anchors, as an outsider fetches it."""
    app = create_app(place.settings, manage_state=False)
    app.state.session_factory = create_session_factory(place.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get("/api/v1/audit/anchors")
    assert answer.status_code == 200, answer.text
    page: dict[str, object] = answer.json()
    return page


def rewriting(chain: str, position: int) -> Tampering:
    async def rewrite(session: AsyncSession) -> None:
        await rewrite_from(session, chain, position)

    return rewrite


async def heads_of(place: Place) -> dict[str, str]:
    async with create_session_factory(place.engine)() as session:
        return {head.chain: head.head_hash for head in await session.scalars(select(AuditChain))}


class TestAnchors:
    async def test_an_anchored_trail_verifies_and_says_how_far_each_chain_is_anchored(
        self, place: Place
    ) -> None:
        await fill(place)
        await finish_the_tender(place)
        await anchored(place)
        async with create_session_factory(place.engine)() as session:
            await audit.record(session=session, action="auth.signed_out")
            await session.commit()
        heads = await heads_of(place)

        result = place.bidding("audit", "verify")

        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == (
            "audit trail intact: 9 entries in 2 chains, borne out by 2 signed heads: "
            f"platform 4 (head {heads['platform']}, anchored at 3), "
            f"{CHAIN} 5 (head {heads[CHAIN]}, anchored at 5)\n"
        )

    @pytest.mark.parametrize("chain", [audit.PLATFORM_CHAIN, CHAIN])
    async def test_a_chain_recomputed_by_the_administrator_contradicts_its_anchor(
        self, place: Place, chain: str
    ) -> None:
        await fill(place)
        await finish_the_tender(place)
        (anchor,) = [anchor for anchor in await anchored(place) if anchor.chain == chain]

        await tampered(place, rewriting(chain, 2))

        async with create_session_factory(place.engine)() as session:
            assert (await audit.verify(session=session)).broken == [], "it hashes through"
        rewritten = (await heads_of(place))[chain]
        result = place.bidding("audit", "verify")
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (
            f"bidding: error: audit trail contradicts a signed head: chain {chain}, anchored "
            f"size {anchor.size}: the entry there hashes to {rewritten}, but anchor "
            f"{anchor.id} of {anchor.anchored_at} signed {anchor.head}: the chain was "
            "rewritten\n"
        )

    async def test_an_anchor_edited_to_match_the_rewrite_fails_its_signature(
        self, place: Place
    ) -> None:
        await fill(place)
        (anchor,) = await anchored(place)

        async def rewrite_both(session: AsyncSession) -> None:
            head = await rewrite_from(session, audit.PLATFORM_CHAIN, 1)
            await session.execute(update(AuditAnchor).values(head_hash=head))

        await tampered(place, rewrite_both)

        result = place.bidding("audit", "verify")
        assert result.returncode == 1
        assert result.stderr == (
            "bidding: error: audit trail contradicts a signed head: chain platform, anchored "
            f"size 3: anchor {anchor.id} of {anchor.anchored_at} does not carry the "
            "platform's signature: it was altered\n"
        )

    async def test_a_copy_kept_outside_catches_a_rewrite_whose_anchors_were_removed(
        self, place: Place, tmp_path: Path
    ) -> None:
        await fill(place)
        await finish_the_tender(place)
        await anchored(place)
        outside = tmp_path / "anchors.json"
        outside.write_text(json.dumps(await published(place)))

        async def rewrite_and_remove(session: AsyncSession) -> None:
            await rewrite_from(session, CHAIN, 4)
            await session.execute(AuditAnchor.__table__.delete())

        await tampered(place, rewrite_and_remove)

        alone = place.bidding("audit", "verify")
        assert alone.returncode == 0, "from the database alone it cannot be told"
        result = place.bidding("audit", "verify", "--anchors", str(outside))
        assert (result.returncode, result.stdout) == (1, "")
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        rewritten = (await heads_of(place))[CHAIN]
        tender_anchor = next(
            a for a in json.loads(outside.read_text())["anchors"] if a["chain"] == CHAIN
        )
        assert lines[0] == (
            f"bidding: error: audit trail contradicts a signed head: chain {CHAIN}, anchored "
            f"size 5: the entry there hashes to {rewritten}, but the outside copy of the "
            f"anchor of {tender_anchor['anchored_at']} signed {tender_anchor['head']}: the "
            "chain was rewritten; 2 more"
        )
        kept = place.bidding("audit", "verify", "--anchors", str(outside))
        assert kept.stderr == result.stderr, "the same answer every time"

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            ("{not json", "not JSON"),
            ('{"anchors": 3}', 'expected the anchors as served: {"anchors": [...]} or a list'),
            ('[{"chain": "platform"}]', "anchor 0: head must be a string"),
            (
                '{"anchors": [{"chain": "platform", "size": true, "head": "", '
                '"anchored_at": "", "key_id": "", "signature": ""}]}',
                "anchor 0: size must be a whole number from 1",
            ),
            ("[" * 100000 + "]" * 100000, "not JSON"),
        ],
        ids=["not-json", "not-a-list", "missing-fields", "boolean-size", "deep"],
    )
    async def test_an_anchors_file_that_is_not_anchors_is_refused_in_one_line(
        self, place: Place, tmp_path: Path, content: str, problem: str
    ) -> None:
        outside = tmp_path / "anchors.json"
        outside.write_text(content)

        result = place.bidding("audit", "verify", "--anchors", str(outside))

        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == f"bidding: error: {outside}: {problem}\n"

    async def test_an_outside_copy_altered_is_named_not_believed(
        self, place: Place, tmp_path: Path
    ) -> None:
        await fill(place)
        await anchored(place)
        page = await published(place)
        anchors = page["anchors"]
        assert isinstance(anchors, list)
        anchors[0]["size"] = 2
        outside = tmp_path / "anchors.json"
        outside.write_text(json.dumps(page))

        result = place.bidding("audit", "verify", "--anchors", str(outside))

        assert result.returncode == 1
        assert result.stderr == (
            "bidding: error: audit trail contradicts a signed head: chain platform, anchored "
            f"size 2: the outside copy of the anchor of {anchors[0]['anchored_at']} does not "
            "carry the platform's signature: it was altered\n"
        )

    async def test_without_the_platforms_key_the_anchors_cannot_be_checked(
        self, place: Place
    ) -> None:
        await fill(place)
        (anchor,) = await anchored(place)
        place.settings.signing_key_path.unlink()

        result = place.bidding("audit", "verify")

        assert result.returncode == 1
        assert result.stderr == (
            "bidding: error: audit trail contradicts a signed head: chain platform, anchored "
            f"size 3: anchor {anchor.id} of {anchor.anchored_at} cannot be checked: the "
            "platform's public key is not at hand\n"
        )
        assert not place.settings.signing_key_path.exists(), "verify never makes a key"


class TestUsersCreate:
    async def test_an_account_made_on_the_command_line_is_recorded_by_nobody_via_the_cli(
        self, place: Place
    ) -> None:
        password = "a long enough passphrase"
        created = place.bidding(
            "users", "create", "--email", "Admin@Example.com", "--password-stdin",
            "--role", "admin", stdin=f"{password}\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr

        async with create_session_factory(place.engine)() as session:
            (entry,) = await session.scalars(select(AuditEntry))
        assert (entry.chain, entry.action, entry.actor_user_id, entry.actor_role) == (
            "platform",
            "auth.user_created",
            None,
            None,
        )
        assert entry.details == {
            "user_id": entry.details["user_id"],
            "email": "admin@example.com",
            "role": "admin",
            "organization_id": None,
            "organization_created": False,
            "via": "cli",
        }
        assert password not in str(entry.details)
        verified = place.bidding("audit", "verify")
        assert verified.returncode == 0, verified.stderr
