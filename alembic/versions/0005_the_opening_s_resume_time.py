"""the opening's resume time

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bidding.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("openings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resume_at", bidding.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("openings", schema=None) as batch_op:
        batch_op.drop_column("resume_at")
