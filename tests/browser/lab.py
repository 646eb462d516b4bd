"""A real JupyterLab process with jupyter_modelserve on the local backend, in its own folders.

Its Jupyter folders (config, data, runtime) and its root_dir live under one tmp folder, so the
registry, the model server and the user settings are this test run's alone. The kernels it
starts inherit its environment and so share its registry and model server.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from ..servers import free_port, kill_model_server

# JupyterLab user settings: no news popup over the screenshots, no update check.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class LabProcess:
    """`python -m jupyter lab` on a free port of 127.0.0.1, under `base_url`, with a token."""

    def __init__(self, root: Path, base_url: str = "/") -> None:
        self.root = root
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
        self.root_dir = root / "files"  # what the file browser shows
        self.data_dir = root / "data"
        self.config_dir = root / "config"
        # A fresh random token per server, as JupyterHub gives each single-user server. It is
        # in the config file (mode 0600), not on the command line where `ps` would show it, and
        # Jupyter prints a token it was given as "...".
        self._token = secrets.token_hex(24)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "jupyterlab.log"
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.config_dir),
            "JUPYTER_DATA_DIR": str(self.data_dir),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "0",
        }
        self.env.pop("JUPYTER_TOKEN", None)

    def __repr__(self) -> str:  # what a failing assertion prints: never the token
        return f"LabProcess(url={self.url!r}, root={str(self.root)!r})"

    @property
    def url(self) -> str:
        """The server's URL including base_url, ending in '/'."""
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def modelserve_dir(self) -> Path:
        return self.data_dir / "modelserve"

    @property
    def artifact_root(self) -> Path:
        """Where the registry copies registered versions, as <name>/<version>/ (settings.py)."""
        return self.modelserve_dir / "artifacts"

    def write_config(self) -> None:
        for folder in (self.root_dir, self.config_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
        config = {
            "ServerApp": {"jpserver_extensions": {"jupyter_modelserve": True}},
            "IdentityProvider": {"token": self._token},
            "LocalBackend": {"rest_api_port": 0, "grpc_port": 0},  # never fight over 8501
            "ModelServeApp": {"demo": True},  # registers `simple` 1 = half_plus_two
        }
        config_file = self.config_dir / "jupyter_server_config.json"
        config_file.touch(mode=0o600)
        config_file.write_text(json.dumps(config))
        # JupyterLab's user settings default to <config dir>/lab/user-settings.
        settings_dir = self.config_dir / "lab" / "user-settings"
        for name, values in USER_SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 120) -> None:
        self.write_config()
        self.port = free_port()
        command = [
            sys.executable, "-m", "jupyter", "lab",
            f"--port={self.port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}", f"--ServerApp.base_url={self.base_url}",
            "--allow-root", "--no-browser", "--LabApp.extension_manager=readonly",
        ]  # fmt: skip
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=output, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}: {self.log}")
            try:
                if self.call("GET", "api/v1/serve/ping")[0] == 200 and self._lab_answers():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"JupyterLab did not answer within {timeout} s: see {self.log}")

    def _lab_answers(self) -> bool:
        return self.session().get(self.url + "lab", timeout=30).status_code == 200

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self._token}"
        return session

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON) of a REST call, `path` relative to the base_url."""
        response = self.session().request(
            method,
            self.url + path.lstrip("/"),
            data=None if body is None else json.dumps(body),
            timeout=120,
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def login_secret(self) -> str:
        """The token, for the browser's login form only (it is never printed or logged)."""
        return self._token

    def log_mentions_token(self) -> bool:
        """Whether the server's own log (its kernels' output included) shows the token."""
        return self.log.is_file() and self._token in self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        """Stop JupyterLab, then the model server it started (it outlives its parent)."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            kill_model_server(self.data_dir)

    # -- REST helpers the tests use to set up and clean up -------------------------------------

    def serves(self) -> dict[tuple[str, int], dict[str, Any]]:
        code, envelope = self.call("GET", "api/v1/serve")
        assert code == 200, envelope
        return {(s["modelName"], s["modelVersion"]): s for s in envelope["result"]}

    def described(self, name: str, version: int) -> dict[str, Any]:
        """GET one serve: with its signature, example request and metrics."""
        code, envelope = self.call("GET", f"api/v1/serve/{name}/{version}")
        assert code == 200, envelope
        result: dict[str, Any] = envelope["result"]
        return result

    def stop_all_serves(self) -> None:
        """Teardown: stop whatever serves a test left, so the next test starts from none."""
        for name, version in self.serves():
            body = {"modelName": name, "modelVersion": version}
            code, envelope = self.call("DELETE", "api/v1/serve", body)
            assert code in (200, 404), envelope

    def register(self, name: str, source: Path) -> dict[str, Any]:
        code, envelope = self.call(
            "POST", "api/v1/model-version", {"name": name, "source": str(source)}
        )
        assert code == 200, envelope
        result: dict[str, Any] = envelope["result"]
        return result

    def put_notebook(self, path: str, sources: list[str]) -> None:
        """Create a notebook in root_dir through the contents API, one code cell per source."""
        import nbformat

        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in sources],
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
        )
        body = {"type": "notebook", "format": "json", "content": notebook}
        code, envelope = self.call("PUT", f"api/contents/{path}", body)
        assert code in (200, 201), envelope
