"""The registry store: every database read and write, each in its own short transaction.

Methods are blocking; callers on an event loop run them in a thread. They hand out detached
values (views and `ServeRecord`s), never ORM objects, so no session outlives a call.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Select, and_, delete, func, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Conflict, InvalidInput, NotFound, RegistryUnavailable
from ..schemas import ModelVersionView, RegisteredModelView, ServeState
from . import orm
from .database import create_registry_engine, describe_database_error, migrate, redacted
from .identity import RegistryIdentity, load_identity
from .lease import Leases
from .rows import ServeRecord, model_view, phase, serve_record, tags_by_key, version_view

SelectT = TypeVar("SelectT", bound=Select[Any])
# Two writers may pick the same "max + 1"; the primary key rejects one, which then tries again.
_VERSION_ALLOCATION_ATTEMPTS = 20


class RegistryStore:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.engine: Engine = create_registry_engine(db_url)
        self.created_here = migrate(self.engine)  # the reconciler never sweeps when True
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.leases = Leases(self._session)
        self._identity: RegistryIdentity | None = None

    def identity(self) -> RegistryIdentity:
        """This registry's stored id (read once), and whether this store created it."""
        if self._identity is None:
            self._identity = load_identity(self._session, self.created_here)
        return self._identity

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction; database faults leave here as our errors, never as raw SQL.

        IntegrityError passes through for the caller, who knows what a clash means there.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise
        except DataError as error:
            raise InvalidInput(
                f"a value does not fit the registry: {describe_database_error(error)}"
            ) from None
        except SQLAlchemyError as error:
            raise RegistryUnavailable(
                f"the registry database {redacted(self.db_url)} cannot be used: "
                f"{describe_database_error(error)}"
            ) from None

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

    def list_registered_models(
        self, limit: int | None = None, offset: int = 0
    ) -> list[RegisteredModelView]:
        """Models by name, a page at a time; two queries whatever the page size."""
        with self._session() as session:
            query = _page(
                select(orm.RegisteredModel).order_by(orm.RegisteredModel.name), limit, offset
            )
            models = list(session.scalars(query))
            tags = tags_by_key(
                session.execute(
                    select(orm.RegisteredModelTag.name, orm.RegisteredModelTag.tag)
                    .where(orm.RegisteredModelTag.name.in_([m.name for m in models]))
                    .order_by(orm.RegisteredModelTag.tag)
                )
            )
            return [model_view(m, tags.get((m.name,), [])) for m in models]

    def get_registered_model(self, name: str) -> RegisteredModelView:
        with self._session() as session:
            model = self._model(session, name)
            tags = session.scalars(
                select(orm.RegisteredModelTag.tag)
                .where(orm.RegisteredModelTag.name == name)
                .order_by(orm.RegisteredModelTag.tag)
            )
            return model_view(model, list(tags))

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModelView:
        with self._session() as session:
            model = self._model(session, name)
            model.description = description
            model.last_updated_time = orm.utcnow()
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> list[ModelVersionView]:
        """Delete a model and its versions; returns the deleted versions (for their artifacts)."""
        try:
            with self._session() as session:
                self._model(session, name)
                self._refuse_if_served(session, name, None)
                versions = self._versions(session, name)
                session.execute(delete(orm.RegisteredModel).where(orm.RegisteredModel.name == name))
                return versions
        except IntegrityError:  # a serve was created between the check and the delete
            raise Conflict(_served_message(name, None)) from None

    def delete_registered_model_if_empty(self, name: str) -> None:
        """Undo a registration's implicit model creation: drop `name` if it has no versions."""
        with self._session() as session:
            has_versions = session.scalar(
                select(func.count())
                .select_from(orm.ModelVersion)
                .where(orm.ModelVersion.name == name)
            )
            if not has_versions:
                session.execute(delete(orm.RegisteredModel).where(orm.RegisteredModel.name == name))

    def add_registered_model_tag(self, name: str, tag: str) -> None:
        try:
            with self._session() as session:
                self._model(session, name)
                session.merge(orm.RegisteredModelTag(name=name, tag=tag))
        except IntegrityError:  # the same tag added concurrently, or the model just deleted
            self.get_registered_model(name)  # 404 if it is gone; else the tag is there

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
        experiment_id: str = "",
    ) -> ModelVersionView:
        """Add version max + 1 of `name` (creating the registered model if needed).

        `source_for(version)` names where the artifact of that version will live.
        """
        unique_tags = list(dict.fromkeys(tags or []))
        for _ in range(_VERSION_ALLOCATION_ATTEMPTS):
            version = 0
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
                            experiment_id=experiment_id,
                            model_type=model_type,
                            current_stage="None",
                            dataset=dataset,
                            description=description,
                            source=source_for(version),
                        )
                    )
                    session.flush()
                    session.add_all(
                        orm.ModelVersionTag(name=name, version=version, tag=t) for t in unique_tags
                    )
                return self.get_model_version(name, version)
            except IntegrityError:
                # Only a true collision is worth another try: another writer took this version
                # number, or created the registered model first. Anything else is a conflict.
                if not self._was_taken(name, version):
                    raise Conflict(
                        f"could not add a version of {name!r}: the registry changed while it "
                        "was being added (was the model deleted?); try again"
                    ) from None
        raise Conflict(f"could not allocate a new version of {name!r}: too many concurrent writers")

    def _was_taken(self, name: str, version: int) -> bool:
        with self._session() as session:
            if version and session.get(orm.ModelVersion, (name, version)) is not None:
                return True
            return version == 0 and session.get(orm.RegisteredModel, name) is not None

    def list_model_versions(
        self, name: str, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersionView]:
        """Versions of `name` in version order, a page at a time, in three queries."""
        with self._session() as session:
            self._model(session, name)
            return self._versions(session, name, limit, offset)

    def get_model_version(self, name: str, version: int) -> ModelVersionView:
        with self._session() as session:
            row = self._version(session, name, version)
            tags = session.scalars(
                select(orm.ModelVersionTag.tag)
                .where(orm.ModelVersionTag.name == name, orm.ModelVersionTag.version == version)
                .order_by(orm.ModelVersionTag.tag)
            )
            return version_view(row, list(tags))

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
        view = self.get_model_version(name, version)
        try:
            with self._session() as session:
                self._version(session, name, version)
                self._refuse_if_served(session, name, version)
                session.execute(
                    delete(orm.ModelVersion).where(
                        orm.ModelVersion.name == name, orm.ModelVersion.version == version
                    )
                )
        except IntegrityError:  # a serve was created between the check and the delete
            raise Conflict(_served_message(name, version)) from None
        return view

    def add_model_version_tag(self, name: str, version: int, tag: str) -> None:
        try:
            with self._session() as session:
                self._version(session, name, version)
                session.merge(orm.ModelVersionTag(name=name, version=version, tag=tag))
        except IntegrityError:  # the same tag added concurrently, or the version just deleted
            self.get_model_version(name, version)

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
            found = session.execute(
                _serves_query().where(
                    orm.Serve.model_name == name, orm.Serve.model_version == version
                )
            ).first()
            return serve_record(cast(Any, found), found.source) if found else None

    def list_serves(
        self, backend: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[ServeRecord]:
        """Serves by name and version, a page at a time, in one query."""
        query = _serves_query().order_by(orm.Serve.model_name, orm.Serve.model_version)
        if backend is not None:
            query = query.where(orm.Serve.backend == backend)
        with self._session() as session:
            rows = session.execute(_page(query, limit, offset))
            return [serve_record(cast(Any, row), row.source) for row in rows]

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
                source = self._version(session, name, version).source
                return serve_record(row, source), True
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
        if expected is not None:
            self._update_serve_if(name, version, expected, state, reason, url)
            return self.get_serve(name, version)
        with self._session() as session:
            row = session.get(orm.Serve, (name, version))
            if row is None:
                return None
            now = orm.utcnow()
            if phase(row.state) != phase(state.value):
                row.state_since = now
            if (row.state, row.reason, row.url) != (state.value, reason, url or row.url):
                row.updated_at = now
            row.state = state.value
            row.reason = reason
            row.url = url or row.url
        return self.get_serve(name, version)

    def _update_serve_if(
        self,
        name: str,
        version: int,
        expected: ServeState,
        state: ServeState,
        reason: str | None,
        url: str | None,
    ) -> None:
        """One conditional UPDATE: atomic on every database. A read-then-write is not on
        SQLite, whose driver starts the transaction only at the write, so two readers of the
        same old state would both write."""
        now = orm.utcnow()
        values: dict[str, object] = {"state": state.value, "reason": reason, "updated_at": now}
        if url:
            values["url"] = url
        if phase(expected.value) != phase(state.value):
            values["state_since"] = now
        with self._session() as session:
            session.execute(
                update(orm.Serve)
                .where(
                    orm.Serve.model_name == name,
                    orm.Serve.model_version == version,
                    orm.Serve.state == expected.value,
                )
                .values(**values)
            )

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

    @staticmethod
    def _versions(
        session: Session, name: str, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersionView]:
        # Plain rows, not ORM objects: a page of 1,000 versions builds no identity map.
        query = select(*orm.ModelVersion.__table__.columns).where(orm.ModelVersion.name == name)
        rows = list(session.execute(_page(query.order_by(orm.ModelVersion.version), limit, offset)))
        tags = tags_by_key(
            session.execute(
                select(orm.ModelVersionTag.version, orm.ModelVersionTag.tag)
                .where(
                    orm.ModelVersionTag.name == name,
                    orm.ModelVersionTag.version.in_([row.version for row in rows]),
                )
                .order_by(orm.ModelVersionTag.tag)
            )
        )
        # A Row has the ORM object's attribute names: the view builders read either.
        return [version_view(cast(Any, row), tags.get((row.version,), [])) for row in rows]


def _page(query: SelectT, limit: int | None, offset: int) -> SelectT:
    if offset:
        query = query.offset(offset)
    return query.limit(limit) if limit is not None else query


def _serves_query() -> Any:  # Select[Serve, str]; spelled differently in SQLAlchemy 2.0
    """Serve rows with their version's source: one join instead of one query per row."""
    # Plain rows, not ORM objects: a list of 1,000 serves builds no identity map.
    return select(*orm.Serve.__table__.columns, orm.ModelVersion.source).join(
        orm.ModelVersion,
        and_(
            orm.ModelVersion.name == orm.Serve.model_name,
            orm.ModelVersion.version == orm.Serve.model_version,
        ),
        isouter=True,
    )


def _served_message(name: str, version: int | None) -> str:
    what = f"model {name!r}" if version is None else f"model {name!r} version {version}"
    return f"{what} is being served; delete the serve first (DELETE /api/v1/serve)"


def _current_user() -> str:
    try:
        return getpass.getuser()[:64]
    except Exception:  # no passwd entry in some containers
        return ""
