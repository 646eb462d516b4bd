"""Version states, failed loads and config reloads of the ModelManager, seen through HTTP."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jupyter_modelserve.modelserver.manager import ModelManager, default_loader
from jupyter_modelserve.modelserver.servable import Servable
from jupyter_modelserve.tfserving.model_config import ModelConfig, VersionPolicy

from .modelserver_fixtures import (
    TIMEOUT,
    config,
    is_settled,
    serve,
    state_of,
    status_of,
    wait_for,
    wait_idle,
)
from .tf_models import build_half_plus_two


class GatedLoader:
    """The real loader, counting calls per model; loads of `held` models wait for `gate`."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, int]] = Counter()
        self.held: set[str] = set()
        self.gate = threading.Event()

    def __call__(self, name: str, version: int, path: str) -> Servable:
        self.calls[name, version] += 1
        if name in self.held:
            assert self.gate.wait(TIMEOUT), "test never opened the gate"
        return default_loader(name, version, path)


@pytest.fixture(scope="module")
def model_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_half_plus_two(tmp_path_factory.mktemp("manager-src") / "1")


@pytest.fixture
def loader() -> Iterator[GatedLoader]:
    gated = GatedLoader()
    yield gated
    gated.gate.set()  # never leave a load thread waiting


@pytest.fixture
def manager(loader: GatedLoader) -> Iterator[ModelManager]:
    managed = ModelManager(loader=loader)
    yield managed
    managed.close()


@pytest.fixture
def url(manager: ModelManager) -> Iterator[str]:
    with serve(manager) as base_url:
        yield base_url


def copy_version(model_v1: Path, base: Path, version: int) -> Path:
    return Path(shutil.copytree(model_v1, base / str(version)))


def predict(url: str, name: str, suffix: str = "") -> requests.Response:
    path = f"{url}/v1/models/{name}{suffix}:predict"
    return requests.post(path, json={"instances": [1.0]}, timeout=TIMEOUT)


def test_status_while_loading_then_available(
    tmp_path: Path, model_v1: Path, loader: GatedLoader, manager: ModelManager, url: str
) -> None:
    copy_version(model_v1, tmp_path / "m", 1)
    loader.held.add("m")
    manager.apply_config([config("m", tmp_path / "m")])

    wait_for(lambda: state_of(url, "m", 1) == "LOADING", what="LOADING")
    response = requests.get(f"{url}/v1/models/m", timeout=TIMEOUT)
    assert response.status_code == 200  # status answers while loading; readiness is the state
    assert response.json()["model_version_status"][0]["status"] == {
        "error_code": "OK",
        "error_message": "",
    }
    assert predict(url, "m").json() == {"error": "Servable not found for request: Latest(m)"}

    loader.gate.set()
    wait_for(lambda: state_of(url, "m", 1) == "AVAILABLE", what="AVAILABLE")
    assert predict(url, "m").json() == {"predictions": [2.5]}


def test_failed_loads_end_with_an_error_and_retry_when_the_folder_changes(
    tmp_path: Path, model_v1: Path, manager: ModelManager, url: str
) -> None:
    base = tmp_path / "broken"
    (base / "1").mkdir(parents=True)
    (base / "1" / "README").write_text("not a SavedModel")
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"\xff garbage")
    manager.apply_config([config("broken", base, VersionPolicy.all())])
    wait_idle(manager, "broken")

    status = status_of(url, "broken")
    assert status[1]["state"] == "END"
    assert status[1]["status"]["error_code"] == "NOT_FOUND"
    assert "Could not find SavedModel" in status[1]["status"]["error_message"]
    assert status[2]["state"] == "END" and status[2]["status"]["error_code"] != "OK"
    assert str(base / "2") in status[2]["status"]["error_message"]
    assert predict(url, "broken").status_code == 404

    manager.poll()  # an unchanged broken folder is not retried on every poll
    assert is_settled(manager, "broken") and status_of(url, "broken")[1]["state"] == "END"

    shutil.rmtree(base / "1")
    copy_version(model_v1, base, 1)
    manager.poll()
    wait_idle(manager, "broken")
    assert state_of(url, "broken", 1) == "AVAILABLE"


def test_missing_specific_version_is_not_found_until_its_folder_appears(
    tmp_path: Path, model_v1: Path, manager: ModelManager, url: str
) -> None:
    base = tmp_path / "spec"
    copy_version(model_v1, base, 1)
    manager.apply_config([config("spec", base, VersionPolicy.specific([1, 3]))])
    wait_idle(manager, "spec")
    status = status_of(url, "spec")
    assert status[1]["state"] == "AVAILABLE"
    assert status[3]["state"] == "END"
    assert status[3]["status"]["error_code"] == "NOT_FOUND"
    assert str(base / "3") in status[3]["status"]["error_message"]

    copy_version(model_v1, base, 3)
    manager.poll()
    wait_idle(manager, "spec")
    assert state_of(url, "spec", 3) == "AVAILABLE"
    assert predict(url, "spec", "/versions/3").json() == {"predictions": [2.5]}


def test_reload_adds_and_removes_models_without_reloading_unchanged_ones(
    tmp_path: Path, model_v1: Path, loader: GatedLoader, manager: ModelManager, url: str
) -> None:
    for name in ("a", "b"):
        copy_version(model_v1, tmp_path / name, 1)
    a, b = config("a", tmp_path / "a"), config("b", tmp_path / "b")
    manager.apply_config([a])
    wait_idle(manager, "a")
    manager.apply_config([a, b])
    wait_idle(manager, "a", "b")
    assert loader.calls == {("a", 1): 1, ("b", 1): 1}
    assert predict(url, "b").status_code == 200

    # A label change alone keeps the loaded version.
    manager.apply_config([config("a", tmp_path / "a", stable=1), b])
    wait_idle(manager, "a", "b")
    assert predict(url, "a", "/labels/stable").status_code == 200

    manager.apply_config([b])
    wait_idle(manager, "a", "b")
    assert status_of(url, "a")[1]["state"] == "END"  # stays visible, like TF Serving's monitor
    assert status_of(url, "a")[1]["status"]["error_code"] == "OK"
    assert predict(url, "a").status_code == 404
    assert predict(url, "b").status_code == 200
    assert loader.calls == {("a", 1): 1, ("b", 1): 1}

    manager.apply_config([a, b])
    wait_idle(manager, "a", "b")
    assert state_of(url, "a", 1) == "AVAILABLE"
    assert loader.calls == {("a", 1): 2, ("b", 1): 1}


def test_new_version_is_picked_up_and_the_old_one_kept_until_it_is_available(
    tmp_path: Path, model_v1: Path, loader: GatedLoader, manager: ModelManager, url: str
) -> None:
    base = tmp_path / "grow"
    copy_version(model_v1, base, 1)
    manager.apply_config([config("grow", base)])
    wait_idle(manager, "grow")

    copy_version(model_v1, base, 2)
    loader.held.add("grow")
    manager.poll()
    wait_for(lambda: state_of(url, "grow", 2) == "LOADING", what="version 2 LOADING")
    assert state_of(url, "grow", 1) == "AVAILABLE"  # still serving while 2 loads
    assert predict(url, "grow").status_code == 200

    loader.gate.set()
    wait_idle(manager, "grow")
    states = [s["state"] for s in status_of(url, "grow").values()]
    assert states == ["AVAILABLE", "END"]  # newest first, as TF Serving lists them
    assert state_of(url, "grow", 1) == "END"
    metadata = requests.get(f"{url}/v1/models/grow/metadata", timeout=TIMEOUT).json()
    assert metadata["model_spec"]["version"] == "2"


def test_model_without_versions_and_unsupported_platform(
    tmp_path: Path, model_v1: Path, manager: ModelManager, url: str
) -> None:
    copy_version(model_v1, tmp_path / "other", 1)
    manager.apply_config(
        [
            config("ghost", tmp_path / "does-not-exist"),
            ModelConfig("other", str(tmp_path / "other"), model_platform="pytorch"),
        ]
    )
    wait_idle(manager, "ghost", "other")
    response = requests.get(f"{url}/v1/models/ghost", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json() == {"error": "Could not find any versions of model ghost"}
    other = status_of(url, "other")[1]
    assert other["state"] == "END" and other["status"]["error_code"] == "UNIMPLEMENTED"
