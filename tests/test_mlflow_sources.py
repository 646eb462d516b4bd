"""Registering MLflow model URIs against a real local tracking store.

The models are logged with MLflow itself (a Keras model through mlflow.tensorflow and
mlflow.keras, a plain pyfunc for the refusal) into a SQLite tracking store under tmp_path, which
the registry reaches through MLFLOW_TRACKING_URI as a user's notebook would.

MLflow is an optional extra: these tests skip without it, except in CI or with
MODELSERVE_REQUIRE_MLFLOW=1 (.ci/run sets it), where a missing MLflow fails them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_modelserve.errors import (
    BackendUnavailable,
    InvalidInput,
    NotFound,
    ServerFault,
)
from jupyter_modelserve.registry.child import run_step
from jupyter_modelserve.registry.model_registry import ModelRegistry
from jupyter_modelserve.registry.store import RegistryStore

from .conftest import Api, post_json

REQUIRE_MLFLOW = os.environ.get("MODELSERVE_REQUIRE_MLFLOW") == "1" or bool(os.environ.get("CI"))
HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None


def need_mlflow() -> None:
    if HAVE_MLFLOW:
        return
    if REQUIRE_MLFLOW:
        pytest.fail("MLflow is required here (CI or MODELSERVE_REQUIRE_MLFLOW=1) but not installed")
    pytest.skip("MLflow is not installed: pip install -e '.[mlflow]' (as .ci/run does)")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A SQLite tracking store with a Keras model logged two ways and a pyfunc model."""
    need_mlflow()
    import keras
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("tiny", artifact_location=(folder / "art").as_uri())
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: list[Any], params: Any = None) -> Any:
            return model_input

    runs = {}
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.tensorflow.log_model(model, name="model", registered_model_name="tiny-mlflow")
        runs["tensorflow"] = run.info.run_id
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.keras.log_model(model, name="model")
        runs["keras"] = run.info.run_id
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(name="model", python_model=Echo())
        runs["pyfunc"] = run.info.run_id
    mlflow.MlflowClient().set_registered_model_alias("tiny-mlflow", "champion", "1")
    mlflow.set_tracking_uri(None)  # the tests reach it through the environment, as users do
    return {"uri": uri, "runs": runs, "model": model}


@pytest.fixture
def in_tracking_store(tracking: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """MLFLOW_TRACKING_URI names the store, for this process and the children it starts."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking["uri"])
    return tracking


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"), tmp_path / "art")


def staging_is_empty(registry: ModelRegistry) -> bool:
    staging = registry.artifact_root / ".staging"
    return not staging.exists() or list(staging.iterdir()) == []


def predict_with(saved_model: Path, rows: list[list[float]]) -> Any:
    """What the registered SavedModel's serving signature answers, as TF Serving would call it."""
    import tensorflow as tf

    serving = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    (output,) = serving(tf.constant(rows, dtype=tf.float32)).values()
    return output.numpy()


def test_a_run_logged_with_mlflow_tensorflow_and_mlflow_keras_registers_as_a_saved_model(
    registry: ModelRegistry, in_tracking_store: dict[str, Any]
) -> None:
    runs, model = in_tracking_store["runs"], in_tracking_store["model"]
    rows = [[0.5, -1.0, 2.0]]
    expected = model.predict(np.array(rows, dtype="float32"), verbose=0)
    for flavour in ("tensorflow", "keras"):
        # Given a run that logged a Keras model with mlflow.<flavour>.log_model
        uri = f"runs:/{runs[flavour]}/model"
        # When its URI is registered
        version = registry.register(uri, f"from-{flavour}")
        # Then the version is a SavedModel that predicts what the model predicts
        np.testing.assert_allclose(predict_with(Path(version.source), rows), expected, rtol=1e-5)
        # And it remembers where it came from
        assert f"mlflow:{uri}" in version.tags
    assert staging_is_empty(registry)


async def test_a_registered_mlflow_model_by_alias_registers_over_rest_and_serves(
    api: Api, in_tracking_store: dict[str, Any]
) -> None:
    # Given MLflow's registered model tiny-mlflow, version 1 aliased "champion"
    # When models:/tiny-mlflow@champion is registered through the REST API
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "champ", "source": "models:/tiny-mlflow@champion"}
    )
    assert code == 200, envelope
    assert "mlflow:models:/tiny-mlflow@champion" in envelope["result"]["tags"]
    # Then it serves and predicts what the Keras model predicts
    code, envelope = await api(
        "POST", "/api/v1/serve", {"modelName": "champ", "modelVersion": 1}, params={"wait": 60}
    )
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    rows = [[1.0, 2.0, 3.0]]
    status, body = await post_json(envelope["result"]["url"], {"instances": rows})
    assert status == 200, body
    expected = in_tracking_store["model"].predict(np.array(rows, dtype="float32"), verbose=0)
    np.testing.assert_allclose(np.array(body["predictions"]), expected, rtol=1e-5, atol=1e-6)


def test_a_model_version_by_number_registers(
    registry: ModelRegistry, in_tracking_store: dict[str, Any]
) -> None:
    # Given MLflow's registered model tiny-mlflow version 1
    # When models:/tiny-mlflow/1 is registered
    version = registry.register("models:/tiny-mlflow/1", "by-number")
    # Then it is a SavedModel version
    assert (Path(version.source) / "saved_model.pb").is_file()


def test_a_pyfunc_model_is_refused_saying_what_to_do_and_leaves_nothing(
    registry: ModelRegistry, in_tracking_store: dict[str, Any]
) -> None:
    # Given a run that logged a plain Python model (no TensorFlow flavour)
    uri = f"runs:/{in_tracking_store['runs']['pyfunc']}/model"
    # When it is registered, Then the error says what it is and how to log a servable one
    with pytest.raises(InvalidInput, match=r"is a python_function.*mlflow\.tensorflow\.log_model"):
        registry.register(uri, "echo")
    # And nothing is left behind
    with pytest.raises(NotFound):
        registry.get_registered_model("echo")
    assert staging_is_empty(registry)


def test_a_run_that_does_not_exist_names_the_tracking_store(
    registry: ModelRegistry, in_tracking_store: dict[str, Any]
) -> None:
    # Given a run id the tracking store does not have
    # When its URI is registered, Then the error names the store and the URI (a 400)
    with pytest.raises(InvalidInput, match=r"MLflow at sqlite:///.*cannot give 'runs:/0123abc/mo"):
        registry.register("runs:/0123abc/model", "ghost")
    assert staging_is_empty(registry)
    assert registry.list_registered_models() == []


def test_without_mlflow_the_error_says_how_to_install_it(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Python where MLflow cannot be imported
    monkeypatch.setitem(sys.modules, "mlflow", None)
    # When an MLflow URI is registered, Then the error names the extra to install
    with pytest.raises(InvalidInput, match=r"install jupyter_modelserve\[mlflow\]"):
        registry.register("models:/anything/1", "none")
    assert staging_is_empty(registry)


def test_a_tracking_uri_set_in_the_notebook_reaches_the_download(
    registry: ModelRegistry,
    tracking: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a notebook that named its tracking store with mlflow.set_tracking_uri, working in
    # a folder whose default store has no such model, and whose MLFLOW_TRACKING_URI names
    # another store (set_tracking_uri wins over it in the notebook's own MLflow calls; recent
    # MLflow copies it into the environment, older ones and a later os.environ edit do not)
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(tracking["uri"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert mlflow.get_tracking_uri() == tracking["uri"]
    try:
        # When models:/tiny-mlflow/1 is registered from that process
        version = registry.register("models:/tiny-mlflow/1", "set-in-notebook")
    finally:
        mlflow.set_tracking_uri(None)
    # Then MLflow found it in the store the notebook named
    assert (Path(version.source) / "saved_model.pb").is_file()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed now: connecting is refused


def test_credentials_in_the_tracking_uri_reach_no_message_and_no_log(
    registry: ModelRegistry,
    tracking: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a tracking URI with a password, of a server that is not there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://user:hunter2@127.0.0.1:{closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    caplog.set_level(logging.DEBUG)
    # When a run's model is registered, Then MLflow's failure is the tracking server's (503)
    with pytest.raises(BackendUnavailable) as caught:
        registry.register("runs:/0123abc/model", "no-server")
    # And neither the error nor any log record shows the password
    assert "127.0.0.1" in str(caught.value) and "hunter2" not in str(caught.value)
    assert caplog.records == [] or "hunter2" not in caplog.text


def test_a_crashed_download_quotes_its_output_without_credentials(tmp_path: Path) -> None:
    # Given the download's child process started with a byte limit that is a URL with a
    # password and a presigned signature (int() fails, quoting it in the traceback)
    need_mlflow()
    work = tmp_path / "work"
    work.mkdir()
    url = "https://user:hunter2@bucket.s3.amazonaws.com/m?X-Amz-Signature=deadbeef"
    # When it runs, Then the crash is a ServerFault quoting the output, credentials hidden
    with pytest.raises(ServerFault, match=r"without a result.*ValueError") as caught:
        run_step(
            "jupyter_modelserve.registry.mlflow_fetch",
            ["runs:/x/model", str(tmp_path / "out"), url, str(tmp_path)],
            work=work,
            watch=tmp_path / "out",
            max_bytes=10**6,
            deadline=time.monotonic() + 120,
            what=f"downloading {url}",
            purpose="mlflow_fetch",
        )
    message = str(caught.value)
    assert "bucket.s3.amazonaws.com" in message
    assert "hunter2" not in message and "deadbeef" not in message
