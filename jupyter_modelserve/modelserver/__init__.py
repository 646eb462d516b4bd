"""A built-in model server speaking TensorFlow Serving's REST API.

Run it with `python -m jupyter_modelserve.modelserver --rest_api_port=0
--model_config_file=FILE` (the same flags as `tensorflow_model_server`). `config` is pure Python
and is shared with the backend; the other modules are for the server process and import
TensorFlow lazily. Importing this package never imports TensorFlow.
"""
