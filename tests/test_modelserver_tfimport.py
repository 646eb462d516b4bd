"""The interpreter's garbage collector around `import tensorflow` in the model server
(modelserver/tfimport.py): off during the import, what it made frozen, and left as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

PROBE = """
import gc, json, sys
{before}
from jupyter_modelserve.modelserver.tfimport import import_tensorflow
assert "tensorflow" not in sys.modules
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
import_tensorflow()
gc.callbacks.clear()
print(json.dumps({{
    "frozen": gc.get_freeze_count(), "enabled": gc.isenabled(), "collections": len(collections)
}}))
"""


def import_in_a_fresh_process(before: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_what_the_tensorflow_import_made_is_frozen_and_the_collector_is_back_on() -> None:
    # Given a fresh process with the collector on
    # When it imports TensorFlow through import_tensorflow()
    result = import_in_a_fresh_process(before="")
    # Then the collector never ran during the import, the import's objects (hundreds of
    # thousands) are frozen out of later collections, and the collector is on again
    assert result["collections"] == 0, result
    assert result["frozen"] > 100_000, result
    assert result["enabled"] is True


def test_a_collector_disabled_before_the_import_stays_disabled() -> None:
    # Given a fresh process whose collector was turned off by its own code
    # When it imports TensorFlow through import_tensorflow()
    result = import_in_a_fresh_process(before="gc.disable()")
    # Then import_tensorflow() left it off
    assert result["enabled"] is False
    assert result["frozen"] > 100_000, result


SKIPPING = """
import sys
from jupyter_modelserve.modelserver.tfimport import import_tensorflow, skip_optional_imports
skip_optional_imports()
tf = import_tensorflow()
import keras  # keras itself is still there: SavedModels of Keras models may need its registry
print(sys.modules["sklearn"] is None, sys.modules["matplotlib"] is None, keras.__name__)
"""


def test_the_model_server_process_never_imports_sklearn_or_matplotlib() -> None:
    # Given an environment where they may be installed (matplotlib is, with the bench extra)
    # When the model server's process marks them absent and imports TensorFlow
    done = subprocess.run(
        [sys.executable, "-c", SKIPPING], capture_output=True, text=True, timeout=120, check=False
    )
    # Then TensorFlow and keras import without them
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True", "keras"]


def test_importing_the_model_server_as_a_library_leaves_them_importable() -> None:
    pytest.importorskip("matplotlib")  # installed with the bench extra, as CI installs it
    # Given a process that imports the model server's modules (as tests and tools do)
    code = "import jupyter_modelserve.modelserver.server, matplotlib; print(matplotlib.__name__)"
    # When it then imports scikit-learn
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    # Then it can: only `python -m jupyter_modelserve.modelserver` skips them
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "matplotlib"
