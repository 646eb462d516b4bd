"""Child process: load a `.keras` / `.h5` file and export it as a SavedModel.

    python -m jupyter_modelserve.registry.keras_export SRC DEST SHOWN_AS MAX_BYTES RESULT

Run by keras_file.py so the Jupyter server never imports TensorFlow. SRC is the registry's own
copy of the user's file; SHOWN_AS is how the user named it, for messages. Keras loads with
`safe_mode=True`: a file whose layers would run arbitrary code (a Lambda's pickled bytecode) is
refused, not executed. That promise holds only in a Keras without the known ways around it, so
an older Keras loads no file at all (`unsafe_keras`). Every file this process writes is capped
at MAX_BYTES and its address space bounded (child_limits.py), so a model that would export into
more than a registration stores fails before it fills the disk.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

from .child import write_result
from .child_limits import apply_limits

# The first Keras whose safe_mode has no published way around it: before 3.11.3 it ignored
# safe_mode for .h5 files (CVE-2025-9905), before 3.11.0 / 3.14.0 a .keras config could reach
# arbitrary callables (CVE-2025-9906, CVE-2025-8747, CVE-2026-1462), before 3.12.0 read any
# file (CVE-2025-12058); 3.15.1 closed the last pickling bypasses. pyproject's `tensorflow`
# extra requires the same version: this check is for servers that installed Keras otherwise.
SAFE_KERAS = (3, 15, 1)

_FIX_CUSTOM = (
    "a model with custom layers or functions cannot be loaded outside the code that defines "
    "them: register the model object from your notebook (api.register(model, name)), or export "
    "it there with model.export(folder) and register that folder"
)


def unsafe_keras(version: str) -> bool:
    """Whether Keras `version` ("3.15.1", "3.16.0.dev2026...") predates SAFE_KERAS; a version
    that cannot be read is taken as unsafe."""
    parts = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if parts is None:
        return True
    major, minor, patch = (int(part or 0) for part in parts.groups())
    return (major, minor, patch) < SAFE_KERAS


def _unsafe_keras_message(version: str, shown: str) -> str:
    wanted = ".".join(str(part) for part in SAFE_KERAS)
    return (
        f"source: {shown!r} was not loaded: the server's Keras {version} has known ways for a "
        f"model file to run code despite safe_mode (for .h5 files CVE-2025-9905, for .keras "
        f"files CVE-2025-9906 and CVE-2026-1462); install keras>={wanted} where the Jupyter "
        "server runs (pip install -U 'jupyter_modelserve[tensorflow]')"
    )


def _load(source: Path, shown: str, result: str) -> object | None:
    try:
        import keras
    except ImportError:
        write_result(
            result,
            "invalid",
            message=f"source: {shown!r} is a Keras file, and loading one needs TensorFlow: "
            "install jupyter_modelserve[tensorflow] where the Jupyter server runs",
        )
        return None
    version = str(getattr(keras, "__version__", ""))
    if unsafe_keras(version):
        write_result(result, "invalid", message=_unsafe_keras_message(version, shown))
        return None
    try:
        return keras.saving.load_model(str(source), compile=False, safe_mode=True)
    except Exception as exc:
        write_result(result, "invalid", message=_load_error(exc, source, shown))
        return None


def _load_error(exc: BaseException, source: Path, shown: str) -> str:
    """One line naming the file, what Keras could not do, and the fix.

    Keras wraps the useful cause ("Could not locate class 'Doubler'") in an error that dumps the
    whole model config; the innermost cause is the one to show, without the dump.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    texts = [" ".join(str(e).replace(str(source), shown).split()) for e in chain]
    for text in texts:
        missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
        if missing:
            return (
                f"source: {shown!r} uses the custom class or function {missing.group(1)!r}, which "
                f"this server cannot import; {_FIX_CUSTOM}"
            )
    for text in texts:
        if "safe_mode" in text:
            return (
                f"source: {shown!r} holds a Lambda layer whose Python code would run on loading, "
                f"which the server refuses; {_FIX_CUSTOM}"
            )
    reason = texts[-1].split(" Full object config:")[0].split(" config=")[0][:400]
    return (
        f"source: {shown!r} could not be loaded as a Keras model ({type(chain[-1]).__name__}: "
        f"{reason}); save it with model.save('model.keras') and try again"
    )


def _too_large(shown: str, max_bytes: str) -> str:
    return (
        f"source: the SavedModel exported from {shown!r} is larger than the {max_bytes} bytes "
        "that registration stores; raise c.ModelServeApp.max_artifact_bytes to register it"
    )


def main(argv: list[str]) -> int:
    source, destination, shown, max_bytes, result = argv
    apply_limits(int(max_bytes))
    model = _load(Path(source), shown, result)
    if model is None:
        return 0
    try:
        model.export(destination, format="tf_saved_model", verbose=False)  # type: ignore[attr-defined]
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            write_result(result, "too_large", message=_too_large(shown, max_bytes))
            return 0
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:600]
        if "File too large" in reason:  # TensorFlow's own file writer met RLIMIT_FSIZE
            write_result(result, "too_large", message=_too_large(shown, max_bytes))
            return 0
        write_result(
            result,
            "invalid",
            message=f"source: the Keras model in {shown!r} loaded but could not be exported "
            f"as a SavedModel ({type(exc).__name__}: {reason}); export it in your notebook "
            "with model.export(folder) and register that folder",
        )
        return 0
    write_result(result, "ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
