"""KServe's peer: a `kserve.Model` whose predict calls the SavedModel's signature.

    <kserve venv>/bin/python kserve_model.py NAME SAVED_MODEL_DIR HTTP_PORT

Runs inside the kserve venv only. KServe's V1 protocol takes TF Serving's `{"instances": ...}`
at `/v1/models/NAME:predict`. One model per process, one worker, KServe's defaults otherwise.
"""

import sys
from typing import Any

import kserve
import numpy as np
import tensorflow as tf


class SavedModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self._model = tf.saved_model.load(self.path)
        self._function = self._model.signatures["serving_default"]
        self._input = next(iter(self._function.structured_input_signature[1]))
        self.ready = True
        return True

    def predict(self, payload: Any, headers: Any = None) -> Any:
        tensor = tf.constant(np.asarray(payload["instances"], dtype=np.float32))
        outputs = self._function(**{self._input: tensor})
        return {"predictions": next(iter(outputs.values())).numpy().tolist()}


if __name__ == "__main__":
    name, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kserve.ModelServer(http_port=port, grpc_port=port + 1, enable_grpc=False, workers=1).start(
        [SavedModel(name, path)]
    )
