"""Tender documents: officers attach files, everyone who sees the tender downloads them, and
a published tender's documents only grow, each addition recorded as an amendment."""

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.db import utcnow
from bidding.settings import Settings
from bidding.tenders.models import TenderStatus
from tests.tenders.conftest import TENDERS, Cast, create_tender

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40
LIMIT = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=database_url, demo=False, max_document_bytes=LIMIT
    )


async def attach(
    client: httpx.AsyncClient,
    tender_id: object,
    headers: dict[str, str],
    body: bytes = PDF,
    name: str = "招标文件.pdf",
    content_type: str = "application/pdf",
    **params: str,
) -> httpx.Response:
    return await client.post(
        f"{TENDERS}/{tender_id}/documents",
        params={"name": name, **params},
        content=body,
        headers={**headers, "Content-Type": content_type},
    )


class TestAttaching:
    async def test_a_draft_document_is_listed_and_downloads_byte_for_byte(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        response = await attach(client, tender.id, cast["author"].headers)
        assert response.status_code == 201, response.text
        document = response.json()
        assert document["name"] == "招标文件.pdf"
        assert document["size"] == len(PDF)
        assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
        read = await client.get(f"{TENDERS}/{tender.id}", headers=cast["colleague"].headers)
        assert [d["id"] for d in read.json()["documents"]] == [document["id"]]
        assert read.json()["amendments"] == []  # a draft's edits are not amendments

        download = await client.get(
            f"{TENDERS}/{tender.id}/documents/{document['id']}", headers=cast["author"].headers
        )
        assert download.status_code == 200
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in download.headers["content-security-policy"]
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert f"filename*=UTF-8''{quote('招标文件.pdf')}" in disposition

    async def test_adding_to_a_published_tender_is_an_amendment_and_public(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        response = await attach(
            client, tender.id, cast["author"].headers, name="答疑纪要.pdf", reason="clarification"
        )
        assert response.status_code == 201, response.text
        read = (await client.get(f"{TENDERS}/{tender.id}")).json()  # anonymous
        (amendment,) = read["amendments"]
        assert amendment["reason"] == "clarification"
        added = amendment["changes"]["document_added"]["to"]
        assert added == {"name": "答疑纪要.pdf", "sha256": hashlib.sha256(PDF).hexdigest(),
                         "size": len(PDF)}  # fmt: skip
        document_id = read["documents"][0]["id"]
        download = await client.get(f"{TENDERS}/{tender.id}/documents/{document_id}")
        assert download.content == PDF

    async def test_a_published_tender_keeps_its_documents(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        document = (await attach(client, tender.id, cast["author"].headers)).json()
        removed = await client.delete(
            f"{TENDERS}/{tender.id}/documents/{document['id']}", headers=cast["author"].headers
        )
        assert removed.status_code == 409
        assert removed.json()["type"] == "not_editable"
        read = (await client.get(f"{TENDERS}/{tender.id}")).json()
        assert len(read["documents"]) == 1

    async def test_a_draft_document_can_be_removed(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        document = (await attach(client, tender.id, cast["author"].headers)).json()
        removed = await client.delete(
            f"{TENDERS}/{tender.id}/documents/{document['id']}", headers=cast["author"].headers
        )
        assert removed.status_code == 204
        read = await client.get(f"{TENDERS}/{tender.id}", headers=cast["author"].headers)
        assert read.json()["documents"] == []


class TestRefusals:
    async def test_only_the_tenders_own_officers_attach(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author, status=TenderStatus.published)
        expected = {"other_officer": 403, "supervisor": 403, "bidder": 403, "anonymous": 401}
        for name, status in expected.items():
            response = await attach(client, tender.id, cast[name].headers)
            assert response.status_code == status, name
        read = (await client.get(f"{TENDERS}/{tender.id}")).json()
        assert read["documents"] == [] and read["amendments"] == []

    async def test_after_the_deadline_nothing_is_added(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(
            session,
            officer=cast.author,
            status=TenderStatus.published,
            bid_deadline=utcnow() - timedelta(seconds=1),
        )
        response = await attach(client, tender.id, cast["author"].headers)
        assert response.status_code == 409
        assert response.json()["type"] == "deadline_passed"

    async def test_names_that_are_paths_or_hide_characters_are_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        for name in ["../etc/passwd", "a\\b.pdf", "..", " ", "bill\u202egnp.exe", "x" * 256]:
            response = await attach(client, tender.id, cast["author"].headers, name=name)
            assert response.status_code == 422, name
            assert response.json()["type"] == "validation_error"
        repeated = await attach(client, tender.id, cast["author"].headers, name="a.pdf")
        assert repeated.status_code == 201
        again = await attach(client, tender.id, cast["author"].headers, name="a.pdf")
        assert again.status_code == 409
        assert again.json()["type"] == "name_taken"

    async def test_an_oversized_document_is_refused_before_and_while_reading(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast, tmp_path: Path
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        declared = await attach(client, tender.id, cast["author"].headers, body=b"x" * (LIMIT + 1))
        assert declared.status_code == 413

        async def chunked() -> AsyncIterator[bytes]:  # no length: the limit applies as it reads
            for _ in range(3):
                yield b"x" * (LIMIT // 2)

        streamed = await client.post(
            f"{TENDERS}/{tender.id}/documents",
            params={"name": "big.bin"},
            content=chunked(),
            headers=cast["author"].headers,
        )
        assert streamed.status_code == 413
        assert list((tmp_path / "staging").glob("*")) == []  # nothing half-written is kept
        read = await client.get(f"{TENDERS}/{tender.id}", headers=cast["author"].headers)
        assert read.json()["documents"] == []

    async def test_a_draft_document_of_another_organization_is_not_found(
        self, client: httpx.AsyncClient, session: AsyncSession, cast: Cast
    ) -> None:
        tender = await create_tender(session, officer=cast.author)
        document = (await attach(client, tender.id, cast["author"].headers)).json()
        for name in ("other_officer", "bidder", "anonymous"):
            download = await client.get(
                f"{TENDERS}/{tender.id}/documents/{document['id']}", headers=cast[name].headers
            )
            assert download.status_code == 404, name
