"""The `registry_identity` table: one row with a random id that names this registry.

The Kubernetes backend labels and names its objects with it (unless an instance is configured),
so two registries sharing a namespace never take each other's objects for their own.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from jupyter_modelserve.registry.orm import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "registry_identity",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_identity"),
    )
    # Inserted here, in the migration's transaction: every process sees the same one row.
    op.bulk_insert(table, [{"id": uuid.uuid4().hex, "created_at": datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.drop_table("registry_identity")
