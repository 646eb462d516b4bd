"""A built-in model server speaking TensorFlow Serving's REST API.

Run it with `python -m jupyter_modelserve.modelserver --rest_api_port=0
--model_config_file=FILE` (the same flags as `tensorflow_model_server`). It reads TF Serving's
config through the pure `jupyter_modelserve.tfserving` (shared with the backends) and imports
nothing else of its parent; its modules import TensorFlow lazily, so importing this package
never imports TensorFlow.
"""
