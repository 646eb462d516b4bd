"""Builders for the small real SavedModels the model server tests serve.

Each builder writes one version folder and returns its path. TensorFlow is imported inside the
builders so that collecting the tests stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_modelserve.demo import build_half_plus_two

__all__ = [
    "build_classify_regress_v1",
    "build_half_plus_two",
    "build_multi_io",
    "build_strings",
]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_multi_io(export_dir: str | Path) -> Path:
    """TF2 model with several signatures.

    - `serving_default`: inputs `a` float32 [-1, 2] and `b` int64 [-1]; outputs
      `total` = sum(a, axis 1) + b (float32 [-1]) and `label_bytes` = str(b) (string [-1]).
    - `scale`: input `x` float32 [-1], output `doubled` = 2x.
    - `parse_classify` / `parse_regress`: one DT_STRING input of serialized tf.Example with a
      float feature `x`; outputs `classes`/`scores` (2 classes) or `outputs` = 0.5x + 2. Their
      method_name is predict (all TF2 can write), so they exercise the shape-based fallback.
    """
    import tensorflow as tf

    spec = {"x": tf.io.FixedLenFeature([1], tf.float32)}

    class MultiIO(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="a"),
                tf.TensorSpec([None], tf.int64, name="b"),
            ]
        )
        def serve(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
            total = tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)
            return {"total": total, "label_bytes": tf.strings.as_string(b)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def scale(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"doubled": 2.0 * x}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def parse_classify(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
            x = tf.io.parse_example(examples, spec)["x"]
            positive = tf.sigmoid(x)
            labels = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(x)[0], 1])
            return {"classes": labels, "scores": tf.concat([1.0 - positive, positive], axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def parse_regress(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
            x = tf.io.parse_example(examples, spec)["x"]
            return {"outputs": 0.5 * x + 2.0}

    module = MultiIO()
    path = Path(export_dir)
    signatures = {
        "serving_default": module.serve,
        "scale": module.scale,
        "parse_classify": module.parse_classify,
        "parse_regress": module.parse_regress,
    }
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def build_strings(export_dir: str | Path) -> Path:
    """TF2 model with input `text` string [-1]; outputs `upper` (text) and `echo_bytes`."""
    import tensorflow as tf

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def __call__(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"upper": tf.strings.upper(text), "echo_bytes": text}

    module = Strings()
    path = Path(export_dir)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def build_classify_regress_v1(export_dir: str | Path) -> Path:
    """A SavedModel with real classify and regress SignatureDefs (method_name set).

    TF2's saved_model.save cannot set method_name, so this one is built with the TF1 compat
    SavedModelBuilder, as estimator-era models were. Signatures: `classify_x` (classes `neg`/
    `pos`, scores from sigmoid(0.5x + 2)), `regress_x` and `serving_default` (both regress,
    outputs 0.5x + 2), over serialized tf.Example with a float feature `x`.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    path = Path(export_dir)
    graph = tf.Graph()
    with graph.as_default():
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        features = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32)})
        y = 0.5 * features["x"] + 2.0
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(y)[0], 1])
        scores = tf.concat([1.0 - tf.sigmoid(y), tf.sigmoid(y)], axis=1)
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(path))
            classify = v1.saved_model.classification_signature_def(serialized, classes, scores)
            regress = v1.saved_model.regression_signature_def(serialized, y)
            builder.add_meta_graph_and_variables(
                session,
                [tf.saved_model.SERVING],
                signature_def_map={
                    "classify_x": classify,
                    "regress_x": regress,
                    "serving_default": regress,
                },
            )
            builder.save()
    return path
