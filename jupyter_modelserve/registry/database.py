"""Engine creation and schema migration for the registry database."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..errors import RegistryUnavailable, ServerFault

MIGRATIONS = Path(__file__).parent / "migrations"
# Seconds a process waits for another one's migration before it gives up with a clear error.
MIGRATION_LOCK_TIMEOUT = 120
_PG_LOCK_KEY = zlib.crc32(b"jupyter_modelserve.migrate")


def create_registry_engine(db_url: str) -> Engine:
    """An engine for `db_url`, tuned so several processes can share one SQLite file."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # The Jupyter server, kernels and the CLI share the file: wait for locks instead of failing.
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def migrate(engine: Engine) -> bool:
    """Bring the schema to the newest revision, one process at a time; True when this call
    created the schema (the database was new or empty).

    A database whose schema is newer than this package (another process was upgraded first)
    is refused with a message saying so, instead of failing later on a missing column.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    try:
        with _migration_lock(engine), engine.begin() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in _known_revisions(scripts):
                raise ServerFault(
                    f"the registry database {redacted(str(engine.url))} has schema revision "
                    f"{current!r}, newer than this jupyter_modelserve knows (newest "
                    f"{scripts.get_current_head()!r}): upgrade jupyter_modelserve in this "
                    "environment, or point c.ModelServeApp.db_url at another database"
                )
            if current != scripts.get_current_head():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            return current is None
    except SQLAlchemyError as error:
        raise RegistryUnavailable(
            f"cannot open the registry database {redacted(str(engine.url))}: "
            f"{describe_database_error(error)}"
        ) from None
    except OSError as error:  # the migration lock file's folder
        raise RegistryUnavailable(
            f"cannot open the registry database {redacted(str(engine.url))}: {error.strerror} "
            f"({error.filename})"
        ) from None


def describe_database_error(error: SQLAlchemyError) -> str:
    """What went wrong with the database, in words, without SQL text or parameters."""
    original = getattr(error, "orig", None)
    detail = str(original if original is not None else error).splitlines()[0]
    lowered = detail.lower()
    if "locked" in lowered or "lock timeout" in lowered:
        return "the database is locked by another process; try again"
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return "the database is read-only; check the permissions of its file and folder"
    if "disk i/o" in lowered or "disk is full" in lowered or "no space" in lowered:
        return "the database's disk failed or is full"
    if "unable to open" in lowered:
        return "the database file cannot be opened; check that its folder exists and is writable"
    if "connection" in lowered or "could not connect" in lowered or "server closed" in lowered:
        return "the database server cannot be reached"
    return f"{type(original or error).__name__} from the database driver"


def _known_revisions(scripts: ScriptDirectory) -> set[str]:
    return {script.revision for script in scripts.walk_revisions()}


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations across processes: a file lock for SQLite, an advisory lock else."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        lock = FileLock(f"{url.database}.migrate.lock", timeout=MIGRATION_LOCK_TIMEOUT)
        with lock:
            yield
        return
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            _pg_lock(connection)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                connection.commit()
        return
    yield  # other databases: Alembic's own transaction is all there is


def _pg_lock(connection: Connection) -> None:
    # SET takes no bind parameters; set_config does the same.
    connection.execute(
        text("SELECT set_config('lock_timeout', :ms, false)"),
        {"ms": f"{MIGRATION_LOCK_TIMEOUT * 1000}"},
    )
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
    connection.commit()
