"""The two benchmark models and the request bodies every server gets for them.

- `simple`: the example half_plus_two (input `x` float32 [-1], output `y` = 0.5x + 2).
- `mlp`: a small Keras MLP, 784 -> 128 relu -> 10 softmax, exported as a SavedModel whose
  `serving_default` takes `x` float32 [-1, 784] and returns `probabilities` [-1, 10]. Weights
  come from a fixed seed: the answers are the same on every machine and run.

TensorFlow is imported inside the builders, as in tests/tf_models.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jupyter_modelserve.demo import build_half_plus_two

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MLP_FEATURES = 784
MLP_CLASSES = 10


def build_mlp(export_dir: str | Path) -> Path:
    """Write the 784-128-10 Keras MLP as a SavedModel version folder."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(12)
    model = keras.Sequential(
        [
            keras.Input(shape=(MLP_FEATURES,), dtype="float32"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(MLP_CLASSES, activation="softmax"),
        ]
    )

    class Mlp(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, MLP_FEATURES], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"probabilities": self.model(x, training=False)}

    module = Mlp()
    path = Path(export_dir).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


BUILDERS: dict[str, Callable[[str | Path], Path]] = {
    "simple": build_half_plus_two,
    "mlp": build_mlp,
}


@dataclass(frozen=True)
class Payload:
    """One request body (TF Serving's row format) and how to tell its answer is right."""

    model: str
    batch: int
    body: bytes

    def check(self, answer: bytes) -> bool:
        predictions = json.loads(answer)["predictions"]
        if len(predictions) != self.batch:
            return False
        if self.model == "simple":
            return all(abs(float(y) - 2.5) < 1e-4 for y in predictions)
        row = predictions[0]
        return len(row) == MLP_CLASSES and abs(sum(row) - 1.0) < 1e-3


def payload(model: str, batch: int) -> Payload:
    """`batch` rows of input 1.0 (simple) or a fixed 784-float image (mlp)."""
    if model == "simple":
        row: float | list[float] = 1.0
    else:
        row = [((i * 7) % 256) / 255.0 for i in range(MLP_FEATURES)]
    body = json.dumps({"instances": [row] * batch}).encode()
    return Payload(model=model, batch=batch, body=body)


def build_all(root: Path) -> dict[str, Path]:
    """Both models under root/<name>/1; returns the version folders."""
    return {name: build(root / name / "1") for name, build in BUILDERS.items()}
