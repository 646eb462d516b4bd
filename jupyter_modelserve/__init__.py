"""Serve a registered TensorFlow model from Jupyter."""

from typing import Any

from ._version import __version__

__all__ = ["ServePanel", "__version__", "load_ipython_extension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import ModelServeApp

    return [{"module": "jupyter_modelserve.app", "app": ModelServeApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # For `jupyter labextension develop`: the wheel installs the build through shared-data.
    return [{"src": "labextension", "dest": "jupyter-modelserve"}]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_modelserve` registers the `%serve` magic."""
    from .magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    # ipywidgets (and the service) load only when the panel is asked for.
    if name == "ServePanel":
        from .widgets import ServePanel

        return ServePanel
    raise AttributeError(f"module 'jupyter_modelserve' has no attribute {name!r}")
