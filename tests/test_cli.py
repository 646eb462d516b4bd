"""The `jupyter modelserve` command: --demo, register, stop-server, on real processes."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from jupyter_modelserve import __version__

from .servers import JupyterProcess

SERVE_SIMPLE = '{"modelName": "simple", "modelVersion": 1, }'  # Submarine's, trailing comma too


def test_demo_registers_simple_1_once_and_it_serves(jupyter: JupyterProcess) -> None:
    # When `jupyter modelserve --demo` starts on a fresh data dir
    jupyter.start("--demo")

    # Then `simple` version 1 is registered, and the seed's POST serves it
    code, envelope = jupyter.call("GET", "/api/v1/model-version/simple/1")
    assert code == 200 and envelope["result"]["description"].startswith("half_plus_two")
    code, envelope = jupyter.call("POST", "/api/v1/serve", SERVE_SIMPLE, wait=60)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    url = envelope["result"]["url"]
    response = requests.post(url, json={"instances": [1.0, 2.0, 5.0]})
    assert response.json() == {"predictions": [2.5, 3.0, 4.5]}

    # When the model server is stopped by hand, it is really gone
    stopped = jupyter.command("stop-server")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "Stopped the local model server"
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={"instances": [1.0]}, timeout=5)
    # And it stays stopped (the reconciler restarts crashes, not this): the serve says why
    code, envelope = jupyter.call("GET", "/api/v1/serve/simple/1")
    assert envelope["result"]["state"] == "FAILED", envelope
    assert "stop-server" in envelope["result"]["reason"]
    # And POSTing the serve again starts the model server on the same url
    code, envelope = jupyter.call("POST", "/api/v1/serve", SERVE_SIMPLE, wait=60)
    assert envelope["result"]["state"] == "AVAILABLE" and envelope["result"]["url"] == url
    assert requests.post(url, json={"instances": [1.0]}).json() == {"predictions": [2.5]}

    # And a second start with --demo does not register it again
    jupyter.stop()
    jupyter.start("--demo")
    code, envelope = jupyter.call("GET", "/api/v1/model-version/simple")
    assert [v["version"] for v in envelope["result"]] == [1]


def test_register_command_adds_the_next_version(
    jupyter: JupyterProcess, half_plus_two: Path, tmp_path: Path
) -> None:
    first = jupyter.command("register", str(half_plus_two), "--name", "mine")
    second = jupyter.command("register", str(half_plus_two), "--name=mine", "--description=v2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Registered mine version 1 at ")
    assert second.stdout.startswith("Registered mine version 2 at ")

    bad = jupyter.command("register", str(tmp_path), "--name", "mine")
    assert bad.returncode == 2
    assert "is not a SavedModel folder: it has no saved_model.pb" in bad.stderr
    usage = jupyter.command("register", str(half_plus_two))
    assert usage.returncode == 2 and "usage: jupyter modelserve register" in usage.stderr

    # The server sees what the command registered: both read the same registry
    jupyter.start()
    code, envelope = jupyter.call("GET", "/api/v1/model-version/mine/2")
    assert code == 200 and envelope["result"]["description"] == "v2"


def test_extension_is_enabled_on_install() -> None:
    # When Jupyter lists its server extensions
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter_server", "extension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # drop colours

    # Then ours is enabled and loads, reporting the version the package says it is
    assert re.search(r"jupyter_modelserve\s+enabled", output), output
    assert f"jupyter_modelserve {__version__} OK" in output, output
    # And that is the version pip installed (the build reads it from the same file)
    assert importlib.metadata.version("jupyter_modelserve") == __version__
