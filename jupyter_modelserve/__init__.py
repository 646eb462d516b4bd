"""Serve a registered TensorFlow model from Jupyter."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import ModelServeApp

    return [{"module": "jupyter_modelserve.app", "app": ModelServeApp}]
