"""The `jupyter modelserve` command: --demo, register, stop-server, on real processes."""

from __future__ import annotations

import importlib.metadata
import json
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
    assert usage.returncode == 2 and "--name: say which model" in usage.stderr

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


def test_the_shell_has_the_magics_forms(
    jupyter: JupyterProcess, half_plus_two: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a model registered from a path relative to the shell's folder
    monkeypatch.chdir(half_plus_two.parent)
    registered = jupyter.command("register", half_plus_two.name, "--name", "simple")
    assert registered.returncode == 0, registered.stderr

    # When it is served from the shell
    served = jupyter.command("serve", "simple", "1", "--timeout", "120")

    # Then it says AVAILABLE, with the signature and a curl line that predicts as it is
    assert served.returncode == 0, served.stderr
    assert "state=AVAILABLE" in served.stdout and "input x: float (?)" in served.stdout
    curl = next(line for line in served.stdout.splitlines() if "try it: " in line)
    command = curl.split("try it: ", 1)[1] + " -s"
    answer = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert json.loads(answer.stdout) == {"predictions": [2.0]}
    # And list, status and logs show it; status counts the request just made
    listed = jupyter.command("list")
    assert listed.stdout.splitlines()[0].split() == ["model", "version", "state", "url", "reason"]
    assert re.match(r"simple\s+1\s+AVAILABLE\s+http://", listed.stdout.splitlines()[1])
    assert "token" not in listed.stdout
    status = jupyter.command("status", "simple", "1")
    assert "traffic: 1 requests, 0 errors" in status.stdout, status.stdout
    logs = jupyter.command("logs", "simple", "1", "--tail", "3")
    assert logs.returncode == 0 and 0 < len(logs.stdout.splitlines()) <= 3

    # When it is deleted, it is gone, and the model server can be stopped once
    deleted = jupyter.command("delete", "simple", "1")
    assert deleted.stdout.strip() == "Stopped serving simple version 1"
    assert jupyter.command("list").stdout.strip() == "(no serves)"
    assert jupyter.command("stop-server").stdout.strip() == "Stopped the local model server"
    again = jupyter.command("stop-server")
    assert again.returncode == 0 and again.stdout.strip() == "No local model server was running"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("serve", "simple"), 2, "usage: jupyter modelserve serve NAME VERSION"),
        (("serve", "nosuch", "1"), 1, "error: registered model 'nosuch' does not exist"),
        (("status", "simple", "x"), 2, "error: VERSION: must be a positive integer"),
        (("delete", "nosuch", "1"), 1, "error: "),
        (("logs", "bad name!", "1"), 2, "error: NAME: "),
    ],
)
def test_shell_errors_are_one_line_with_a_status_scripts_can_use(
    jupyter: JupyterProcess, args: tuple[str, ...], status: int, message: str
) -> None:
    result = jupyter.command(*args)
    assert result.returncode == status, result
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_help_names_the_command_and_its_subcommands(jupyter: JupyterProcess) -> None:
    shown = jupyter.command("--help").stdout
    assert "jupyter_modelserve cmd" not in shown
    assert "jupyter modelserve cmd" in shown
    for subcommand in ("register", "serve", "delete", "list", "status", "logs", "stop-server"):
        assert re.search(rf"^{subcommand}\b", shown, re.MULTILINE), subcommand
