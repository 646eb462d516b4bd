"""TF Serving's batching flags for the local model server, and news of a server started without
the ones now configured (flags take effect only when the long-lived server next starts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendUnavailable

_BATCHING_FLAGS = ("--enable_batching", "--batching_parameters_file")


def batching_flags(enable: bool, parameters_file: str, check: bool = True) -> list[str]:
    """The flags both servers take (tensorflow_model_server's own). With `check`, a missing
    parameters file is a configuration fault, named before any server starts."""
    if not enable:
        return []
    if not parameters_file:
        return ["--enable_batching"]
    # Absolute: the Jupyter server, kernels and the CLI may each run in another folder.
    path = Path(parameters_file).expanduser().resolve()
    if check and not path.is_file():
        raise BackendUnavailable(
            f"cannot start the model server: c.LocalBackend.batching_parameters_file "
            f"{parameters_file!r} is not a file"
        )
    return ["--enable_batching", f"--batching_parameters_file={path}"]


def started_otherwise(running_command: Sequence[str], wanted: Sequence[str]) -> bool:
    """Whether a running server's command line differs from `wanted` in its batching flags."""
    running = [arg for arg in running_command if arg.startswith(_BATCHING_FLAGS)]
    return running != list(wanted)
