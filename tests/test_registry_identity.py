"""The registry's stored identity and the "created by this store" fact (issue 11, item 5).

The id defaults the Kubernetes backend's instance; the fact keeps a just-created registry from
sweeping. Both hold on SQLite and on PostgreSQL, also when several processes open a new registry
at the same moment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from jupyter_modelserve.registry.store import RegistryStore

POSTGRES_URL = os.environ.get("MODELSERVE_TEST_POSTGRES_URL", "")
_OPEN_STORE = (
    "import json, sys; from jupyter_modelserve.registry.store import RegistryStore; "
    "s = RegistryStore(sys.argv[1]); "
    "print(json.dumps([s.identity().id, s.created_here])); s.close()"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def new_registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry URL with no tables yet: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("MODELSERVE_REQUIRE_POSTGRES") == "1":
            pytest.fail("MODELSERVE_TEST_POSTGRES_URL is not set but PostgreSQL is required")
        pytest.skip("PostgreSQL not configured: run scripts/test-postgres (as .ci/run does)")
    name = f"identity_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def test_a_registry_knows_its_id_and_whether_this_store_created_it(new_registry_url: str) -> None:
    # Given a registry created by a first store, then opened by a second one
    first = RegistryStore(new_registry_url)
    second = RegistryStore(new_registry_url)
    try:
        # Then both read the same id; only the first created the database
        assert first.identity().id == second.identity().id
        assert len(first.identity().short_id) == 8
        assert (first.created_here, second.created_here) == (True, False)
        assert (first.identity().created_here, second.identity().created_here) == (True, False)
    finally:
        first.close()
        second.close()


def test_a_recreated_database_is_another_registry(tmp_path: Path) -> None:
    # Given a registry, lost and created anew at the same place
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    lost = RegistryStore(url)
    lost_id = lost.identity().id
    lost.close()
    for leftover in tmp_path.glob("registry.db*"):
        leftover.unlink()
    # When it is opened again; Then it has another id and counts as created here
    again = RegistryStore(url)
    assert again.identity().id != lost_id and again.created_here
    again.close()


def test_processes_opening_a_new_registry_at_once_agree_on_one_id_and_one_creator(
    new_registry_url: str,
) -> None:
    # Given a registry that has no tables yet
    # When four processes open it at the same moment
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_STORE, new_registry_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
        answers.append(json.loads(out.decode().strip().splitlines()[-1]))

    # Then they all read one id, and exactly one of them created the registry
    assert len({identity for identity, _ in answers}) == 1, answers
    assert sorted(created for _, created in answers) == [False, False, False, True], answers


def _build(folder: Path, backend: str, **kube: str) -> object:
    """A ServeService built as the Jupyter server builds it, on the registry in `folder`."""
    from traitlets.config import Config

    from jupyter_modelserve.settings import ModelServeSettings

    config = Config()
    config.ModelServeSettings.db_url = f"sqlite:///{folder / 'registry.db'}"
    config.ModelServeSettings.artifact_root = str(folder / "artifacts")
    config.ModelServeSettings.backend = backend
    for key, value in kube.items():
        setattr(config.KubernetesBackend, key, value)
    return ModelServeSettings(config=config).build_service()


@pytest.mark.parametrize(
    ("backend", "kube"), [("local", {}), ("kubernetes", {"instance": "team", "namespace": "x"})]
)
def test_a_broken_identity_row_stops_only_a_server_that_needs_it(
    tmp_path: Path, backend: str, kube: dict[str, str]
) -> None:
    from jupyter_modelserve.errors import ServerFault

    # Given a registry whose identity table was edited by hand to hold two rows
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    RegistryStore(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO registry_identity (id, created_at) VALUES ('x', CURRENT_TIMESTAMP)")
        )
    engine.dispose()
    # When a server whose backend does not take its instance from the registry starts
    service = _build(tmp_path, backend, **kube)
    # Then it starts (and closes cleanly)
    service.store.close()  # type: ignore[attr-defined]
    # And a kubernetes server without an instance refuses, naming the setting that fixes it
    with pytest.raises(ServerFault, match=r"c\.KubernetesBackend\.instance"):
        _build(tmp_path, "kubernetes", namespace="x")
