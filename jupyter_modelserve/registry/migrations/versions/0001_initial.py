"""Submarine's registry tables plus `model_version.source` and our `serve` table.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jupyter_modelserve.registry.orm import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_model",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("creation_time", UTCDateTime(), nullable=False),
        sa.Column("last_updated_time", UTCDateTime(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_registered_model"),
    )
    op.create_table(
        "registered_model_tag",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("tag", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_model.name"],
            name="fk_registered_model_tag_name",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "tag", name="pk_registered_model_tag"),
    )
    op.create_table(
        "model_version",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("model_type", sa.String(64), nullable=False),
        sa.Column("current_stage", sa.String(64), nullable=False),
        sa.Column("creation_time", UTCDateTime(), nullable=False),
        sa.Column("last_updated_time", UTCDateTime(), nullable=False),
        sa.Column("dataset", sa.String(256), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_model.name"],
            name="fk_model_version_name",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_version"),
    )
    op.create_table(
        "model_version_tag",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tag", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_version.name", "model_version.version"],
            name="fk_model_version_tag_name",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "version", "tag", name="pk_model_version_tag"),
    )
    op.create_table(
        "serve",
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("state_since", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "model_version"],
            ["model_version.name", "model_version.version"],
            name="fk_serve_model_name",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("model_name", "model_version", name="pk_serve"),
    )


def downgrade() -> None:
    for table in (
        "serve",
        "model_version_tag",
        "model_version",
        "registered_model_tag",
        "registered_model",
    ):
        op.drop_table(table)
