"""Running the Alembic migrations from code: the CLI, the app's start-up and the tests."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

PACKAGE = Path(__file__).resolve().parent
# A wheel carries the migrations in the package; a source tree keeps them at its top.
ALEMBIC_DIR = next(
    path for path in (PACKAGE / "alembic", PACKAGE.parent / "alembic") if path.is_dir()
)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database up to `revision` (the newest by default)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
