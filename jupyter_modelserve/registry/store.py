"""The registry store: every database read and write, each in its own short transaction.

Methods are blocking; callers on an event loop run them in a thread. They hand out detached
values (views and `ServeRecord`s), never ORM objects, so no session outlives a call.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Conflict, NotFound
from ..schemas import ModelVersionView, RegisteredModelView, ServeState
from . import orm
from .database import create_registry_engine, migrate

# Two writers may pick the same "max + 1"; the primary key rejects one, which then tries again.
_VERSION_ALLOCATION_ATTEMPTS = 20


@dataclass(frozen=True)
class ServeRecord:
    model_name: str
    model_version: int
    backend: str
    state: ServeState
    reason: str | None
    url: str | None
    created_at: datetime
    updated_at: datetime
    state_since: datetime
    source: str


class RegistryStore:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.engine: Engine = create_registry_engine(db_url)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str | None, tags: list[str]
    ) -> RegisteredModelView:
        try:
            with self._session() as session:
                session.add(orm.RegisteredModel(name=name, description=description))
                session.flush()
                session.add_all(orm.RegisteredModelTag(name=name, tag=t) for t in tags)
        except IntegrityError:
            raise Conflict(f"registered model {name!r} already exists") from None
        return self.get_registered_model(name)

    def list_registered_models(self) -> list[RegisteredModelView]:
        with self._session() as session:
            models = session.scalars(select(orm.RegisteredModel).order_by(orm.RegisteredModel.name))
            return [self._model_view(session, m) for m in models]

    def get_registered_model(self, name: str) -> RegisteredModelView:
        with self._session() as session:
            return self._model_view(session, self._model(session, name))

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModelView:
        with self._session() as session:
            model = self._model(session, name)
            model.description = description
            model.last_updated_time = orm.utcnow()
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> list[ModelVersionView]:
        """Delete a model and its versions; returns the deleted versions (for their artifacts)."""
        with self._session() as session:
            self._model(session, name)
            self._refuse_if_served(session, name, None)
            versions = self._versions(session, name)
            session.execute(delete(orm.RegisteredModel).where(orm.RegisteredModel.name == name))
            return versions

    def delete_registered_model_if_empty(self, name: str) -> None:
        """Undo a registration's implicit model creation: drop `name` if it has no versions."""
        with self._session() as session:
            has_versions = session.scalar(
                select(func.count()).select_from(orm.ModelVersion).where(
                    orm.ModelVersion.name == name
                )
            )
            if not has_versions:
                session.execute(
                    delete(orm.RegisteredModel).where(orm.RegisteredModel.name == name)
                )

    def add_registered_model_tag(self, name: str, tag: str) -> None:
        with self._session() as session:
            self._model(session, name)
            session.merge(orm.RegisteredModelTag(name=name, tag=tag))

    def delete_registered_model_tag(self, name: str, tag: str) -> None:
        with self._session() as session:
            self._model(session, name)
            tag_row = session.get(orm.RegisteredModelTag, (name, tag))
            if tag_row is None:
                raise NotFound(f"registered model {name!r} has no tag {tag!r}")
            session.delete(tag_row)

    # -- model versions ----------------------------------------------------------------------

    def add_model_version(
        self,
        name: str,
        source_for: Callable[[int], str],
        model_type: str,
        description: str | None = None,
        dataset: str | None = None,
        tags: list[str] | None = None,
    ) -> ModelVersionView:
        """Add version max + 1 of `name` (creating the registered model if needed).

        `source_for(version)` names where the artifact of that version will live.
        """
        for _ in range(_VERSION_ALLOCATION_ATTEMPTS):
            try:
                with self._session() as session:
                    if session.get(orm.RegisteredModel, name) is None:
                        session.add(orm.RegisteredModel(name=name))
                        session.flush()
                    latest = session.scalar(
                        select(func.max(orm.ModelVersion.version)).where(
                            orm.ModelVersion.name == name
                        )
                    )
                    version = (latest or 0) + 1
                    session.add(
                        orm.ModelVersion(
                            name=name,
                            version=version,
                            id=uuid.uuid4().hex,
                            user_id=_current_user(),
                            experiment_id="",
                            model_type=model_type,
                            current_stage="None",
                            dataset=dataset,
                            description=description,
                            source=source_for(version),
                        )
                    )
                    session.flush()
                    session.add_all(
                        orm.ModelVersionTag(name=name, version=version, tag=t) for t in tags or []
                    )
                return self.get_model_version(name, version)
            except IntegrityError:
                continue
        raise Conflict(f"could not allocate a new version of {name!r}: too many concurrent writers")

    def list_model_versions(self, name: str) -> list[ModelVersionView]:
        with self._session() as session:
            self._model(session, name)
            return self._versions(session, name)

    def get_model_version(self, name: str, version: int) -> ModelVersionView:
        with self._session() as session:
            return self._version_view(session, self._version(session, name, version))

    def update_model_version(
        self, name: str, version: int, changes: dict[str, str | None]
    ) -> ModelVersionView:
        with self._session() as session:
            row = self._version(session, name, version)
            for column, value in changes.items():
                setattr(row, column, value)
            row.last_updated_time = orm.utcnow()
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: int) -> ModelVersionView:
        with self._session() as session:
            row = self._version(session, name, version)
            self._refuse_if_served(session, name, version)
            view = self._version_view(session, row)
            session.delete(row)
            return view

    def add_model_version_tag(self, name: str, version: int, tag: str) -> None:
        with self._session() as session:
            self._version(session, name, version)
            session.merge(orm.ModelVersionTag(name=name, version=version, tag=tag))

    def delete_model_version_tag(self, name: str, version: int, tag: str) -> None:
        with self._session() as session:
            self._version(session, name, version)
            tag_row = session.get(orm.ModelVersionTag, (name, version, tag))
            if tag_row is None:
                raise NotFound(f"model {name!r} version {version} has no tag {tag!r}")
            session.delete(tag_row)

    # -- serves ------------------------------------------------------------------------------

    def get_serve(self, name: str, version: int) -> ServeRecord | None:
        with self._session() as session:
            row = session.get(orm.Serve, (name, version))
            return _serve_record(session, row) if row else None

    def list_serves(self) -> list[ServeRecord]:
        with self._session() as session:
            rows = session.scalars(
                select(orm.Serve).order_by(orm.Serve.model_name, orm.Serve.model_version)
            )
            return [_serve_record(session, row) for row in rows]

    def insert_serve(
        self, name: str, version: int, backend: str, url: str | None
    ) -> tuple[ServeRecord, bool]:
        """Insert a PENDING serve; returns (record, created). An existing row wins."""
        try:
            with self._session() as session:
                self._version(session, name, version)
                now = orm.utcnow()
                row = orm.Serve(
                    model_name=name,
                    model_version=version,
                    backend=backend,
                    state=ServeState.PENDING.value,
                    url=url,
                    created_at=now,
                    updated_at=now,
                    state_since=now,
                )
                session.add(row)
                session.flush()
                return _serve_record(session, row), True
        except IntegrityError:
            existing = self.get_serve(name, version)
            if existing is None:  # lost a race with a delete; the caller may try again
                raise Conflict(
                    f"serve of {name!r} version {version} changed concurrently"
                ) from None
            return existing, False

    def update_serve(
        self,
        name: str,
        version: int,
        state: ServeState,
        reason: str | None,
        url: str | None = None,
        expected: ServeState | None = None,
    ) -> ServeRecord | None:
        """Record a new state; returns the row as it now is, or None when it is gone.

        With `expected`, nothing changes unless the row is still in that state: a reconcile
        that read the row before a concurrent delete must not bring it back to life.
        """
        with self._session() as session:
            row = session.get(orm.Serve, (name, version), with_for_update=expected is not None)
            if row is None:
                return None
            if expected is not None and row.state != expected.value:
                return _serve_record(session, row)
            now = orm.utcnow()
            if _phase(row.state) != _phase(state.value):
                row.state_since = now
            if (row.state, row.reason, row.url) != (state.value, reason, url or row.url):
                row.updated_at = now
            row.state = state.value
            row.reason = reason
            row.url = url or row.url
            return _serve_record(session, row)

    def delete_serve(self, name: str, version: int) -> None:
        with self._session() as session:
            session.execute(
                delete(orm.Serve).where(
                    orm.Serve.model_name == name, orm.Serve.model_version == version
                )
            )

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _model(session: Session, name: str) -> orm.RegisteredModel:
        model = session.get(orm.RegisteredModel, name)
        if model is None:
            raise NotFound(f"registered model {name!r} does not exist")
        return model

    @staticmethod
    def _version(session: Session, name: str, version: int) -> orm.ModelVersion:
        row = session.get(orm.ModelVersion, (name, version))
        if row is None:
            if session.get(orm.RegisteredModel, name) is None:
                raise NotFound(f"registered model {name!r} does not exist")
            raise NotFound(f"model {name!r} has no version {version}")
        return row

    @staticmethod
    def _refuse_if_served(session: Session, name: str, version: int | None) -> None:
        query = select(orm.Serve).where(orm.Serve.model_name == name)
        if version is not None:
            query = query.where(orm.Serve.model_version == version)
        served = session.scalars(query).first()
        if served is not None:
            raise Conflict(
                f"model {name!r} version {served.model_version} is being served; "
                "delete the serve first (DELETE /api/v1/serve)"
            )

    def _versions(self, session: Session, name: str) -> list[ModelVersionView]:
        rows = session.scalars(
            select(orm.ModelVersion)
            .where(orm.ModelVersion.name == name)
            .order_by(orm.ModelVersion.version)
        )
        return [self._version_view(session, row) for row in rows]

    @staticmethod
    def _model_view(session: Session, model: orm.RegisteredModel) -> RegisteredModelView:
        tags = session.scalars(
            select(orm.RegisteredModelTag.tag)
            .where(orm.RegisteredModelTag.name == model.name)
            .order_by(orm.RegisteredModelTag.tag)
        )
        return RegisteredModelView(
            name=model.name,
            description=model.description,
            tags=list(tags),
            creation_time=model.creation_time,
            last_updated_time=model.last_updated_time,
        )

    @staticmethod
    def _version_view(session: Session, row: orm.ModelVersion) -> ModelVersionView:
        tags = session.scalars(
            select(orm.ModelVersionTag.tag)
            .where(orm.ModelVersionTag.name == row.name, orm.ModelVersionTag.version == row.version)
            .order_by(orm.ModelVersionTag.tag)
        )
        return ModelVersionView(
            name=row.name,
            version=row.version,
            id=row.id,
            user_id=row.user_id,
            experiment_id=row.experiment_id,
            model_type=row.model_type,
            current_stage=row.current_stage,
            source=row.source,
            dataset=row.dataset,
            description=row.description,
            tags=list(tags),
            creation_time=row.creation_time,
            last_updated_time=row.last_updated_time,
        )


def _phase(state: str) -> str:
    # PENDING and LOADING are one phase, so a load deadline counts from the request, not from
    # the moment the model server started loading.
    return "starting" if state in (ServeState.PENDING.value, ServeState.LOADING.value) else state


def _serve_record(session: Session, row: orm.Serve) -> ServeRecord:
    source = session.scalar(
        select(orm.ModelVersion.source).where(
            orm.ModelVersion.name == row.model_name,
            orm.ModelVersion.version == row.model_version,
        )
    )
    return ServeRecord(
        model_name=row.model_name,
        model_version=row.model_version,
        backend=row.backend,
        state=ServeState(row.state),
        reason=row.reason,
        url=row.url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_since=row.state_since,
        source=source or "",
    )


def _current_user() -> str:
    try:
        return getpass.getuser()[:64]
    except Exception:  # no passwd entry in some containers
        return ""
