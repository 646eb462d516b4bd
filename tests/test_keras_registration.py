"""Registering Keras models: an in-memory model, or a `.keras` / `.h5` file exported in a child
process; served, either predicts what model.predict gives."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_modelserve.errors import InvalidInput, NotFound, PayloadTooLarge, ServerFault
from jupyter_modelserve.registry import keras_export
from jupyter_modelserve.registry.artifacts import check_saved_model
from jupyter_modelserve.registry.child import run_step
from jupyter_modelserve.registry.model_registry import ModelRegistry, VersionDetails
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.service import ServeService

from .conftest import Api, post_json


@pytest.fixture(scope="module")
def keras_model() -> Any:
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :2] * 2.0, epochs=1, verbose=0)
    return model


async def test_a_keras_model_registers_serves_and_predicts_like_itself(
    api: Api, service: ServeService, keras_model: Any
) -> None:
    # Given an in-memory Keras model registered as a new model
    version = service.registry.register_keras_model(
        keras_model, "tiny", VersionDetails(description="dense 3 -> 2")
    )
    assert version.version == 1
    assert (Path(version.source) / "saved_model.pb").is_file()

    # When it is served
    code, envelope = await api(
        "POST", "/api/v1/serve", {"modelName": "tiny", "modelVersion": 1}, params={"wait": 60}
    )
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope

    # Then TF Serving's predict gives what model.predict gives
    rows = [[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]]
    status, body = await post_json(envelope["result"]["url"], {"instances": rows})
    assert status == 200, body
    expected = keras_model.predict(np.array(rows, dtype="float32"), verbose=0)
    np.testing.assert_allclose(np.array(body["predictions"]), expected, rtol=1e-5, atol=1e-6)


def test_something_that_is_not_a_keras_model_is_refused_and_leaves_nothing(
    service: ServeService,
) -> None:
    with pytest.raises(InvalidInput, match="could not export the Keras model"):
        service.registry.register_keras_model(object(), "nothing")
    staging = service.registry.artifact_root / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


# -- .keras / .h5 files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_files(keras_model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model saved as a .keras zip and as a legacy .h5 file."""
    folder = tmp_path_factory.mktemp("keras-files")
    keras_model.save(folder / "tiny.keras")
    keras_model.save(folder / "tiny.h5")
    return {"keras": folder / "tiny.keras", "h5": folder / "tiny.h5"}


def staging_is_empty(registry: ModelRegistry) -> bool:
    staging = registry.artifact_root / ".staging"
    return not staging.exists() or list(staging.iterdir()) == []


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """A registry on its own SQLite file, no Jupyter server around it."""
    return ModelRegistry(RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"), tmp_path / "art")


async def test_a_keras_file_under_root_dir_registers_over_rest_and_predicts_like_the_model(
    api: Api, jp_root_dir: Path, keras_files: dict[str, Path], keras_model: Any
) -> None:
    # Given a .keras file in a folder of the Jupyter server's root_dir
    (jp_root_dir / "models").mkdir()
    shutil.copy(keras_files["keras"], jp_root_dir / "models" / "tiny.keras")

    # When it is registered by its path relative to root_dir
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "tinyfile", "source": "models/tiny.keras"}
    )

    # Then it is version 1, a SavedModel in the registry's layout
    assert code == 200, envelope
    source = Path(envelope["result"]["source"])
    assert (source / "saved_model.pb").is_file()

    # And, served, it predicts what the Keras model predicts
    code, envelope = await api(
        "POST", "/api/v1/serve", {"modelName": "tinyfile", "modelVersion": 1}, params={"wait": 60}
    )
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    rows = [[0.5, -1.0, 2.0]]
    status, body = await post_json(envelope["result"]["url"], {"instances": rows})
    assert status == 200, body
    expected = keras_model.predict(np.array(rows, dtype="float32"), verbose=0)
    np.testing.assert_allclose(np.array(body["predictions"]), expected, rtol=1e-5, atol=1e-6)


def test_an_h5_file_registers_by_absolute_path(
    registry: ModelRegistry, keras_files: dict[str, Path]
) -> None:
    # Given a legacy .h5 file named by its absolute path
    # When it is registered
    version = registry.register(str(keras_files["h5"]), "tinyh5")
    # Then its SavedModel export has the serving signature TF Serving needs
    assert "serving_default" in check_saved_model(Path(version.source), "export")
    assert staging_is_empty(registry)


def test_a_file_that_is_not_keras_is_refused_by_name_and_leaves_nothing(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    # Given a text file named like a Keras file
    (tmp_path / "notes.keras").write_text("not a model")
    # When it is registered
    with pytest.raises(InvalidInput, match=r"'notes.keras' is not a Keras model file.*model.save"):
        registry.register("notes.keras", "notes", base_dir=tmp_path)
    # Then no model was created and no staging folder stays behind
    with pytest.raises(NotFound):
        registry.get_registered_model("notes")
    assert staging_is_empty(registry)


def test_a_file_with_an_unknown_custom_layer_names_the_fix(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    # Given a model whose custom layer class exists only in this process
    import keras

    @keras.saving.register_keras_serializable(package="only_here")
    class Doubler(keras.layers.Layer):  # type: ignore[misc]
        def call(self, x: Any) -> Any:
            return x * 2.0

    model = keras.Sequential([keras.Input(shape=(3,)), Doubler()])
    model.save(tmp_path / "custom.keras")
    # When the file is registered (loaded in a child process that lacks the class)
    # Then the error names the file and says to register the model object instead
    with pytest.raises(InvalidInput, match=r"'custom.keras' uses .* 'Doubler'.*api.register"):
        registry.register("custom.keras", "custom", base_dir=tmp_path)
    # And a Lambda layer, whose Python code would run on loading, is refused the same way
    lambda_model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Lambda(lambda x: x + 1)])
    lambda_model.save(tmp_path / "lambda.keras")
    with pytest.raises(InvalidInput, match=r"'lambda.keras' holds a Lambda layer.*api.register"):
        registry.register("lambda.keras", "custom", base_dir=tmp_path)
    assert staging_is_empty(registry)


def test_an_h5_file_whose_lambda_would_run_code_is_refused_and_the_code_never_runs(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    # Given a legacy .h5 file with a Lambda layer whose code creates a marker file when it
    # runs (its bytecode is in the file; Keras before 3.11.3 ran it despite safe_mode)
    import keras

    marker = tmp_path / "lambda-ran"
    code = eval(f"lambda x: (open({str(marker)!r}, 'a').close(), x)[1]")
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Lambda(code)])
    model.save(tmp_path / "lambda.h5")
    marker.unlink(missing_ok=True)  # building the model here ran it once
    # When the file is registered
    # Then it is refused as a Lambda layer, naming the fix
    with pytest.raises(InvalidInput, match=r"'lambda.h5' holds a Lambda layer.*api.register"):
        registry.register("lambda.h5", "lambda", base_dir=tmp_path)
    # And the Lambda's code never ran in the export's process
    assert not marker.exists()
    assert staging_is_empty(registry)


@pytest.mark.parametrize(
    ("version", "unsafe"),
    [("3.11.2", True), ("3.15.0", True), ("2.15.0", True), ("nonsense", True),
     ("3.15.1", False), ("3.16.0.dev2026", False), ("4.0", False)],
)  # fmt: skip
def test_a_keras_before_the_safe_mode_fixes_is_unsafe(version: str, unsafe: bool) -> None:
    assert keras_export.unsafe_keras(version) is unsafe


def test_with_an_older_keras_no_file_is_loaded_and_the_error_says_why(
    tmp_path: Path, keras_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose Keras is 3.11.2, which ignores safe_mode for .h5 files
    import keras

    monkeypatch.setattr(keras, "__version__", "3.11.2")
    result = tmp_path / "result.json"
    # When the export step loads a .h5 file
    loaded = keras_export._load(keras_files["h5"], "tiny.h5", str(result))
    # Then it loads nothing and reports a 400 naming the version, the CVE and the fix
    assert loaded is None
    report = json.loads(result.read_text())
    assert report["kind"] == "invalid"
    assert "Keras 3.11.2" in report["message"] and "CVE-2025-9905" in report["message"]
    assert "keras>=3.15.1" in report["message"]


def test_a_link_out_of_root_dir_a_fifo_and_an_oversized_file_are_refused(
    tmp_path: Path, keras_files: dict[str, Path]
) -> None:
    # Given a root_dir with a link to a Keras file outside it, and a FIFO named like one
    root = tmp_path / "root"
    root.mkdir()
    (root / "outside.keras").symlink_to(keras_files["keras"])
    os.mkfifo(root / "pipe.keras")
    small = ModelRegistry(
        RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"),
        tmp_path / "art",
        max_artifact_bytes=1000,
    )
    # When each is registered, Then each is refused, naming the problem
    with pytest.raises(InvalidInput, match="is a link to a file outside"):
        small.register("outside.keras", "m", base_dir=root)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        small.register("pipe.keras", "m", base_dir=root)
    # And a file larger than the registry's byte limit is refused before it is copied
    with pytest.raises(PayloadTooLarge, match="max_artifact_bytes"):
        small.register(str(keras_files["keras"]), "m")
    assert staging_is_empty(small)
    assert small.list_registered_models() == []


def test_an_export_larger_than_the_byte_limit_is_refused_and_leaves_nothing(
    tmp_path: Path, keras_files: dict[str, Path]
) -> None:
    # Given a registry whose byte limit takes the .keras file but not its SavedModel export
    # (the export is several times the file)
    limit = keras_files["keras"].stat().st_size + 1000
    small = ModelRegistry(
        RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"),
        tmp_path / "art",
        max_artifact_bytes=limit,
    )
    # When the file is registered, Then the export is refused as too large, naming the setting
    with pytest.raises(PayloadTooLarge, match="max_artifact_bytes"):
        small.register(str(keras_files["keras"]), "big")
    assert staging_is_empty(small)
    assert small.list_registered_models() == []


def test_an_export_past_the_time_limit_is_a_server_fault_and_leaves_nothing(
    tmp_path: Path, keras_files: dict[str, Path]
) -> None:
    # Given a registry whose registrations may take half a second (importing TensorFlow in
    # the export's child process takes longer)
    hasty = ModelRegistry(
        RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"),
        tmp_path / "art",
        artifact_copy_seconds=0.5,
    )
    # When a Keras file is registered
    # Then it is a fault on the server's side (a 5xx), not the user's
    with pytest.raises(ServerFault, match="did not finish within the registration's time limit"):
        hasty.register(str(keras_files["keras"]), "slow")
    assert staging_is_empty(hasty)
    assert hasty.list_registered_models() == []


def test_a_crashed_export_process_is_a_server_fault(tmp_path: Path) -> None:
    # Given the export's child process started with arguments it cannot take (it crashes
    # with a traceback and writes no result)
    work = tmp_path / "work"
    work.mkdir()
    # When it runs, Then the crash is a ServerFault quoting its last output
    with pytest.raises(ServerFault, match=r"exited with status 1 without a result.*ValueError"):
        run_step(
            "jupyter_modelserve.registry.keras_export",
            ["too", "few"],
            work=work,
            watch=tmp_path / "out",
            max_bytes=10**6,
            deadline=time.monotonic() + 120,
            what="exporting a test file",
            purpose="keras_export",
        )


def test_exporting_an_in_memory_model_keeps_tensorflows_chatter_out_of_the_output(
    registry: ModelRegistry, keras_model: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given TensorFlow logging INFO to stdout, as it sets itself up in IPython
    logger = logging.getLogger("tensorflow")
    handler = logging.StreamHandler(sys.stdout)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        capfd.readouterr()
        # When an in-memory Keras model is registered
        registry.register_keras_model(keras_model, "quiet")
        print("after the export")
        logging.getLogger("tensorflow").info("a later line")
        out, err = capfd.readouterr()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    # Then nothing about assets or the staging folder reached stdout or stderr
    assert "Assets written" not in out + err and ".staging" not in out + err, out + err
    # And output and TensorFlow's logging work as before once the export is done
    assert "after the export" in out and "a later line" in out
