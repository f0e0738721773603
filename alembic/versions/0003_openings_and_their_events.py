"""openings and their events

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bidding.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opening_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tender_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("at", bidding.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tender_id"],
            ["tenders.id"],
            name=op.f("fk_opening_events_tender_id_tenders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_events")),
        sa.UniqueConstraint("tender_id", "seq", name=op.f("uq_opening_events_tender_id_seq")),
    )
    op.create_table(
        "openings",
        sa.Column("tender_id", sa.Uuid(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("started_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("record_key_id", sa.String(length=16), nullable=True),
        sa.Column("record_signature", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["tender_id"],
            ["tenders.id"],
            name=op.f("fk_openings_tender_id_tenders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tender_id", name=op.f("pk_openings")),
    )


def downgrade() -> None:
    op.drop_table("openings")
    op.drop_table("opening_events")
