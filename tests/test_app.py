"""The application shell: health, error shape, OpenAPI, and migrations that match the models."""

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from bidding.models import Base


class TestShell:
    async def test_health_reports_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["server_time"].endswith("Z") or "+00:00" in body["server_time"]

    async def test_unknown_paths_answer_in_the_error_shape(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.json() == {"type": "not_found", "detail": "Not Found"}

    async def test_openapi_is_served_with_docs(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        assert "/api/v1/health" in schema["paths"]
        assert (await client.get("/docs")).status_code == 200

    async def test_openapi_documents_the_real_error_shape(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        create = schema["paths"]["/api/v1/tenders"]["post"]["responses"]
        assert create["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
        assert "HTTPValidationError" not in schema["components"]["schemas"]


class TestMigrations:
    async def test_the_migrations_build_exactly_the_models(self, engine: AsyncEngine) -> None:
        def differences(connection: object) -> list[object]:
            context = MigrationContext.configure(
                connection,  # type: ignore[arg-type]
                opts={"compare_type": True, "render_as_batch": True},
            )
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
        assert diff == []
