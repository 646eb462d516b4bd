"""One service in every process: a real kernel and a real Jupyter server see the same serves."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from .servers import JupyterProcess, kill_model_server


class Kernel:
    """A real ipykernel (jupyter_client) whose cells' output comes back as text."""

    def __init__(self, env: dict[str, str]) -> None:
        # "python3" is ipykernel's own spec: it runs sys.executable, this very venv.
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120, status: str = "ok") -> str:
        """What `code` printed (and an error's traceback lines); its reply must be `status`."""
        output: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                output.append(content["text"])
            elif message["msg_type"] == "error":
                output.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=collect)
        text = "".join(output)
        assert reply["content"]["status"] == status, text
        return text

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def jupyter_and_kernel(tmp_path: Path) -> Iterator[tuple[JupyterProcess, Kernel]]:
    jupyter = JupyterProcess(tmp_path, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    # The kernel runs this very Python, with the server's Jupyter folders: same config files.
    env = {**jupyter.env, "PYTHONPATH": str(Path(__file__).parents[1])}
    kernel = Kernel(env)
    try:
        yield jupyter, kernel
    finally:
        kernel.stop()
        jupyter.stop()
        kill_model_server(jupyter.env["JUPYTER_DATA_DIR"])


def test_a_kernel_serve_is_listed_by_rest_and_a_rest_delete_reaches_the_kernel(
    jupyter_and_kernel: tuple[JupyterProcess, Kernel], half_plus_two: Path
) -> None:
    jupyter, kernel = jupyter_and_kernel
    # The kernel runs the venv's Python, as a notebook of this environment would.
    assert kernel.run("import sys; print(sys.executable)").strip() == sys.executable

    # Given a serve created in a kernel with %serve
    kernel.run("%load_ext jupyter_modelserve")
    kernel.run(f"v = %serve register {half_plus_two} --name simple")
    out = kernel.run("s = %serve simple 1\nprint(s.state, s.url)")
    state, url = out.strip().splitlines()[-1].split()
    assert state == "AVAILABLE"

    # Then the Jupyter server's REST API lists it at once, with the same url
    jupyter.start()
    code, envelope = jupyter.call("GET", "/api/v1/serve")
    assert code == 200
    assert [(s["modelName"], s["state"], s["url"]) for s in envelope["result"]] == [
        ("simple", "AVAILABLE", url)
    ]

    # When it is deleted over REST
    code, _ = jupyter.call("DELETE", "/api/v1/serve", {"modelName": "simple", "modelVersion": 1})
    assert code == 200

    # Then the kernel sees it gone
    assert kernel.run("listed = %serve list\nprint(len(listed))").strip() == "0"
    # And the magic fails its cell with one line, the API raises NotFound
    shown = kernel.run("%serve status simple 1", status="error")
    assert shown == "%serve: model 'simple' version 1 is not served"
    err = kernel.run(
        "from jupyter_modelserve import api\n"
        "try:\n    api.get('simple', 1)\nexcept Exception as e:\n    print(type(e).__name__, e)"
    )
    assert err.strip() == "NotFound model 'simple' version 1 is not served"


def test_a_serve_outlives_a_kernel_restart(
    jupyter_and_kernel: tuple[JupyterProcess, Kernel], half_plus_two: Path
) -> None:
    _, kernel = jupyter_and_kernel
    kernel.run("%load_ext jupyter_modelserve")
    kernel.run(f"%serve register {half_plus_two} --name simple")
    kernel.run("s = %serve simple 1")
    kernel.manager.restart_kernel(now=True)
    kernel.client.wait_for_ready(timeout=60)
    kernel.run("%load_ext jupyter_modelserve")
    out = kernel.run("s = %serve status simple 1\nprint(s.state, s.predict([1.0]))")
    assert out.strip().splitlines()[-1] == "AVAILABLE [2.5]"
