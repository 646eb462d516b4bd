"""Registering a `.keras` / `.h5` file: copy it safely, export it in a child, check the result.

The file is copied first (safe_file.py), so the child that loads it reads only the registry's
own copy, and what gets checked is exactly what was exported. The load and export run in
`python -m jupyter_modelserve.registry.keras_export` (child.py): TensorFlow never enters the
Jupyter server, a load that hangs is killed at the registration's deadline, and the export is
held to the registration's byte limit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import InvalidInput, ServerFault
from . import safe_copy, safe_file
from .artifacts import SavedModelInfo, check_saved_model
from .child import ChildTimeout, run_step

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_keras_file(source: str) -> bool:
    return source.lower().endswith(KERAS_SUFFIXES)


def stage_keras_file(
    source: str,
    base_dir: Path | None,
    staging: Path,
    work: Path,
    limits: safe_copy.CopyLimits,
) -> SavedModelInfo:
    """Export the Keras file `source` into `staging` as a SavedModel; `work` is a scratch folder.

    `staging` and `work` are gone on any error; `work` is the caller's to remove on success.
    """
    resolved = safe_file.resolve_file(source, base_dir)
    try:
        _make_dir(work)
        copy = work / f"model{resolved.suffix.lower() or '.keras'}"
        safe_file.copy_file(resolved, copy, limits, source)
        _check_format(copy, source)
        export_keras_file(copy, staging, work, limits, shown=source)
        signatures = check_saved_model(staging, source)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        raise
    return SavedModelInfo(path=staging, signatures=signatures)


def export_keras_file(
    keras_file: Path, staging: Path, work: Path, limits: safe_copy.CopyLimits, shown: str
) -> None:
    """Load our copy `keras_file` and export it to `staging` in a child process."""
    what = f"exporting the Keras file {shown!r}"
    try:
        run_step(
            "jupyter_modelserve.registry.keras_export",
            [str(keras_file), str(staging), shown, str(limits.max_bytes)],
            work=work,
            watch=staging,
            max_bytes=limits.max_bytes,
            deadline=limits.deadline,
            what=what,
            purpose="keras_export",
        )
    except ChildTimeout:
        raise ServerFault(
            f"source: {what} did not finish within the registration's time limit and was "
            "stopped; export it in your notebook with model.export(folder) and register "
            "that folder"
        ) from None


# What the files Keras writes begin with: .keras is a zip archive, .h5 an HDF5 file.
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _check_format(copy: Path, shown: str) -> None:
    """Refuse a file that is no Keras file at all before a child process is started for it."""
    with open(copy, "rb") as file:
        head = file.read(8)
    if head.startswith(_ZIP_MAGIC) or head == _HDF5_MAGIC:
        return
    raise InvalidInput(
        f"source: {shown!r} is not a Keras model file: a .keras file is the zip archive that "
        "model.save('model.keras') writes, a .h5 file the HDF5 file of model.save('model.h5')"
    )


def _make_dir(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as exc:
        raise safe_copy.DestinationError(path, exc) from None
