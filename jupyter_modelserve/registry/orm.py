"""SQLAlchemy tables: Submarine's model registry plus our `serve` table.

Table and column names follow Submarine's schema so a registry migrated from it reads the same.
Timestamps are stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Always hands out aware UTC datetimes, also on SQLite (which drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# Explicit constraint names keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RegisteredModel(Base):
    __tablename__ = "registered_model"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    creation_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_updated_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    description: Mapped[str | None] = mapped_column(Text)


class RegisteredModelTag(Base):
    __tablename__ = "registered_model_tag"

    name: Mapped[str] = mapped_column(
        String(256),
        ForeignKey("registered_model.name", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    )
    tag: Mapped[str] = mapped_column(String(256), primary_key=True)


class ModelVersion(Base):
    __tablename__ = "model_version"

    name: Mapped[str] = mapped_column(
        String(256),
        ForeignKey("registered_model.name", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[str] = mapped_column(String(64))
    model_type: Mapped[str] = mapped_column(String(64))
    current_stage: Mapped[str] = mapped_column(String(64), default="None")
    creation_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_updated_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dataset: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    # Ours: where the artifact lives, as a TF Serving version folder (`<base>/<version>`).
    source: Mapped[str] = mapped_column(Text)


class ModelVersionTag(Base):
    __tablename__ = "model_version_tag"
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_version.name", "model_version.version"],
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    )

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tag: Mapped[str] = mapped_column(String(256), primary_key=True)


class Serve(Base):
    """Desired state of one serve; observed state is folded in by the service's reconcile."""

    __tablename__ = "serve"
    __table_args__ = (
        # RESTRICT: the database itself refuses to drop a model version that is being served.
        ForeignKeyConstraint(
            ["model_name", "model_version"],
            ["model_version.name", "model_version.version"],
            ondelete="RESTRICT",
        ),
    )

    model_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    backend: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the current state began: the load deadline counts from here.
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """Who holds a role shared by every process on one registry (the reconciler), and until when.

    A holder renews `expires_at` while it lives; another process takes the role over once the
    lease has lapsed. `requested_at` lets a process that is not the holder ask for a reconcile
    now (it saw a crashed model server, say).
    """

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RegistryIdentity(Base):
    """The one row that names this registry: who owns what it deployed, and since when.

    Written once, by the migration that creates it; a lost and recreated database gets a new id,
    so it can never mistake the old registry's deployments for its own.
    """

    __tablename__ = "registry_identity"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
