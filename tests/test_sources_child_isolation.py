"""The child process a Keras file is exported in is kept apart from the user's secrets and files.

It gets no credentials in its environment, cannot import a `keras.py` lying next to the
notebook (or on PYTHONPATH), writes temporary files into a folder the parent measures, and has
its address space bounded. Observed on the real child through /proc (Linux) while it runs.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.errors import PayloadTooLarge
from jupyter_modelserve.registry.child import run_step
from jupyter_modelserve.registry.child_env import child_environment, is_secret
from jupyter_modelserve.registry.child_limits import memory_cap
from jupyter_modelserve.registry.model_registry import ModelRegistry
from jupyter_modelserve.registry.store import RegistryStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"), tmp_path / "art")


def test_the_keras_child_loses_every_secret_and_the_mlflow_child_only_jupyters() -> None:
    # Given a parent environment with Jupyter's tokens, cloud keys and ordinary settings
    parent = {
        "JUPYTERHUB_API_TOKEN": "1", "JPY_SESSION_NAME": "1", "AWS_SECRET_ACCESS_KEY": "1",
        "GOOGLE_APPLICATION_CREDENTIALS": "1", "AZURE_STORAGE_KEY": "1",
        "MLFLOW_TRACKING_TOKEN": "1",
        "my_db_password": "1", "GITHUB_TOKEN": "1", "OPENAI_API_KEY": "1", "SOME_SECRET": "1",
        "MLFLOW_TRACKING_URI": "1", "HOME": "1", "PATH": "1", "LANG": "1", "TMPDIR": "/tmp",
    }  # fmt: skip
    temp = Path("/scratch/tmp")
    # When the environments of both children are built
    keras = child_environment("keras_export", temp, parent)
    mlflow = child_environment("mlflow_fetch", temp, parent)
    # Then the Keras export keeps only the harmless ones
    kept = {"MLFLOW_TRACKING_URI", "HOME", "PATH", "LANG"}
    assert {name for name in parent if name in keras} == kept | {"TMPDIR"}
    # And the MLflow download keeps the cloud and MLflow credentials it needs, not Jupyter's
    assert "JUPYTERHUB_API_TOKEN" not in mlflow and "JPY_SESSION_NAME" not in mlflow
    assert {"AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_TOKEN", "AZURE_STORAGE_KEY"} <= set(mlflow)
    # And both put temporary files in the folder given
    for env in (keras, mlflow):
        assert env["TMPDIR"] == env["TEMP"] == env["TMP"] == str(temp)
    assert is_secret("jupyterhub_api_token", "mlflow_fetch")


def observe_child(module: str, deadline: float) -> dict[str, Any]:
    """The environment, working folder and address-space limit of this process's running
    child `python -m module`, once it has set its limits."""
    while time.monotonic() < deadline:
        for pid in child_pids(module):
            try:
                limits = Path(f"/proc/{pid}/limits").read_text()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue  # it just ended
            (line,) = [line for line in limits.splitlines() if line.startswith("Max address")]
            if "unlimited" in line:
                continue  # not yet at its limits
            env = dict(item.split("=", 1) for item in environ.decode().split("\0") if "=" in item)
            return {"env": env, "cwd": cwd, "address_space": int(line.split()[3])}
        time.sleep(0.02)  # polling /proc, not waiting for an event
    raise AssertionError(f"no child {module} seen")


def child_pids(module: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(b")", 1)[1].split()[1]) == os.getpid() and module.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_the_export_child_sees_no_token_writes_temp_files_in_its_scratch_and_is_bounded(
    registry: ModelRegistry, keras_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Jupyter server's process environment with a hub token and a cloud key
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token-value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-key-value")
    monkeypatch.setenv("MODELSERVE_HARMLESS", "kept")
    # When a Keras file is registered, and its export's child process is watched while it runs
    with ThreadPoolExecutor(1) as pool:
        registering = pool.submit(registry.register, str(keras_file), "observed")
        seen = observe_child("jupyter_modelserve.registry.keras_export", time.monotonic() + 120)
        version = registering.result(timeout=600)
    # Then it registered
    assert (Path(version.source) / "saved_model.pb").is_file()
    # And the child saw neither secret, only the harmless setting
    assert "JUPYTERHUB_API_TOKEN" not in seen["env"] and "AWS_SECRET_ACCESS_KEY" not in seen["env"]
    assert (
        "hub-token-value" not in str(seen["env"]) and seen["env"]["MODELSERVE_HARMLESS"] == "kept"
    )
    # And it ran in a scratch folder of the registry's, with its temporary files inside it
    staging_root = (registry.artifact_root / ".staging").resolve()
    assert Path(seen["cwd"]).is_relative_to(staging_root), seen["cwd"]
    assert seen["env"]["TMPDIR"] == str(Path(seen["cwd"]) / "tmp")
    # And its address space was bounded by the registration's byte limit
    assert seen["address_space"] == memory_cap(registry.max_artifact_bytes)


def test_a_keras_py_next_to_the_caller_or_on_pythonpath_is_never_imported(
    registry: ModelRegistry, keras_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a keras.py that leaves a marker when imported, in the caller's working folder (the
    # notebook's) and in a folder on PYTHONPATH
    for folder in ("notebook", "on_path"):
        (tmp_path / folder).mkdir()
        marker = tmp_path / f"imported-from-{folder}"
        (tmp_path / folder / "keras.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path / "notebook")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "on_path"))
    # When a Keras file is registered
    version = registry.register(str(keras_file), "isolated")
    # Then the real Keras exported it, and neither keras.py ran
    assert (Path(version.source) / "saved_model.pb").is_file()
    assert not (tmp_path / "imported-from-notebook").exists()
    assert not (tmp_path / "imported-from-on_path").exists()


def test_temporary_files_past_the_byte_limit_are_refused(tmp_path: Path) -> None:
    # Given a child step that writes a 2 MB file into its temporary folder (the standard
    # library's zipfile, zipping incompressible bytes into tmp/), under a 1 MB limit
    big = tmp_path / "random.bin"
    big.write_bytes(os.urandom(2 * 1024**2))
    work = tmp_path / "work"
    work.mkdir()
    # When it runs, Then the registration is refused as too large, naming the temporary files
    with pytest.raises(PayloadTooLarge, match="wrote temporary files of more than"):
        run_step(
            "zipfile",
            ["-c", "tmp/big.zip", str(big)],
            work=work,
            watch=tmp_path / "out",
            max_bytes=1024**2,
            deadline=time.monotonic() + 120,
            what="a test step",
            purpose="keras_export",
        )
