"""The environment a registration step's child process runs in (parent side).

The child loads a file or talks to a tracking server on the user's behalf, and a Keras file is
anyone's bytes: whatever it manages to run would see the environment. So the Keras export gets
none of the process's credentials (Jupyter's own tokens, cloud keys, anything named like a
secret); the MLflow download needs MLFLOW_* and the cloud credentials of its artifact store,
so it keeps those and loses only Jupyter's tokens. Temporary files go to a folder the parent
measures (TMPDIR and friends), not to /tmp, where nothing bounds them.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

# Upper-cased names: the environment's names are matched upper-cased.
_JUPYTER_SECRETS = ("JUPYTERHUB_*", "JPY_*")
_ALL_SECRETS = (
    *_JUPYTER_SECRETS,
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
    "*API_KEY*",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "AWS_*",
    "GOOGLE_*",
    "AZURE_*",
)

Purpose = Literal["keras_export", "mlflow_fetch"]


def is_secret(name: str, purpose: Purpose) -> bool:
    """Whether the variable `name` is withheld from a child doing `purpose`."""
    patterns = _ALL_SECRETS if purpose == "keras_export" else _JUPYTER_SECRETS
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in patterns)


def child_environment(
    purpose: Purpose, temp: Path, parent: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's environment: the parent's minus its secrets, temporary files in `temp`."""
    source = os.environ if parent is None else parent
    env = {name: value for name, value in source.items() if not is_secret(name, purpose)}
    env.update({name: str(temp) for name in ("TMPDIR", "TEMP", "TMP")})
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # glibc gives each thread its own 64 MiB malloc arena; on a many-core host TensorFlow's
    # threads would reserve gigabytes of address space against the child's RLIMIT_AS.
    env.setdefault("MALLOC_ARENA_MAX", "4")
    if purpose == "mlflow_fetch":
        env.update(mlflow_uris_of_this_process())
    return env


def mlflow_uris_of_this_process() -> dict[str, str]:
    """The tracking and registry URIs a notebook set with mlflow.set_tracking_uri(...).

    That setting lives in the imported mlflow module, not in the environment, so a child never
    sees it unless it is passed on. MLflow is only asked if this process imported it already:
    the Jupyter server must not import MLflow (slow, and an optional extra) just to learn that
    nobody set anything, and then the child's own MLflow reads the same environment anyway.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return {}
    try:
        tracking = mlflow.get_tracking_uri()
        registry = mlflow.get_registry_uri()
    except Exception:  # a half-imported or broken MLflow: leave it to the child's own
        return {}
    uris = {}
    if isinstance(tracking, str) and tracking:
        uris["MLFLOW_TRACKING_URI"] = tracking
    if isinstance(registry, str) and registry:
        uris["MLFLOW_REGISTRY_URI"] = registry
    return uris
