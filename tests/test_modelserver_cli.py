"""`python -m jupyter_modelserve.modelserver` as the backend runs it: a real child process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jupyter_modelserve.modelserver.flags import FlagError, parse_flags, request_policy
from jupyter_modelserve.tfserving.model_config import render_model_config_list

from .grpc_helpers import GRPC_LINE
from .modelserver_fixtures import PORT_LINE, TIMEOUT, ServerProcess, config, state_of, wait_for
from .tf_models import build_half_plus_two


@pytest.fixture(scope="module")
def model_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_half_plus_two(tmp_path_factory.mktemp("cli-src") / "1")


@pytest.fixture
def start() -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def __init__(self, *flags: str) -> None:
            super().__init__(*flags)
            started.append(self)

    yield Tracked
    for server in started:  # every child is stopped, whatever the test did
        server.stop()


def predict(url: str, name: str) -> requests.Response:
    body = {"instances": [1.0, 2.0, 5.0]}
    return requests.post(f"{url}/v1/models/{name}:predict", json=body, timeout=TIMEOUT)


def test_cli_serves_reloads_on_sighup_and_exits_cleanly(
    tmp_path: Path, model_v1: Path, start: type[ServerProcess]
) -> None:
    for name in ("a", "b"):
        shutil.copytree(model_v1, tmp_path / name / "1")
    a, b = config("a", tmp_path / "a"), config("b", tmp_path / "b")
    config_file = tmp_path / "models.config"
    config_file.write_text(render_model_config_list([a]))

    server = start(
        "--rest_api_port=0",
        f"--model_config_file={config_file}",
        "--port=0",
        "--file_system_poll_wait_seconds=0",
    )
    url = f"http://127.0.0.1:{server.wait_for_line(PORT_LINE).group(1)}"
    server.wait_for_line(GRPC_LINE)
    wait_for(lambda: state_of(url, "a", 1) == "AVAILABLE", what="a AVAILABLE")
    assert predict(url, "a").json() == {"predictions": [2.5, 3.0, 4.5]}

    config_file.write_text(render_model_config_list([a, b]))
    os.kill(server.process.pid, signal.SIGHUP)
    wait_for(lambda: state_of(url, "b", 1) == "AVAILABLE", what="b AVAILABLE after SIGHUP")
    assert predict(url, "b").status_code == 200

    config_file.write_text(render_model_config_list([b]))
    os.kill(server.process.pid, signal.SIGHUP)
    wait_for(lambda: state_of(url, "a", 1) == "END", what="a unloaded after SIGHUP")
    assert predict(url, "a").status_code == 404
    assert predict(url, "b").status_code == 200

    assert server.count("Successfully loaded servable version {name: a version: 1}") == 1
    assert server.count("Successfully loaded servable version {name: b version: 1}") == 1
    assert server.count("Done unloading servable version {name: a version: 1}") == 1
    assert server.stop() == 0


def test_cli_single_model_flags_and_version_polling(
    tmp_path: Path, model_v1: Path, start: type[ServerProcess]
) -> None:
    shutil.copytree(model_v1, tmp_path / "solo" / "1")
    server = start(
        "--rest_api_port",
        "0",
        "--model_name",
        "solo",
        f"--model_base_path={tmp_path / 'solo'}",
        "--file_system_poll_wait_seconds=1",
    )
    url = f"http://127.0.0.1:{server.wait_for_line(PORT_LINE).group(1)}"
    wait_for(lambda: state_of(url, "solo", 1) == "AVAILABLE", what="solo AVAILABLE")

    shutil.copytree(model_v1, tmp_path / "solo" / "2")  # found by the next filesystem poll
    wait_for(lambda: state_of(url, "solo", 2) == "AVAILABLE", what="version 2 picked up")
    wait_for(lambda: state_of(url, "solo", 1) == "END", what="version 1 unloaded")
    server.process.send_signal(signal.SIGINT)
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rest_api_port=0", "--model_base_path=/m", "--colour=red"], "unknown command line"),
        (["--rest_api_port=0"], "--model_config_file or --model_base_path"),
        (["--rest_api_port=zero", "--model_base_path=/m"], "expects a number"),
        (
            ["--model_base_path=/m", "--rest_api_allowed_hosts=ok.example,http://x.example"],
            "--rest_api_allowed_hosts: 'http://x.example' is not a host name",
        ),
        (["--model_base_path=/m", "--rest_api_allowed_hosts=a.example:80"], "(no ports)"),
        (["--model_base_path=/m", "--rest_api_max_body_bytes=0"], "must be at least 1"),
    ],
)
def test_cli_bad_flags_exit_2(flags: list[str], message: str) -> None:
    command = [sys.executable, "-m", "jupyter_modelserve.modelserver", *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_bad_config_file_exits_1(tmp_path: Path) -> None:
    config_file = tmp_path / "bad.config"
    config_file.write_text("model_config_list { config { name: 'x' } }")
    command = [sys.executable, "-m", "jupyter_modelserve.modelserver"]
    command += ["--rest_api_port=0", f"--model_config_file={config_file}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 1
    assert "Expected model x to have an absolute path or URI" in done.stderr


def test_parse_flags_accepts_both_spellings() -> None:
    flags = parse_flags(
        [
            "--rest_api_port",
            "8501",
            "-model_config_file=/c",
            "--model_config_file_poll_wait_seconds=5",
        ]
    )
    assert (flags.rest_api_port, flags.model_config_file) == (8501, "/c")
    assert flags.model_config_file_poll_wait_seconds == 5
    assert flags.rest_api_host == "127.0.0.1"
    with pytest.raises(FlagError, match="missing its value"):
        parse_flags(["--model_base_path=/m", "--rest_api_port"])
    with pytest.raises(FlagError, match="must not be negative"):
        parse_flags(["--model_base_path=/m", "--rest_api_port=-1"])


def test_allowed_hosts_and_body_limit_flags() -> None:
    # Given the guard flags, with spaces, brackets, case and a wildcard
    flags = parse_flags(
        [
            "--model_base_path=/m",
            "--rest_api_allowed_hosts= Models.Example ,*.corp.example,[::2],,10.0.0.7",
            "--rest_api_max_body_bytes=1000",
        ]
    )
    # When the server builds its request policy from them
    policy = request_policy(flags)
    # Then loopback names come first, the listed ones follow, normalised, and the cap is kept
    assert policy.allowed_hosts == (
        "127.0.0.1",
        "localhost",
        "::1",
        "models.example",
        "*.corp.example",
        "::2",
        "10.0.0.7",
    )
    assert policy.max_body_bytes == 1000
    # And a server bound to one specific address answers to that address too, not to 0.0.0.0
    bound = request_policy(parse_flags(["--model_base_path=/m", "--rest_api_host=10.1.2.3"]))
    assert "10.1.2.3" in bound.allowed_hosts and bound.allows("10.1.2.3")
    anywhere = request_policy(parse_flags(["--model_base_path=/m", "--rest_api_host=0.0.0.0"]))
    assert anywhere.allowed_hosts == ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize(
    ("argv", "enabled"),
    [
        (["--enable_batching"], True),
        (["--enable_batching=true"], True),
        (["--enable_batching=0"], False),
        ([], False),
    ],
)
def test_enable_batching_is_a_gflags_bool(argv: list[str], enabled: bool) -> None:
    # Given TF Serving's spellings of the flag (a bare one never takes the next argument)
    flags = parse_flags([*argv, "--model_base_path=/m"])
    # Then batching is on or off as gflags would read it, and the next flag still parsed
    assert flags.enable_batching is enabled
    assert flags.model_base_path == "/m"


def test_a_bad_enable_batching_value_exits_2() -> None:
    command = [sys.executable, "-m", "jupyter_modelserve.modelserver"]
    command += ["--model_base_path=/m", "--enable_batching=maybe"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 2
    assert "flag '--enable_batching' is true or false, got 'maybe'" in done.stderr


def test_unreadable_batching_parameters_exit_1_naming_the_file(tmp_path: Path) -> None:
    # Given batching parameters that are not BatchingParameters text
    parameters = tmp_path / "batching.config"
    parameters.write_text("max_batch_size { value: -3 } nonsense")
    command = [sys.executable, "-m", "jupyter_modelserve.modelserver", "--rest_api_port=0"]
    command += ["--model_base_path=/m", "--enable_batching"]
    command += [f"--batching_parameters_file={parameters}"]
    # When the model server starts with batching on
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    # Then it refuses to start, naming the file
    assert done.returncode == 1
    assert f"Cannot read the batching parameters {parameters}" in done.stderr
