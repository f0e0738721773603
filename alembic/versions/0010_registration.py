"""Registration by email: pending accounts, the outbox, and organization name keys.

Revision ID: 0010
Revises: 0009

Each existing organization gets the key of its name (bidding.auth.names.name_key). Where
existing organizations already look alike, the oldest keeps the plain key, so that no new
look-alike of any of them can be registered; each later one gets its key followed by a space
and its id (a space is never in a key), and is named in a warning for an administrator to
rename. Their names, accounts and bids are left as they are.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bidding.db
from bidding.auth.names import name_key

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_KEY_MAX_LENGTH = 800
logger = logging.getLogger("alembic.runtime.migration")


def _fill_name_keys() -> None:
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("created_at", bidding.db.UTCDateTime()),
        sa.column("name_key", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(organizations.c.id, organizations.c.name).order_by(
            organizations.c.created_at, organizations.c.id
        )
    ).all()
    holders: dict[str, tuple[object, str]] = {}
    for organization_id, name in rows:
        key = name_key(name)[: NAME_KEY_MAX_LENGTH - 40]
        if key in holders:
            first_id, first_name = holders[key]
            logger.warning(
                "organization %s (%r) looks the same as %s (%r): keeping both; rename one",
                organization_id,
                name,
                first_id,
                first_name,
            )
            key = f"{key} {organization_id}"
        else:
            holders[key] = (organization_id, name)
        connection.execute(
            organizations.update().where(organizations.c.id == organization_id).values(name_key=key)
        )


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_key", sa.String(length=NAME_KEY_MAX_LENGTH), nullable=True)
        )
    _fill_name_keys()
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_organizations_name_key"), ["name_key"])

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activation_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("activation_expires_at", bidding.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_activation_token_hash"), ["activation_token_hash"]
        )

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", bidding.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", bidding.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", bidding.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_via", sa.String(length=8), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_messages_due", ["sent_at", "next_attempt_at"])
        batch_op.create_index(batch_op.f("ix_outbox_messages_to_address"), ["to_address"])


def downgrade() -> None:
    op.drop_table("outbox_messages")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_activation_token_hash"), type_="unique")
        batch_op.drop_column("activation_expires_at")
        batch_op.drop_column("activation_token_hash")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_organizations_name_key"), type_="unique")
        batch_op.drop_column("name_key")
