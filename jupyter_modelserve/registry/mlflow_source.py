"""Registering an MLflow model URI (`runs:/<run>/model`, `models:/<name>/<version>`,
`models:/<name>@<alias>`) as a SavedModel version.

MLflow's own client resolves the URI and downloads the artifacts in a child process
(mlflow_fetch.py, bounded in bytes and time). The downloaded `MLmodel` file says what was
logged: a `tensorflow` flavour (mlflow.tensorflow.log_model) holds either a SavedModel folder
or a Keras file, a `keras` flavour (mlflow.keras.log_model) a Keras file or an exported
SavedModel. A SavedModel is copied as it is, a Keras file exported as a `.keras` file is
(keras_file.py). Any other flavour is refused with what to do instead. MLflow is an optional
extra: without it, the error says how to install it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput, ServerFault
from . import safe_copy, safe_file
from .artifacts import SavedModelInfo, check_saved_model
from .child import ChildTimeout, run_step
from .keras_file import export_keras_file
from .redact import redact

MLFLOW_SCHEMES = ("runs:/", "models:/")
INSTALL_HINT = "pip install 'jupyter_modelserve[mlflow]'"
_MAX_MLMODEL_BYTES = 1024**2  # an MLmodel file is a few hundred bytes of YAML


def is_mlflow_uri(source: str) -> bool:
    return source.startswith(MLFLOW_SCHEMES)


@dataclass(frozen=True)
class _Logged:
    """Where in the downloaded model the servable part is, and what it is."""

    relative: str
    kind: str  # "saved_model" or "keras_file"


def stage_mlflow_model(
    uri: str, staging: Path, work: Path, limits: safe_copy.CopyLimits
) -> SavedModelInfo:
    """Download `uri` into `work`, stage its SavedModel in `staging`; both gone on error
    (`work` stays for the caller to remove on success)."""
    shown = redact(uri)  # messages name the URI; a models://user:secret@host/... stays ours
    if importlib.util.find_spec("mlflow") is None:
        raise InvalidInput(
            f"source: {shown!r} is an MLflow model URI, and reading one needs MLflow: install "
            f"jupyter_modelserve[mlflow] ({INSTALL_HINT}) where the Jupyter server runs"
        )
    try:
        work.mkdir()
        downloaded = _download(uri, work, limits)
        logged = _servable_part(_read_mlmodel(downloaded, shown), shown)
        part = _inside(downloaded, logged.relative, shown)
        if logged.kind == "keras_file":
            keras_file = safe_file.resolve_file(str(part), None)  # a regular file, no device
            export_keras_file(keras_file, staging, work, limits, shown=shown)
        else:
            safe_copy.copy_folder(safe_copy.resolve_folder(part), staging, limits)
        signatures = check_saved_model(staging, shown)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        raise
    return SavedModelInfo(path=staging, signatures=signatures)


def _download(uri: str, work: Path, limits: safe_copy.CopyLimits) -> Path:
    target = work / "download"
    what = f"downloading {redact(uri)!r} from MLflow"
    try:
        result = run_step(
            "jupyter_modelserve.registry.mlflow_fetch",
            [uri, str(target), str(limits.max_bytes), os.getcwd()],
            work=work,
            watch=target,
            max_bytes=limits.max_bytes,
            deadline=limits.deadline,
            what=what,
            purpose="mlflow_fetch",
        )
    except ChildTimeout:
        raise ServerFault(
            f"source: {what} did not finish within the registration's time limit and was "
            "stopped; is the tracking server slow, or the model very large?"
        ) from None
    # MLflow names the folder it downloaded into; it must be ours.
    return _inside(target, os.path.relpath(str(result.get("path", "")), target), redact(uri))


def _read_mlmodel(folder: Path, uri: str) -> dict[str, Any]:
    path = folder / "MLmodel"
    try:
        with open(path, "rb") as file:
            raw = file.read(_MAX_MLMODEL_BYTES + 1)
    except OSError:
        raise InvalidInput(
            f"source: {uri!r} is not an MLflow model: it has no MLmodel file; name the folder "
            "a model was logged to (runs:/<run id>/<name given to log_model>)"
        ) from None
    try:
        if len(raw) > _MAX_MLMODEL_BYTES:
            raise ValueError("larger than 1 MiB")
        data = yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"source: the MLmodel file of {uri!r} cannot be read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise InvalidInput(f"source: the MLmodel file of {uri!r} lists no flavors")
    return data


def _servable_part(mlmodel: dict[str, Any], uri: str) -> _Logged:
    flavors: dict[str, Any] = mlmodel["flavors"]
    tensorflow, keras = flavors.get("tensorflow"), flavors.get("keras")
    if isinstance(tensorflow, dict):
        if tensorflow.get("model_type") == "keras":  # mlflow.tensorflow.log_model(keras_model)
            data = str(tensorflow.get("data", "data"))
            suffix = ".h5" if tensorflow.get("save_format", "h5") == "h5" else ".keras"
            return _Logged(f"{data}/model{suffix}", "keras_file")
        return _Logged(str(tensorflow.get("saved_model_dir", "tf2model")), "saved_model")
    if isinstance(keras, dict):  # mlflow.keras.log_model
        data = str(keras.get("data", "data"))
        if keras.get("save_exported_model"):
            return _Logged(f"{data}/model", "saved_model")
        return _Logged(f"{data}/model.keras", "keras_file")
    logged = ", ".join(sorted(name for name in flavors if name != "python_function"))
    what = f"a {logged} model" if logged else "a python_function (pyfunc) model"
    raise InvalidInput(
        f"source: {uri!r} is {what}; jupyter_modelserve serves TensorFlow SavedModels: log the "
        "model with mlflow.tensorflow.log_model or mlflow.keras.log_model, or register its "
        "SavedModel folder"
    )


def _inside(folder: Path, relative: str, uri: str) -> Path:
    """`folder/relative`, which the MLmodel file (anyone's text) may not lead out of."""
    base = os.path.realpath(folder)
    joined = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, joined]) != base:
        raise InvalidInput(
            f"source: the MLmodel file of {uri!r} points outside the model ({relative!r})"
        )
    if not os.path.exists(joined):
        raise InvalidInput(
            f"source: {uri!r} has no {relative!r}, where its MLmodel file says the model is"
        )
    return Path(joined)
