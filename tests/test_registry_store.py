"""The registry store on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from jupyter_modelserve.errors import Conflict, NotFound
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.schemas import ServeState

POSTGRES_URL = os.environ.get("MODELSERVE_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("MODELSERVE_REQUIRE_POSTGRES") == "1"


def _postgres_store() -> Iterator[RegistryStore]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MODELSERVE_TEST_POSTGRES_URL is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not configured: run scripts/test-postgres (as .ci/run does)")
    # A schema of its own per test keeps tests independent inside one database.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    store = RegistryStore(f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}")
    yield store
    store.close()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryStore]:
    if request.param == "sqlite":
        sqlite_store = RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}")
        yield sqlite_store
        sqlite_store.close()
    else:
        yield from _postgres_store()


def test_migrations_create_submarine_tables_and_are_idempotent(store: RegistryStore) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "registered_model",
        "registered_model_tag",
        "model_version",
        "model_version_tag",
        "serve",
        "alembic_version",
    } <= tables
    columns = {c["name"] for c in inspect(store.engine).get_columns("model_version")}
    assert columns == {
        "name", "version", "id", "user_id", "experiment_id", "model_type", "current_stage",
        "creation_time", "last_updated_time", "dataset", "description", "source",
    }  # fmt: skip
    again = RegistryStore(store.db_url)  # a second process starting on the same database
    again.close()


def test_versions_are_max_plus_one_per_name(store: RegistryStore) -> None:
    sources = [store.add_model_version("m", lambda v: f"/a/m/{v}", "tensorflow") for _ in range(3)]
    assert [v.version for v in sources] == [1, 2, 3]
    assert [v.source for v in sources] == ["/a/m/1", "/a/m/2", "/a/m/3"]
    other = store.add_model_version("other", lambda v: f"/a/other/{v}", "tensorflow")
    assert other.version == 1
    store.delete_model_version("m", 3)
    assert store.add_model_version("m", lambda v: f"/a/m/{v}", "tensorflow").version == 3


def test_concurrent_registrations_get_distinct_versions(store: RegistryStore) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            version = store.add_model_version("c", lambda v: f"/a/c/{v}", "tensorflow")
            results.append(version.version)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(1, 9))


def test_registered_model_crud_and_tags(store: RegistryStore) -> None:
    created = store.create_registered_model("m", "first", ["b", "a"])
    assert (created.name, created.description, created.tags) == ("m", "first", ["a", "b"])
    with pytest.raises(Conflict, match="'m' already exists"):
        store.create_registered_model("m", None, [])
    store.add_registered_model_tag("m", "c")
    store.delete_registered_model_tag("m", "a")
    assert store.get_registered_model("m").tags == ["b", "c"]
    with pytest.raises(NotFound, match="has no tag 'zzz'"):
        store.delete_registered_model_tag("m", "zzz")
    updated = store.update_registered_model("m", "second")
    assert updated.description == "second"
    assert updated.last_updated_time >= created.last_updated_time
    store.add_model_version("m", lambda v: f"/a/m/{v}", "tensorflow", tags=["x"])
    deleted = store.delete_registered_model("m")
    assert [v.version for v in deleted] == [1]
    with pytest.raises(NotFound, match="registered model 'm' does not exist"):
        store.get_registered_model("m")
    assert store.list_registered_models() == []


def test_a_served_version_cannot_be_deleted(store: RegistryStore) -> None:
    store.add_model_version("m", lambda v: f"/a/m/{v}", "tensorflow")
    record, created = store.insert_serve("m", 1, "local", None)
    assert created and record.state is ServeState.PENDING and record.source == "/a/m/1"
    again, created_again = store.insert_serve("m", 1, "local", None)
    assert not created_again and again.created_at == record.created_at
    with pytest.raises(Conflict, match="is being served"):
        store.delete_model_version("m", 1)
    with pytest.raises(Conflict, match="is being served"):
        store.delete_registered_model("m")
    store.delete_serve("m", 1)
    store.delete_model_version("m", 1)


def test_serve_state_clock_counts_the_whole_start(store: RegistryStore) -> None:
    store.add_model_version("m", lambda v: f"/a/m/{v}", "tensorflow")
    pending, _ = store.insert_serve("m", 1, "local", None)
    loading = store.update_serve("m", 1, ServeState.LOADING, "loading")
    assert loading is not None
    # PENDING -> LOADING is one phase: the load deadline keeps counting from the request.
    assert loading.state_since == pending.state_since
    available = store.update_serve("m", 1, ServeState.AVAILABLE, None, "http://u")
    assert available is not None and available.state_since > pending.state_since
    assert available.url == "http://u"
    assert store.update_serve("nope", 1, ServeState.FAILED, "x") is None
