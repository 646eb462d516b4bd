"""The example notebooks run top to bottom on a real kernel, and are committed without outputs.

Each notebook asserts its own answers (served predictions equal `model.predict`), so a wrong
answer is a failing cell, and nbclient's CellExecutionError carries that cell's traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from .servers import TOKEN, JupyterProcess

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXECUTED = ("quickstart.ipynb", "rest_api.ipynb")
COMMITTED = (*EXECUTED, "kubernetes.ipynb")
JUPYTER_FOLDERS = ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JupyterProcess]:
    """Isolated Jupyter folders, shared by the notebook's kernel and (when started) a server.

    The JupyterProcess writes `{"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}}` as the
    config file, so the model server a kernel or the server starts picks free ports. Afterwards
    it stops the Jupyter server (if started) and the model server, whichever process started
    it.
    """
    # The kernel must be this venv's Python: ipykernel writes a "python3" spec with
    # sys.executable into the data folder, which then wins over the venv's own spec (its
    # "python" resolves to whichever Python launches the kernel).
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    jupyter = JupyterProcess(
        tmp_path, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}}
    )  # copies the env
    for name in (*JUPYTER_FOLDERS, "JUPYTER_PLATFORM_DIRS"):
        monkeypatch.setenv(name, jupyter.env[name])
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the kernel's temp files stay here
    write_kernel_spec(Path(jupyter.env["JUPYTER_DATA_DIR"]) / "kernels" / "python3")
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    try:
        yield jupyter
    finally:
        jupyter.stop()
        server = model_server_pid(jupyter)
        jupyter.stop_model_server()
        if server is not None:
            wait_until_gone(server)


def model_server_pid(jupyter: JupyterProcess) -> int | None:
    info = Path(jupyter.env["JUPYTER_DATA_DIR"]) / "modelserve" / "server" / "server.json"
    return int(json.loads(info.read_text())["pid"]) if info.is_file() else None


def running(pid: int) -> bool:
    """Whether a process runs; a zombie (exited, not yet reaped by init) does not."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.joinpath("self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:  # no /proc (macOS)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"the model server (pid {pid}) still runs after stop-server")
        time.sleep(0.05)


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    """Run a notebook in memory (the committed file is untouched); a failing cell raises."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return notebook


def magic_errors(notebook: nbformat.NotebookNode) -> list[str]:
    """What `%serve` printed as errors: it prints them on one line instead of raising."""
    return [
        output["text"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr" and "%serve:" in output.text
    ]


def text_of(outputs: list[nbformat.NotebookNode]) -> str:
    """Everything the outputs show as text: streams and text/plain results."""
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)


def outputs_of(notebook: nbformat.NotebookNode, source: str) -> list[nbformat.NotebookNode]:
    """The outputs of the one code cell whose source contains `source`."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    return list(cell.outputs)


def test_the_quickstart_notebook_trains_serves_predicts_and_stops(
    folders: JupyterProcess, tmp_path: Path
) -> None:
    # Given isolated Jupyter folders whose config makes the model server pick a free port
    assert os.environ["JUPYTER_CONFIG_DIR"] == str(tmp_path / "config")

    # When the quickstart runs top to bottom on a real kernel (its cells assert the answers)
    notebook = execute("quickstart.ipynb", tmp_path)

    # Then no %serve call failed, and the panel rendered as a widget
    assert magic_errors(notebook) == []
    panel = outputs_of(notebook, "panel = ServePanel()")
    assert any(WIDGET_VIEW in output.get("data", {}) for output in panel), panel
    # And the kernel used the isolated registry: the model is there as version 1, and the
    # .keras file as version 2
    assert (tmp_path / "data" / "modelserve" / "artifacts" / "quickstart" / "1").is_dir()
    assert (tmp_path / "data" / "modelserve" / "artifacts" / "quickstart" / "2").is_dir()
    # And serving showed the signature and a request of the model's shape (4 zeros a row)
    served = text_of(outputs_of(notebook, "s = %serve quickstart"))
    assert "signature 'serving_default':" in served and "(?, 4)" in served, served
    assert '{"instances": [[0.0, 0.0, 0.0, 0.0]]}' in served, served
    # And the status counts the four predicts made above it
    status = text_of(outputs_of(notebook, "%serve status quickstart"))
    assert "traffic: 4 requests, 0 errors, p50" in status, status
    # And no TensorFlow export chatter reached a cell
    everything = text_of([o for c in notebook.cells if c.cell_type == "code" for o in c.outputs])
    assert "Assets written to" not in everything


def test_a_failing_serve_stops_run_all_with_one_line(
    folders: JupyterProcess, tmp_path: Path
) -> None:
    # Given a notebook whose second cell serves a version that does not exist
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_modelserve"),
        nbformat.v4.new_code_cell("s = %serve nosuch 99"),
        nbformat.v4.new_code_cell("s.predict([1.0])"),
    ]
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )

    # When it runs top to bottom, Run All stops at that cell
    with pytest.raises(CellExecutionError) as raised:
        client.execute()

    # Then the cell shows the one line that says what is wrong, and no traceback noise
    (error,) = [o for o in notebook.cells[1].outputs if o.output_type == "error"]
    assert error.ename == "NotFound"
    assert error.traceback == ["%serve: registered model 'nosuch' does not exist"]
    assert "registered model 'nosuch' does not exist" in str(raised.value)
    # And the next cell never ran
    assert notebook.cells[2].outputs == [] and notebook.cells[2].execution_count is None


def test_the_rest_api_notebook_runs_against_a_real_jupyter_server(
    folders: JupyterProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a real `jupyter modelserve` in the same folders, its url and token in the env
    folders.start()
    monkeypatch.setenv("MODELSERVE_URL", folders.url)
    monkeypatch.setenv("MODELSERVE_TOKEN", TOKEN)

    # When the REST API notebook runs top to bottom on a real kernel (its cells assert)
    execute("rest_api.ipynb", tmp_path)

    # Then it cleaned up after itself: nothing served, nothing registered, no export left
    status, envelope = folders.call("GET", "/api/v1/serve")
    assert (status, envelope["result"]) == (200, [])
    status, envelope = folders.call("GET", "/api/v1/registered-model")
    assert (status, envelope["result"]) == (200, [])
    assert list((tmp_path / "tmp").glob("modelserve-*")) == []


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_notebooks_carry_no_outputs(name: str) -> None:
    # Given a committed example notebook
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)

    # Then it is valid nbformat 4, for the python3 kernel, and every code cell is clean
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    dirty = [
        index
        for index, cell in enumerate(code)
        if cell.outputs != [] or cell.execution_count is not None
    ]
    assert dirty == [], f"{name}: code cells {dirty} have outputs or an execution count"


@pytest.mark.parametrize("name", COMMITTED)
def test_every_code_cell_is_valid_ipython(name: str) -> None:
    # Given a committed notebook, kubernetes.ipynb too (CI has no cluster to run it on)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)

    # When IPython turns each code cell's magics and shell escapes into Python
    transform = TransformerManager().transform_cell

    # Then every cell compiles
    for index, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        compile(transform(cell.source), f"{name}: code cell {index}", "exec")
