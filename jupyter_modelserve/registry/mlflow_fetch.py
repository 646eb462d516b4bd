"""Child process: download an MLflow model's artifacts through MLflow's own client.

    python -m jupyter_modelserve.registry.mlflow_fetch URI DEST MAX_BYTES CALLER_CWD RESULT

Run by mlflow_source.py, so MLflow is never imported by the Jupyter server and a download that
hangs is killed at the registration's deadline. MLflow resolves `runs:/`, `models:/name/N` and
`models:/name@alias` against the user's tracking URI as it always does (MLFLOW_TRACKING_URI,
which the parent sets from mlflow.set_tracking_uri() when the caller's process imported MLflow,
else MLflow's default store in CALLER_CWD, the caller's working folder). Each file written is
capped at MAX_BYTES and the address space bounded (child_limits.py); the parent caps the
folder's total. MLflow quotes the URLs it failed on, credentials and presigned query strings
included: every message is redacted (redact.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

from .child import write_result
from .child_limits import apply_limits
from .redact import redact

# MLflow's error codes that mean "the URI names nothing there" or "you may not read it": the
# user's to fix. Anything else (a server that does not answer) is the tracking server's state.
_USER_ERRORS = {
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_PARAMETER_VALUE",
    "NOT_FOUND",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
}


def main(argv: list[str]) -> int:
    uri, destination, max_bytes, caller_cwd, result = argv
    apply_limits(int(max_bytes))
    # MLflow retries a silent server for minutes by default; the parent's deadline is the
    # bound, these just keep one attempt from using all of it. The user's own settings win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import mlflow
    from mlflow.exceptions import MlflowException

    # MLflow's default store is relative to the working folder, which for this isolated child
    # is a scratch folder: the caller's is meant. Changed after the imports, and harmless to
    # them anyway: `python -I` keeps the working folder off sys.path.
    # A caller whose folder is gone: a set tracking URI still works.
    with contextlib.suppress(OSError):
        os.chdir(caller_cwd)
    tracking = redact(mlflow.get_tracking_uri())
    shown = redact(uri)
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=destination)
    except MlflowException as exc:
        reason = redact(" ".join(str(exc).split()))[:500]
        if exc.error_code in _USER_ERRORS:
            write_result(
                result,
                "invalid",
                message=f"source: MLflow at {tracking} cannot give {shown!r}: {reason}; check the "
                "URI, and if the model lives in another tracking store, name it: "
                "mlflow.set_tracking_uri(...) in the notebook, or MLFLOW_TRACKING_URI where "
                "the Jupyter server runs",
            )
        else:
            write_result(
                result,
                "unavailable",
                message=f"source: MLflow at {tracking} did not give {shown!r}: {reason}",
            )
        return 0
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            write_result(
                result,
                "too_large",
                message=f"source: a file of {shown!r} is larger than the {max_bytes} bytes that "
                "registration stores; raise c.ModelServeApp.max_artifact_bytes to register it",
            )
            return 0
        write_result(
            result,
            "unavailable",
            message=f"source: downloading {shown!r} from MLflow at {tracking} failed: "
            f"{redact(str(exc))}",
        )
        return 0
    write_result(result, "ok", path=str(path), tracking_uri=tracking)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
