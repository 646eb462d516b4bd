"""The %serve magic on a real IPython InteractiveShell, with real TensorFlow behind it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_modelserve import api
from jupyter_modelserve.errors import BackendUnavailable, ModelServeError, NotFound
from jupyter_modelserve.magics import Logs


@pytest.fixture
def shell(local_api: Any, half_plus_two: Path) -> InteractiveShell:
    """A shell whose %serve talks to a registry and model server in tmp folders."""
    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "jupyter_modelserve")
    ipython.user_ns["model_dir"] = str(half_plus_two)
    return ipython


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
        ("predict simple 1 {nope", "DATA: neither a variable, JSON"),
        ("predict simple 1 nosuch_variable[:2]", "NameError: name 'nosuch_variable'"),
        ("simple 1 --bogus", "unrecognized arguments: --bogus"),
        ("list extra", "usage: %serve list"),
        ("simple 1 --timeout nan", "--timeout: must be from 0 to 3600 seconds, got nan"),
        ("stauts simple 1", "unknown subcommand 'stauts': did you mean status?"),
        ("lsit", "unknown subcommand 'lsit': did you mean list?"),
        ("delet simple", "unknown subcommand 'delet': did you mean delete?"),
    ],
)
def test_a_user_error_fails_the_cell_with_one_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    # Given a registered model, and no `s` yet
    serve(shell, "register $model_dir --name simple")
    shell.user_ns.pop("s", None)
    capsys.readouterr()

    # When a cell assigns the result of a wrong %serve
    result = shell.run_cell(f"s = %serve {line}")

    # Then the cell fails (Run All stops here), showing one line and no traceback
    assert result.error_in_exec is not None and "s" not in shell.user_ns
    assert isinstance(result.error_in_exec, ModelServeError)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert shown.strip().startswith("%serve: ") and message in shown, shown
    assert shown.strip().count("\n") == 0 and "Traceback" not in shown


def test_the_error_keeps_its_type_for_code_that_catches_it(shell: InteractiveShell) -> None:
    # When a %serve of a missing model is called from code
    with pytest.raises(NotFound) as raised:
        serve(shell, "nosuch 1")

    # Then it is the API's NotFound, with the message alone
    assert str(raised.value) == "registered model 'nosuch' does not exist"
    assert raised.value._render_traceback_() == [  # type: ignore[attr-defined]
        "%serve: registered model 'nosuch' does not exist"
    ]


def test_the_one_line_error_pickles_as_the_plain_error(shell: InteractiveShell) -> None:
    import pickle

    # Given the error a %serve raised (joblib and ipyparallel pickle exceptions)
    with pytest.raises(NotFound) as raised:
        serve(shell, "nosuch 1")

    # When it is pickled and read back, it is the API's own NotFound with its message
    again = pickle.loads(pickle.dumps(raised.value))
    assert type(again) is NotFound and str(again) == str(raised.value)


def test_a_model_called_like_a_subcommand_typo_is_still_served(shell: InteractiveShell) -> None:
    # Given a model whose name is one letter from a subcommand
    serve(shell, "register $model_dir --name lists")

    # When it is served with its version, it is a serve, not a typo
    assert serve(shell, "lists 1 --no-wait").name == "lists"


def test_predict_takes_a_python_expression_and_a_dataframe(shell: InteractiveShell) -> None:
    import pandas as pd

    # Given a served model and data in the notebook
    serve(shell, "register $model_dir --name simple")
    serve(shell, "simple 1")
    shell.user_ns["x"] = np.array([1.0, 2.0, 5.0], dtype="float32")
    shell.user_ns["frame"] = pd.DataFrame({"x": [1.0, 3.0]})

    # Then an expression, a DataFrame variable and an expression on it all predict
    assert serve(shell, "predict simple 1 x[:2]") == [2.5, 3.0]
    assert serve(shell, "predict simple 1 x * 2") == [3.0, 4.0, 7.0]
    assert serve(shell, "predict simple 1 frame") == [2.5, 3.5]
    assert serve(shell, "predict simple 1 frame.head(1)") == [2.5]


def test_a_failed_serve_is_returned_with_its_reason_and_logs(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registered version whose variables went missing after registration
    version = serve(shell, "register $model_dir --name simple")
    shutil.rmtree(Path(version.source) / "variables")
    capsys.readouterr()

    # When a cell serves it and waits
    result = shell.run_cell("s = %serve simple 1 --timeout 60")

    # Then the cell succeeds and hands the FAILED serve back, with its reason and logs
    assert result.error_in_exec is None
    served = shell.user_ns["s"]
    assert isinstance(served, api.Serve) and served.state == "FAILED" and served.reason
    assert served.logs()
    # And the progress line ends FAILED, and one line gives the reason
    captured = capsys.readouterr()
    assert captured.out.endswith("Serving simple version 1: FAILED\n"), captured.out
    assert captured.err == f"%serve: model 'simple' version 1 FAILED: {served.reason}\n"


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
