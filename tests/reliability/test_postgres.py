"""PostgreSQL: the registry and service suite once more on PostgreSQL, and Alembic upgrades.

The service suite's tests (REST registry and serve routes, serve states, bad input, restarts)
run on SQLite where they are defined; they are collected here a second time, where the Jupyter
server they talk to keeps its registry in a fresh PostgreSQL schema per test. The registry
store's own tests (tests/test_registry_store.py) already run on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, create_engine, inspect

from jupyter_modelserve.registry.database import MIGRATIONS
from jupyter_modelserve.registry.orm import Base
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.service import ServeService

from .. import test_bad_input, test_registry_api, test_restarts, test_serve_api, test_serve_states
from ..conftest import Api, server_config
from ..servers import JupyterProcess
from . import tally
from .conftest import Jupyter
from .databases import KINDS, fresh_database

# -- the service suite, on PostgreSQL ------------------------------------------------------------

SERVICE_SUITE: tuple[ModuleType, ...] = (
    test_registry_api,
    test_serve_api,
    test_serve_states,
    test_bad_input,
    test_restarts,
)


def _is_fixture(value: Any) -> bool:
    return hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction")


def _collect_again(modules: tuple[ModuleType, ...]) -> dict[str, Any]:
    """Each module's tests under a new name here, where the fixtures below apply to them, and
    the fixtures those modules define for their own tests (this module's own win)."""
    tests: dict[str, Any] = {}
    for module in modules:
        short = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                tests[f"test_on_postgres__{short}__{name.removeprefix('test_')}"] = value
            elif _is_fixture(value) and name not in globals():
                tests[name] = value
    return tests


globals().update(_collect_again(SERVICE_SUITE))


@pytest.fixture
def jp_server_config(postgres_db_url: str) -> dict[str, Any]:
    """The in-process Jupyter server of the suite, with its registry on PostgreSQL."""
    return server_config(ModelServeApp={"db_url": postgres_db_url})


@pytest.fixture
def api(api: Api) -> Api:
    """The suite's `api` (see tests/conftest.py), with every call tallied."""

    async def call(*args: Any, **kwargs: Any) -> tuple[int, Any]:
        tally.requests()
        code, envelope = await api(*args, **kwargs)
        if code >= 500 and code != 503:  # a 503 says what is down; a 500 is a fault of ours
            tally.server_error()
        return code, envelope

    return call


@pytest.fixture
def jupyter(tmp_path: Path, postgres_db_url: str) -> Iterator[JupyterProcess]:
    """The suite's `jupyter modelserve` process, with its registry on PostgreSQL."""
    config = {
        "LocalBackend": {"rest_api_port": 0, "grpc_port": 0},
        "ModelServeApp": {"db_url": postgres_db_url},
    }
    server = Jupyter(tmp_path, config)
    yield server
    server.stop()
    server.stop_model_server()


def test_the_suite_here_really_keeps_its_registry_on_postgresql(service: ServeService) -> None:
    # Given the in-process Jupyter server the collected tests above talk to
    # Then its registry is the PostgreSQL schema of this test, not a SQLite file
    assert service.store.engine.dialect.name == "postgresql"
    assert "search_path" in str(service.store.engine.url.query.get("options", ""))


# -- Alembic: an empty database, and one at the previous revision --------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """The package's migrations, run on `connection` as its env.py expects."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
# While 0001 is the only revision, "the previous one" is an empty database and the second test
# repeats the first; from 0002 on it starts from a schema that really is one revision old.
_down = SCRIPTS.get_revision(HEAD).down_revision if HEAD else None
assert not isinstance(_down, tuple | list), "a merge revision: name the previous one here"
PREVIOUS: str | None = _down


def assert_schema_is_head(url: str) -> None:
    """alembic_version says head, and every table and column the models define exists."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == HEAD
            inspector = inspect(connection)
            tables = set(inspector.get_table_names())
            assert set(Base.metadata.tables) <= tables, set(Base.metadata.tables) - tables
            for name, table in Base.metadata.tables.items():
                columns = {c["name"] for c in inspector.get_columns(name)}
                assert columns == {c.name for c in table.columns}, name
                primary = inspector.get_pk_constraint(name)["constrained_columns"]
                assert set(primary) == {c.name for c in table.primary_key.columns}, name
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_alembic_upgrades_an_empty_database_to_head(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        # Given an empty database
        # When the package opens it (it migrates under its lock, as every process does)
        RegistryStore(url).close()
        # Then its schema is the newest revision's, all of it
        assert_schema_is_head(url)


@pytest.mark.parametrize("kind", KINDS)
def test_alembic_upgrades_a_database_at_the_previous_revision(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        # Given a database at the revision before head, holding a model version
        engine = create_engine(url)
        with engine.begin() as connection:
            if PREVIOUS is not None:
                command.upgrade(alembic_config(connection), PREVIOUS)
                kept = insert_model_version(connection)
            else:
                kept = False
        engine.dispose()

        # When the package opens it
        store = RegistryStore(url)
        try:
            # Then it is at head, with every table, and the rows it held read as before
            assert_schema_is_head(url)
            if kept:
                version = store.get_model_version("kept", 1)
                assert (version.source, version.description) == ("/kept/1", "from before")
                assert store.get_registered_model("kept").name == "kept"
        finally:
            store.close()


def insert_model_version(connection: Connection) -> bool:
    """Write `kept` version 1 with the columns that exist at this revision; False if none."""
    now = datetime.now(timezone.utc)
    values = {
        "registered_model": {
            "name": "kept",
            "creation_time": now,
            "last_updated_time": now,
            "description": None,
        },
        "model_version": {
            "name": "kept",
            "version": 1,
            "id": "0" * 32,
            "user_id": "",
            "experiment_id": "",
            "model_type": "tensorflow",
            "current_stage": "None",
            "creation_time": now,
            "last_updated_time": now,
            "dataset": None,
            "description": "from before",
            "source": "/kept/1",
        },
    }
    present = set(inspect(connection).get_table_names())
    if not set(values) <= present:
        return False
    for name, row in values.items():
        table = Table(name, MetaData(), autoload_with=connection)
        # Reflected timestamps lose the UTC type; SQLite stores them as text either way.
        connection.execute(table.insert().values({k: v for k, v in row.items() if k in table.c}))
    return True
