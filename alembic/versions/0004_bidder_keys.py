"""bidder keys

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bidding.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bidder_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(length=100), nullable=False),
        sa.Column("registered_by_id", sa.Uuid(), nullable=False),
        sa.Column("registered_at", bidding.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("challenge_sha256", sa.String(length=64), nullable=True),
        sa.Column("challenge_expires_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bidder_keys_organization_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["users.id"],
            name=op.f("fk_bidder_keys_registered_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bidder_keys")),
    )
    with op.batch_alter_table("bidder_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bidder_keys_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "uq_bidder_keys_current",
            ["organization_id"],
            unique=True,
            sqlite_where=sa.text("retired_at IS NULL"),
            postgresql_where=sa.text("retired_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("bidder_keys", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_bidder_keys_current",
            sqlite_where=sa.text("retired_at IS NULL"),
            postgresql_where=sa.text("retired_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_bidder_keys_organization_id"))

    op.drop_table("bidder_keys")
