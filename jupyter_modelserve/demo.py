"""The canonical `half_plus_two` test model (y = 0.5 * x + 2), written as a TF2 SavedModel.

`python -m jupyter_modelserve.demo EXPORT_DIR` writes it into EXPORT_DIR, a version folder such
as `models/simple/1`. TensorFlow is imported only when the model is built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def build_half_plus_two(export_dir: str | Path) -> Path:
    """Write half_plus_two (input `x` float32 [-1], output `y`, `serving_default`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            # Variables rather than constants, as in TF Serving's own test model: the SavedModel
            # then has a variables/ folder like any trained model.
            self.a = tf.Variable(0.5, dtype=tf.float32, name="a")
            self.b = tf.Variable(2.0, dtype=tf.float32, name="b")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.a * x + self.b}

    module = HalfPlusTwo()
    path = Path(export_dir).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m jupyter_modelserve.demo EXPORT_DIR", file=sys.stderr)
        return 2
    print(build_half_plus_two(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
