"""What TensorFlow Serving itself defines, shared by the backends and the built-in model server.

Pure modules only (no TensorFlow, no I/O): the Jupyter server renders TF Serving's config with
them without paying TensorFlow's import.
"""

# The one route the built-in model server adds to TF Serving's REST API: every model's
# `GetModelStatus` answer in one reply, `{"models": {name: {"model_version_status": [...]}}}`.
# TF Serving answers status one model at a time, so a list of 1,000 local serves would cost
# 1,000 round trips; against tensorflow_model_server the local backend still asks per model.
ALL_STATUSES_PATH = "/modelserve/v1/models"
