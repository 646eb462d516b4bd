"""The %serve magic on a real IPython InteractiveShell, with real TensorFlow behind it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_modelserve import api
from jupyter_modelserve.errors import BackendUnavailable
from jupyter_modelserve.magics import Logs


@pytest.fixture
def shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, half_plus_two: Path
) -> Iterator[InteractiveShell]:
    """A shell whose %serve talks to a registry and model server in tmp folders."""
    for kind in ("data", "config", "runtime"):
        monkeypatch.setenv(f"JUPYTER_{kind.upper()}_DIR", str(tmp_path / kind))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"LocalBackend": {"rest_api_port": 0}})
    )
    monkeypatch.setattr(api, "_service", None)
    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "jupyter_modelserve")
    ipython.user_ns["model_dir"] = str(half_plus_two)
    yield ipython
    service = api._service
    if service is not None:
        service.backend.stop_server()  # type: ignore[attr-defined]
        service.close()


def serve(shell: InteractiveShell, line: str) -> Any:
    return shell.run_line_magic("serve", line)


def test_register_serve_predict_logs_list_and_delete(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a SavedModel folder registered with the magic
    version = serve(shell, "register $model_dir --name simple --description 'half plus two'")
    assert (version.name, version.version, version.description) == ("simple", 1, "half plus two")

    # When it is served
    served = serve(shell, "simple 1")

    # Then it returns the Serve, AVAILABLE, after a progress line
    assert isinstance(served, api.Serve) and served.state == "AVAILABLE"
    assert served.url.endswith("/v1/models/simple/versions/1:predict")
    assert "Serving simple version 1: AVAILABLE" in capsys.readouterr().out
    assert "AVAILABLE" in served._repr_html_() and served.url in served._repr_html_()

    # And every other form works on it
    assert serve(shell, "predict simple 1 [1.0, 2.0]") == [2.5, 3.0]
    # JSON passes untouched: negative numbers, quotes, named inputs
    assert serve(shell, "predict simple 1 [-2.0, 4.0]") == [1.0, 4.0]
    assert serve(shell, 'predict simple 1 [{"x": 1.0}]') == [2.5]
    shell.user_ns["x"] = np.array([5.0, 0.0], dtype="float32")
    assert serve(shell, "predict simple 1 x") == [4.5, 2.0]
    assert served.predict(np.array([1.0])) == [2.5]
    assert [s.url for s in serve(shell, "list")] == [served.url]
    assert serve(shell, "status simple 1").state == "AVAILABLE"
    logs = serve(shell, "logs simple 1 --tail 5")
    assert isinstance(logs, Logs) and 0 < len(logs) <= 5
    assert any("{name: simple version: 1}" in line for line in logs)

    # When it is deleted, it is gone
    assert serve(shell, "delete simple 1") is None
    assert "Stopped serving simple version 1" in capsys.readouterr().out
    assert serve(shell, "list") == []


def test_register_a_keras_model_variable(shell: InteractiveShell) -> None:
    import keras

    shell.user_ns["model"] = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    version = serve(shell, "register model --name tiny")
    assert (version.name, version.version) == ("tiny", 1)
    assert (Path(version.source) / "saved_model.pb").is_file()


def test_no_wait_returns_before_the_serve_is_available(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registered version and no model server yet (starting one imports TensorFlow,
    # which takes seconds)
    serve(shell, "register $model_dir --name simple")
    capsys.readouterr()

    # When it is served with --no-wait
    served = serve(shell, "simple 1 --no-wait")

    # Then the magic handed back the accepted serve without waiting: still on its way, and no
    # progress shown (a magic that ignored --no-wait returns it AVAILABLE, after progress)
    assert isinstance(served, api.Serve) and served.state in ("PENDING", "LOADING")
    out = capsys.readouterr().out
    assert "Serving simple version 1" not in out, out
    # And the serve goes on by itself: a wait afterwards sees it AVAILABLE
    assert served.wait(60).state == "AVAILABLE"


def test_a_wait_that_runs_out_says_the_same_from_the_magic_and_from_serve_wait(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registered version and no model server yet
    serve(shell, "register $model_dir --name simple")
    capsys.readouterr()
    still = r"model 'simple' version 1 is still (PENDING|LOADING) after 0 s \(.+\)"

    # When the magic waits no time at all
    served = serve(shell, "simple 1 --timeout 0")

    # Then it prints one line saying where the serve stands, and hands the serve back
    err = capsys.readouterr().err
    assert re.fullmatch(f"%serve: {still}\n", err), err
    assert isinstance(served, api.Serve) and served.state in ("PENDING", "LOADING")
    # And Serve.wait running out says the same thing, as its error
    with pytest.raises(BackendUnavailable) as raised:
        served.wait(0)
    assert re.fullmatch(still, str(raised.value)), raised.value
    # And a longer wait still reaches AVAILABLE
    assert served.wait(60).state == "AVAILABLE"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "say what to serve: %serve NAME VERSION"),
        ("nosuch 1", "registered model 'nosuch' does not exist"),
        ("simple 2", "model 'simple' has no version 2"),
        ("simple abc", "VERSION: must be a positive integer"),
        ("simple", "usage: %serve NAME VERSION"),
        ("delete simple 1", "model 'simple' version 1 is not served"),
        ("status simple", "usage: %serve status NAME VERSION"),
        ("register $model_dir", "--name: say which model this is a version of"),
        ("register /nowhere --name x", "'/nowhere' is not a folder"),
        ("predict simple 1 {nope", "DATA: neither a variable nor JSON"),
        ("simple 1 --bogus", "unrecognized arguments: --bogus"),
        ("list extra", "usage: %serve list"),
    ],
)
def test_user_errors_print_one_line_and_return_nothing(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    serve(shell, "register $model_dir --name simple")
    capsys.readouterr()
    assert serve(shell, line) is None
    err = capsys.readouterr().err
    assert err.startswith("%serve: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_failed_serve_shows_its_reason(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registered version whose variables went missing after registration
    version = serve(shell, "register $model_dir --name simple")
    shutil.rmtree(Path(version.source) / "variables")
    capsys.readouterr()

    # When the magic serves it and waits
    assert serve(shell, "simple 1 --timeout 60") is None

    # Then the progress line ends FAILED, and one error line gives the serve's reason
    captured = capsys.readouterr()
    assert captured.out.endswith("Serving simple version 1: FAILED\n"), captured.out
    reason = api.get("simple", 1).reason
    assert reason
    assert captured.err == f"%serve: model 'simple' version 1 FAILED: {reason}\n"


def test_serve_help_documents_every_form_and_option(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the loaded extension; When a user asks for help as the error lines suggest
    shell.run_cell("%serve?")

    # Then the help shown lists every form of the magic and every option it takes
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # IPython colours it
    for form in (
        "%serve NAME VERSION [--no-wait] [--timeout S]",
        "%serve delete NAME VERSION",
        "%serve list",
        "%serve status NAME VERSION",
        "%serve logs NAME VERSION",
        "%serve register SOURCE --name NAME",
        "%serve predict NAME VERSION DATA",
    ):
        assert form in shown, form
    for option in ("--no-wait", "--timeout", "--name", "--description", "--tail"):
        assert f"  {option} " in shown, option
