"""Registering an in-memory Keras model, then serving it: predictions match model.predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_modelserve.errors import InvalidInput
from jupyter_modelserve.registry.model_registry import VersionDetails
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
