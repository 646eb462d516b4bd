"""Start a peer server for one model and time it from process start to its first right answer.

MLflow: the SavedModel wrapped as a pyfunc (peers/mlflow_model.py, saved once per model with
the mlflow venv), served by `mlflow models serve --env-manager local --workers 1`, predicts at
`/invocations`. KServe: peers/kserve_model.py, one `kserve.ModelServer` per model, predicts at
`/v1/models/<name>:predict`. Both get TF Serving's `{"instances": ...}` body.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from benchmarks.models import Payload
from benchmarks.peers.install import ensure
from tests.servers import free_port

HERE = Path(__file__).parent

_SAVE_PYFUNC = """
import sys, mlflow
mlflow.pyfunc.save_model(
    sys.argv[1], python_model=sys.argv[2], artifacts={"saved_model": sys.argv[3]},
    pip_requirements=[],
)
"""


def mlflow_model(saved_model: Path, into: Path) -> Path:
    """The pyfunc model folder wrapping `saved_model` (written once)."""
    if not (into / "MLmodel").exists():
        python = ensure("mlflow")
        script = str(HERE / "mlflow_model.py")
        command = [str(python), "-c", _SAVE_PYFUNC, str(into), script, str(saved_model)]
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    return into


@dataclass
class PeerServer:
    peer: str  # "mlflow" or "kserve"
    model: str
    saved_model: Path
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    start_to_ready_s: float = field(default=0.0)

    @property
    def predict_url(self) -> str:
        if self.peer == "mlflow":
            return f"http://127.0.0.1:{self.port}/invocations"
        return f"http://127.0.0.1:{self.port}/v1/models/{self.model}:predict"

    def _command(self) -> list[str]:
        python = ensure(self.peer)
        if self.peer == "mlflow":
            folder = mlflow_model(self.saved_model, self.workdir / f"mlflow-{self.model}")
            mlflow = str(Path(python).parent / "mlflow")
            return [mlflow, "models", "serve", "-m", str(folder), "--env-manager", "local",
                    "-h", "127.0.0.1", "-p", str(self.port), "--workers", "1"]  # fmt: skip
        script = str(HERE / "kserve_model.py")
        return [str(python), script, self.model, str(self.saved_model), str(self.port)]

    def start(self, probe: Payload, deadline_s: float = 300) -> float:
        """Start the process; seconds from its start to its first correct prediction."""
        self.port = free_port()
        command = self._command()  # builds the venv/pyfunc first: not part of the timing
        log = open(self.workdir / f"{self.peer}-{self.model}-{self.port}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        # As an activated venv: `mlflow models serve` runs `uvicorn` from PATH.
        bin_dir = str(Path(ensure(self.peer)).parent)
        env.update(VIRTUAL_ENV=str(Path(bin_dir).parent), PATH=f"{bin_dir}:{env['PATH']}")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        session = requests.Session()
        while time.perf_counter() - started < deadline_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.peer} exited: see {log.name}")
            try:
                answer = session.post(self.predict_url, data=probe.body, timeout=10,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
                if answer.status_code == 200 and probe.check(answer.content):
                    self.start_to_ready_s = time.perf_counter() - started
                    return self.start_to_ready_s
            except requests.ConnectionError:
                pass
            time.sleep(0.01)  # polling resolution of the measurement, not synchronisation
        raise RuntimeError(f"{self.peer} {self.model}: no prediction within {deadline_s} s")

    def rss_bytes(self) -> int:
        """RSS of the server process and its children (uvicorn/gunicorn workers)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: workers end too
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
