"""Registry databases for tests: a fresh SQLite file, or a fresh schema on the test PostgreSQL.

PostgreSQL is the server `.ci/run` starts (scripts/test-postgres), named by
MODELSERVE_TEST_POSTGRES_URL. Without it a PostgreSQL test is skipped, unless
MODELSERVE_REQUIRE_POSTGRES=1 (CI), which makes the skip a failure.

Each test gets a schema of its own (dropped afterwards), selected by the URL's search_path, so
tests share one database yet never see each other's rows, and every process started with the
URL (a Jupyter server, the CLI) lands in the same schema.

    @pytest.fixture
    def jp_server_config(registry_db_url: str) -> dict[str, Any]:
        return server_config(ModelServeApp={"db_url": registry_db_url})

runs every test that uses it once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("MODELSERVE_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("MODELSERVE_REQUIRE_POSTGRES") == "1"
KINDS = ("sqlite", "postgresql")


def postgres_url() -> str:
    """The test PostgreSQL server's URL; skips (or, when required, fails) the test without it."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MODELSERVE_TEST_POSTGRES_URL is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not configured: run scripts/test-postgres (as .ci/run does)")
    return POSTGRES_URL


def in_schema(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (psycopg's `options`)."""
    with_options = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_options.render_as_string(hide_password=False)


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty registry database of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'registry.db'}"
        return
    assert kind == "postgresql", kind
    admin = create_engine(postgres_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield in_schema(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            # A connection a test leaked inside a transaction would hold this forever.
            connection.execute(text("SET LOCAL lock_timeout = '20s'"))
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=KINDS)
def registry_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh registry database, once SQLite and once PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh registry schema on the test PostgreSQL server."""
    with fresh_database("postgresql", tmp_path) as url:
        yield url
