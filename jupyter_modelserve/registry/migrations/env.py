"""Alembic environment: always run programmatically by `registry.database.migrate`."""

from __future__ import annotations

from alembic import context

from jupyter_modelserve.registry.orm import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode recreates tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
