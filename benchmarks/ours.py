"""Our side of the benchmark: a real `jupyter modelserve` with the local model server.

Time to first prediction reuses benchmarks.post_to_predict (POST /api/v1/serve, then poll the
predict URL until the answer is right), cold (no model server running) and warm (the model
server running with another model loaded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil

from benchmarks.post_to_predict import first_prediction_after_post
from tests.servers import JupyterProcess, model_server_pid

SIMPLE = {"modelName": "simple", "modelVersion": 1}
KEEPWARM = {"modelName": "keepwarm", "modelVersion": 1}


class Ours:
    def __init__(
        self, root: Path, models: dict[str, Path], local: dict[str, Any] | None = None
    ) -> None:
        """`local`: more LocalBackend settings (a second instance takes free ports)."""
        self.root = root
        self.models = models
        settings = {"rest_api_port": 0, **(local or {})}
        self.jupyter = JupyterProcess(root / "jupyter", {"LocalBackend": settings})

    def start(self) -> None:
        self.jupyter.start()
        self.register("keepwarm", self.models["simple"])
        for name, path in self.models.items():
            self.register(name, path)

    def register(self, name: str, path: Path) -> None:
        code, body = self.jupyter.call(
            "POST", "/api/v1/model-version", {"name": name, "source": str(path)}
        )
        assert code == 200, body

    def stop(self) -> None:
        self.jupyter.stop()
        self.jupyter.stop_model_server()

    def delete(self, name: str) -> None:
        self.jupyter.call("DELETE", "/api/v1/serve", {"modelName": name, "modelVersion": 1})

    def serve(self, name: str) -> dict[str, Any]:
        """Serve `name` 1 and wait until AVAILABLE; the serve's result."""
        body = {"modelName": name, "modelVersion": 1}
        code, envelope = self.jupyter.call("POST", "/api/v1/serve", body, wait=120)
        assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
        return dict(envelope["result"])

    def first_prediction_cold(self) -> float:
        self.delete("simple")
        self.jupyter.stop_model_server()
        taken = first_prediction_after_post(self.jupyter, deadline_s=180)
        return taken

    def first_prediction_warm(self) -> float:
        self.delete("simple")
        self.serve("keepwarm")
        taken = first_prediction_after_post(self.jupyter, deadline_s=180)
        self.delete("keepwarm")
        return taken

    def model_server_pid(self) -> int | None:
        return model_server_pid(self._state_dir())

    def _state_dir(self) -> Path:
        return self.jupyter.root / "data" / "modelserve" / "server"

    def rss_bytes(self) -> dict[str, int]:
        """RSS of the Jupyter server and of the model server (0 when not running)."""
        assert self.jupyter.process is not None
        jupyter = psutil.Process(self.jupyter.process.pid).memory_info().rss
        pid = self.model_server_pid()
        model_server = psutil.Process(pid).memory_info().rss if pid else 0
        return {"jupyter": jupyter, "model_server": model_server}


def dump(value: Any) -> str:
    return json.dumps(value, indent=2)
