"""The registry driven by Apache Submarine's own Python SDK, as a Submarine user drives it.

apache-submarine 0.8.0 pins SQLAlchemy < 2, so it lives in a virtual environment of its own
(created once under ~/.cache/jupyter-modelserve, from PyPI) and `tests/submarine_sdk_client.py`
runs the calls there against a real `jupyter modelserve` process, printing what each returned.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .servers import TOKEN, JupyterProcess

SDK_VERSION = "0.8.0"
SDK_VENV = Path.home() / ".cache" / "jupyter-modelserve" / f"submarine-{SDK_VERSION}-venv"
CLIENT_SCRIPT = Path(__file__).with_name("submarine_sdk_client.py")
R, M = "RegisteredModelApi", "ModelVersionApi"
# Every call of Submarine's two registry clients; the SDK itself is asked for the list too.
SDK_CALLS = {
    R: {
        "ping3",
        "create_registered_model",
        "list_registered_models",
        "get_registered_model",
        "update_registered_model",
        "create_registered_model_tag",
        "delete_registered_model_tag",
        "delete_registered_model",
    },
    M: {
        "ping1",
        "create_model_version",
        "list_model_versions",
        "get_model_version",
        "update_model_version",
        "create_model_version_tag",
        "delete_model_version_tag",
        "delete_model_version",
    },
}
MODEL_FOLDER = "models/half_plus_two/1"  # relative to the Jupyter server's root_dir
EXPERIMENT = "experiment-1637035230000-0001"


# -- the SDK's own virtual environment -----------------------------------------------------------


def _unavailable(reason: str) -> None:
    """Skip without PyPI, but never silently in CI: there the SDK must be tested."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the Submarine SDK tests must run)")
    pytest.skip(reason)


def _pypi_reachable() -> bool:
    try:
        return requests.head("https://pypi.org/simple/apache-submarine/", timeout=15).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The Python of a virtual environment with apache-submarine installed from PyPI.

    Built once and kept (a few hundred MB, ~30 s); a lock keeps two test runs from building it
    at the same time, and a marker written last tells a finished build from an interrupted one.
    """
    python = SDK_VENV / "bin" / "python"
    done = SDK_VENV / "installed"
    SDK_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(SDK_VENV.parent / f"{SDK_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return python
        shutil.rmtree(SDK_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True, timeout=300)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"apache-submarine=={SDK_VERSION}"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if install.returncode != 0:
            if not _pypi_reachable():
                _unavailable(f"PyPI is unreachable: cannot install apache-submarine {SDK_VERSION}")
            pytest.fail(f"pip install apache-submarine=={SDK_VERSION} failed:\n{install.stderr}")
        done.write_text(SDK_VERSION)
    return python


def sdk(python: Path, server: JupyterProcess, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Run `calls` through the SDK in its own environment; what each returned, in order."""
    plan = {"host": server.url, "token": TOKEN, "calls": list(calls)}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    ran = subprocess.run(
        [str(python), str(CLIENT_SCRIPT)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    results: list[dict[str, Any]] = json.loads(ran.stdout)
    return results


def call(api: str, method: str, *args: Any, entity: Any = None, **kwargs: Any) -> dict[str, Any]:
    """One SDK call; `entity` is (kwarg, class, fields) of the entity the call takes."""
    step: dict[str, Any] = {"api": api, "method": method, "args": list(args), "kwargs": kwargs}
    if entity is not None:
        step["entity"] = {"kwarg": entity[0], "class": entity[1], "fields": entity[2]}
    return step


def registered_model(**fields: Any) -> tuple[str, str, dict[str, Any]]:
    return ("registered_model_entity", "RegisteredModelEntity", fields)


def model_version(**fields: Any) -> tuple[str, str, dict[str, Any]]:
    return ("model_version_entity", "ModelVersionEntity", fields)


def ok(result: dict[str, Any]) -> Any:
    """The envelope's `result` of a call that must have succeeded."""
    assert result["ok"], result
    value = result["value"]
    assert value["success"] is True and value["code"] == 200, value
    return value.get("result")


def refused(result: dict[str, Any], status: int) -> str:
    """The message of a call that must have failed with `status`."""
    assert not result["ok"] and result["status"] == status, result
    message: str = result["body"]["message"]
    return message


# -- a real `jupyter modelserve` whose root_dir is not where it was started ----------------------


class RootedJupyter(JupyterProcess):
    """A `jupyter modelserve` process whose file browser root is `root_dir`, not its cwd."""

    def __init__(self, root: Path, root_dir: Path) -> None:
        super().__init__(root, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
        self.root_dir = root_dir

    def start(self, *extra_args: str, timeout: float = 120) -> None:
        super().start(f"--ServerApp.root_dir={self.root_dir}", *extra_args, timeout=timeout)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path
) -> Iterator[RootedJupyter]:
    """A server whose root_dir holds models/half_plus_two/1 and whose working folder does not,
    so a relative folder that registers was read from root_dir."""
    base = tmp_path_factory.mktemp("submarine-sdk")
    jupyter = RootedJupyter(base / "jupyter", base / "notebooks")
    shutil.copytree(half_plus_two, jupyter.root_dir / MODEL_FOLDER)
    assert not (jupyter.root / MODEL_FOLDER).exists()
    try:
        jupyter.start()
        yield jupyter
    finally:
        jupyter.stop()
        jupyter.stop_model_server()


# -- tests ---------------------------------------------------------------------------------------


def test_every_registry_call_of_submarine_sdk_works(
    sdk_python: Path, server: RootedJupyter
) -> None:
    # Given Submarine's SDK, whose two registry clients offer exactly these calls
    described = sdk(sdk_python, server, {"describe": True})[0]["value"]
    assert {api: set(methods) for api, methods in described.items()} == SDK_CALLS

    # When a Submarine user pings, creates, reads, updates and tags through every call
    steps = [
        call(R, "ping3"),
        call(M, "ping1"),
        call(R, "create_registered_model", entity=registered_model(
            name="digits", description="halves and adds two", tags=["demo", "draft"])),
        call(R, "update_registered_model", "digits", entity=registered_model(
            name="digits", description="y = 0.5 * x + 2")),
        call(R, "create_registered_model_tag", name="digits", tag="vision"),
        call(R, "delete_registered_model_tag", name="digits", tag="draft"),
        call(R, "get_registered_model", "digits"),
        call(R, "list_registered_models"),
        call(M, "create_model_version", base_dir=MODEL_FOLDER, entity=model_version(
            name="digits", model_type="tensorflow", description="first", tags=["v1"],
            experiment_id=EXPERIMENT)),
        call(M, "create_model_version", base_dir=MODEL_FOLDER, entity=model_version(
            name="digits", model_type="tensorflow")),
        call(M, "update_model_version", entity=model_version(
            name="digits", version=1, description="promoted", current_stage="Production",
            dataset="digits-train")),
        call(M, "create_model_version_tag", name="digits", version=1, tag="best"),
        call(M, "delete_model_version_tag", name="digits", version=1, tag="v1"),
        call(M, "get_model_version", "digits", 1),
        call(M, "list_model_versions", "digits"),
    ]  # fmt: skip
    (ping_models, ping_versions, created, updated, tagged, untagged, model, models,
     first, second, promoted, version_tagged, version_untagged, version, versions,
     ) = sdk(sdk_python, server, *steps)  # fmt: skip

    # Then both pings answer Pong (the SDK reads them as text)
    for ping in (ping_models, ping_versions):
        assert ping["ok"] and "'result': 'Pong'" in ping["value"], ping
    # And the registered model was created, described anew and re-tagged
    assert ok(created)["tags"] == ["demo", "draft"]
    assert ok(updated)["description"] == "y = 0.5 * x + 2"
    assert ok(tagged) is None and ok(untagged) is None
    assert ok(model)["tags"] == ["demo", "vision"]
    assert [m["name"] for m in ok(models)] == ["digits"]
    # And versions 1 and 2 were copied into the registry from models/half_plus_two/1 under
    # root_dir (the server's working folder has no such folder)
    assert (ok(first)["version"], ok(second)["version"]) == (1, 2)
    for registered in (ok(first), ok(second)):
        assert Path(registered["source"]).is_relative_to(server.root / "data")
        assert (Path(registered["source"]) / "saved_model.pb").is_file()
    assert ok(first)["description"] == "first" and ok(first)["tags"] == ["v1"]
    # And version 1 was promoted and re-tagged, each change read back
    for changed in (ok(promoted), ok(version)):
        assert changed["currentStage"] == "Production"
        assert (changed["description"], changed["dataset"]) == ("promoted", "digits-train")
    assert ok(version_tagged) is None and ok(version_untagged) is None
    assert ok(version)["tags"] == ["best"]
    assert [v["version"] for v in ok(versions)] == [1, 2]

    # When the user deletes version 2, then the whole model
    deletes = [
        call(M, "delete_model_version", "digits", 2),
        call(M, "list_model_versions", "digits"),
        call(R, "delete_registered_model", "digits"),
        call(R, "list_registered_models"),
        call(M, "get_model_version", "digits", 1),
    ]
    deleted, remaining, model_deleted, no_models, gone = sdk(sdk_python, server, *deletes)
    # Then they are gone, artifacts too
    assert ok(deleted) is None and not Path(ok(second)["source"]).exists()
    assert [v["version"] for v in ok(remaining)] == [1]
    assert ok(model_deleted) is None and ok(no_models) == []
    assert refused(gone, 404) == "registered model 'digits' does not exist"
    assert not Path(ok(first)["source"]).exists()
    # And every call of both clients was made
    made = {(step["api"], step["method"]) for step in steps + deletes}
    assert made == {(api, method) for api, methods in SDK_CALLS.items() for method in methods}


def test_the_sdk_hears_what_is_wrong_with_a_version_it_creates(
    sdk_python: Path, server: RootedJupyter
) -> None:
    # Given a server whose root_dir holds one SavedModel folder
    entity = model_version(name="wrong", model_type="tensorflow")
    outside = server.root_dir.parent / "outside"
    shutil.copytree(server.root_dir / MODEL_FOLDER, outside / "1")
    # When the SDK creates versions from a folder that leaves root_dir, one that is not there,
    # none at all, and an absolute folder outside root_dir
    escape, missing, none, absolute, cleanup = sdk(
        sdk_python,
        server,
        call(M, "create_model_version", base_dir="../outside/1", entity=entity),
        call(M, "create_model_version", base_dir="models/nothing", entity=entity),
        call(M, "create_model_version", entity=entity),
        call(M, "create_model_version", base_dir=str(outside / "1"), entity=entity),
        call(R, "delete_registered_model", "wrong"),
    )
    # Then a relative folder may not climb out of root_dir, and the error names baseDir
    message = refused(escape, 400)
    assert message.startswith("baseDir: '../outside/1' leads out of"), message
    assert str(server.root_dir) in message
    # And a missing folder is named as it was looked for: under root_dir
    message = refused(missing, 400)
    assert message == f"baseDir: {str(server.root_dir / 'models' / 'nothing')!r} is not a folder"
    # And without baseDir the SDK is told to send it
    assert "baseDir query parameter" in refused(none, 400)
    # And an absolute folder is read as it is, wherever it is
    assert ok(absolute)["version"] == 1
    assert ok(cleanup) is None
