"""The registry's schema under several processes: one migration at a time, and a database
newer than the package refused by name instead of failing later."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from jupyter_modelserve.errors import ServerFault
from jupyter_modelserve.registry.store import RegistryStore

from .tally import tally

POSTGRES_URL = os.environ.get("MODELSERVE_TEST_POSTGRES_URL", "")
_OPEN_STORE = (
    "import sys; from jupyter_modelserve.registry.store import RegistryStore; "
    "RegistryStore(sys.argv[1]).close()"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a registry that has no tables yet: a new SQLite file, or a new database on the
    PostgreSQL server `.ci/run` starts."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("MODELSERVE_REQUIRE_POSTGRES") == "1":
            pytest.fail("MODELSERVE_TEST_POSTGRES_URL is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not configured: run scripts/test-postgres (as .ci/run does)")
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_processes_opening_a_new_registry_at_once_migrate_it_once(empty_registry_url: str) -> None:
    # Given a registry that has no tables yet
    url = empty_registry_url

    # When four processes open it at the same moment (each runs the migrations)
    processes = [
        subprocess.Popen([sys.executable, "-c", _OPEN_STORE, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [
        (p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in processes
    ]
    tally.requests(len(processes))

    # Then every one of them succeeds, and the schema is complete at the newest revision
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    engine = create_engine(url)
    assert {"registered_model", "model_version", "serve", "lease"} <= set(
        inspect(engine).get_table_names()
    )
    with engine.connect() as connection:
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert len(revisions) == 1
    engine.dispose()


def test_a_database_newer_than_the_package_is_refused_by_name(tmp_path: Path) -> None:
    # Given a registry that a newer jupyter_modelserve has migrated past our newest revision
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    RegistryStore(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()

    # When this package opens it
    with pytest.raises(ServerFault) as raised:
        RegistryStore(url)
    tally.fault()

    # Then it says what is wrong and what to do, instead of failing on a missing column later
    message = raised.value.message
    assert "'9999_future'" in message and "newer than this jupyter_modelserve" in message
    assert "upgrade jupyter_modelserve" in message
