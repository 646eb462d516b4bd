"""MLflow's peer: a pyfunc model that loads the SavedModel and calls its signature.

Runs inside the mlflow venv only (MLflow "models from code": `mlflow.pyfunc.save_model(...,
python_model=<this file>)`). The pyfunc wrapper is the fair peer: it calls the same SavedModel
signature ours calls, where MLflow's Keras flavour goes through `keras.Model.predict` and is
several times slower.
"""

from typing import Any

import mlflow
import numpy as np
import tensorflow as tf


class SavedModelPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self._model = tf.saved_model.load(context.artifacts["saved_model"])
        self._function = self._model.signatures["serving_default"]
        self._input = next(iter(self._function.structured_input_signature[1]))

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        tensor = tf.constant(np.asarray(model_input, dtype=np.float32))
        outputs = self._function(**{self._input: tensor})
        return next(iter(outputs.values())).numpy()


mlflow.models.set_model(SavedModelPyfunc())
