"""The local backend: one long-lived model server per state folder serves every local serve.

The server is TensorFlow Serving's `tensorflow_model_server` when it is on PATH, else the built-in
`python -m jupyter_modelserve.modelserver`; both read one `model_config_list` file written here.
The process is detached (its own session), so serves outlive a kernel or Jupyter server restart,
and a file lock keeps two processes (server, kernels, CLI) from starting two servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock
from traitlets import Bool, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import BackendUnavailable, Conflict, InvalidInput
from ..modelserver.config import ModelConfig, VersionPolicy, parse_model_config_list
from ..modelserver.config import render_model_config_list as render_config
from .base import Observation, Observed, ServeSpec
from .process import HOST, free_port, is_our_server, port_in_use, terminate

BUILTIN = "builtin"
# tensorflow_model_server re-reads its config at most once a second; the built-in server also
# reloads at once on SIGHUP.
CONFIG_POLL_SECONDS = 1


class LocalBackend(LoggingConfigurable):
    """Serves on this machine, on 127.0.0.1 only."""

    name = "local"
    restarts_lost_serves = True

    rest_api_port = Int(
        8501,
        config=True,
        help="REST port of the model server on 127.0.0.1; 0 picks a free port at start.",
    )
    server_command = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Command that starts the model server (TF Serving's flags are appended). Empty: "
        "the built-in server, or tensorflow_model_server when use_tensorflow_model_server is set.",
    )
    use_tensorflow_model_server = Bool(
        False,
        config=True,
        help="Run `tensorflow_model_server` when it is on PATH. Off by default: it has no flag "
        "to bind 127.0.0.1 and listens on every interface, unauthenticated.",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="Folder for the model server's config, log, pid file and lock. "
        "Default: `server/` under the modelserve data folder.",
    )
    status_timeout = Int(5, config=True, help="Seconds to wait for the model server's answer.")

    def __init__(self, data_dir: str | Path, artifact_root: str | Path = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dir = Path(self.state_dir or Path(data_dir) / "server")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "models.config"
        self.info_file = self.dir / "server.json"
        self.log_file = self.dir / "server.log"
        self._lock = FileLock(str(self.dir / "server.lock"), timeout=120)
        self._children: list[subprocess.Popen[bytes]] = []

    # -- Backend protocol --------------------------------------------------------------------

    def validate(self, spec: ServeSpec) -> None:
        if "://" in spec.source:
            raise InvalidInput(
                f"source: {spec.source!r} is remote; the local backend serves models stored on "
                "this machine only (set c.ModelServeApp.backend = 'kubernetes' for s3:// and "
                "gs:// sources)"
            )

    def url_for(self, spec: ServeSpec) -> str:
        return f"{self.endpoint(spec)}/v1/models/{spec.name}/versions/{spec.version}:predict"

    def endpoint(self, spec: ServeSpec) -> str:
        return self.base_url()

    def logs(self, spec: ServeSpec, tail: int) -> list[str]:
        # The server tags every line about a model with `{name: N version: V}` or `{name: N}`.
        tags = (f"{{name: {spec.name} version: {spec.version}}}", f"{{name: {spec.name}}}")
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return []
        lines = [line for line in text.splitlines() if any(tag in line for tag in tags)]
        return lines[-tail:] if tail else lines

    def apply(self, spec: ServeSpec) -> None:
        with self._lock:
            configs = self._read_config()
            updated = _with_version(configs, spec)
            changed = self._write_config(updated)
            info, started = self._ensure_running()
            if changed and not started:  # a server just started reads the file by itself
                self._signal_reload(info)

    def remove(self, spec: ServeSpec) -> None:
        with self._lock:
            updated = _without_version(self._read_config(), spec)
            if self._write_config(updated):
                info = self._running_info()
                if info is not None:
                    self._signal_reload(info)

    def status(self, spec: ServeSpec) -> Observation:
        info = self._running_info()
        if info is None:
            last = self._last_log_line()
            return Observation(
                Observed.ABSENT,
                "the model server is not running" + (f"; its log ends: {last}" if last else ""),
            )
        wanted = _serves(self._read_config(), spec)
        url = f"http://{HOST}:{info['port']}/v1/models/{spec.name}/versions/{spec.version}"
        try:
            with urllib.request.urlopen(url, timeout=self.status_timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the server has never heard of it (or forgot it)
                if not wanted:
                    return Observation(Observed.ABSENT)
                return Observation(Observed.STARTING, "waiting for the model server to load it")
            return Observation(Observed.STARTING, f"model server answered {exc.code}")
        except (OSError, ValueError):
            return Observation(Observed.STARTING, "the model server is starting")
        if not wanted:
            # Gone from the config is not gone from the server: absent once it says so.
            state = _version_state(body, spec)
            if state in (None, "END"):
                return Observation(Observed.ABSENT)
            return Observation(Observed.STARTING, f"the model server is unloading it ({state})")
        return _observation_from_status(body, spec)

    def sync(self, specs: Sequence[ServeSpec]) -> None:
        with self._lock:
            configs: list[ModelConfig] = []
            for spec in specs:
                try:
                    configs = _with_version(configs, spec)
                except Conflict as conflict:  # one bad serve must not stop all the others
                    self.log.warning("Not serving %s %s: %s", spec.name, spec.version, conflict)
            changed = self._write_config(configs)
            info, started = self._ensure_running() if configs else (self._running_info(), False)
            if changed and info is not None and not started:
                self._signal_reload(info)

    def close(self) -> None:
        for child in self._children:
            child.poll()  # reap, do not stop: the server outlives us by design

    # -- the model server process ------------------------------------------------------------

    def base_url(self) -> str:
        info = self._running_info()
        port = info["port"] if info else self.rest_api_port or self._last_port() or 0
        return f"http://{HOST}:{port}"

    def server_pid(self) -> int | None:
        info = self._running_info()
        return int(info["pid"]) if info else None

    def stop_server(self, timeout: float = 15.0) -> None:
        """Stop the model server (used by tests and `jupyter modelserve stop-server`)."""
        with self._lock:
            info = self._running_info()
            if info is not None:
                pid = int(info["pid"])
                terminate(pid, timeout)
            for child in self._children:
                child.poll()
            # server.json stays: a restart reuses its port, so served urls stay valid.

    def _running_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(self.info_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        for child in self._children:
            child.poll()
        return info if is_our_server(int(info["pid"]), self.config_file) else None

    def _ensure_running(self) -> tuple[dict[str, Any], bool]:
        """The running server's info, starting one if needed; and whether it was just started."""
        info = self._running_info()
        if info is not None:
            return info, False
        port = self.rest_api_port or self._previous_port() or free_port()
        if port_in_use(port):
            raise BackendUnavailable(
                f"port {port} on {HOST} is in use by another program, so the model server cannot "
                "start; set c.LocalBackend.rest_api_port to a free port (or 0 to pick one)"
            )
        command, kind = self._command()
        if shutil.which(command[0]) is None:  # nohup would hide this until the server's log
            raise BackendUnavailable(
                f"cannot start the model server: {command[0]!r} is not an executable on PATH; "
                "check c.LocalBackend.server_command"
            )
        # Under nohup SIGHUP starts out ignored: a reload signal from another process during the
        # server's start-up must not kill it (the server installs its handler, then reads config).
        nohup = shutil.which("nohup")
        command = [nohup, *command] if nohup else command
        command += [
            f"--port={free_port()}",
            f"--rest_api_port={port}",
            f"--model_config_file={self.config_file}",
            f"--model_config_file_poll_wait_seconds={CONFIG_POLL_SECONDS}",
        ]
        with open(self.log_file, "ab") as log:
            log.write(f"--- starting model server: {' '.join(command)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # detached: survives the Jupyter server and kernels
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            except OSError as exc:
                raise BackendUnavailable(
                    f"cannot start the model server ({' '.join(command)}): {exc}; "
                    "check c.LocalBackend.server_command"
                ) from None
        self._children.append(process)
        info = {"pid": process.pid, "port": port, "kind": kind, "command": command}
        self.info_file.write_text(json.dumps(info))
        self.log.info("Started model server %s (pid %s) on %s:%s", kind, process.pid, HOST, port)
        return info, True

    def _last_port(self) -> int | None:
        try:
            return int(json.loads(self.info_file.read_text())["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _previous_port(self) -> int | None:
        """With a free port asked for, restart on the last one, so served urls stay valid."""
        port = self._last_port()
        return None if port is None or port_in_use(port) else port

    def _last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return lines[-1].strip() if lines else ""

    def _command(self) -> tuple[list[str], str]:
        if self.server_command:
            kind = BUILTIN if "jupyter_modelserve.modelserver" in self.server_command else "custom"
            return list(self.server_command), kind
        real = shutil.which("tensorflow_model_server")
        if real and self.use_tensorflow_model_server:
            self.log.warning("tensorflow_model_server listens on all interfaces, not only %s", HOST)
            return [real], "tensorflow_model_server"
        return [sys.executable, "-m", "jupyter_modelserve.modelserver"], BUILTIN

    def _signal_reload(self, info: dict[str, Any]) -> None:
        # tensorflow_model_server does not handle SIGHUP; it polls the file instead.
        if info.get("kind") == BUILTIN:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(info["pid"]), signal.SIGHUP)

    # -- the config file ---------------------------------------------------------------------

    def _read_config(self) -> list[ModelConfig]:
        try:
            return parse_model_config_list(self.config_file.read_text())
        except FileNotFoundError:
            return []

    def _write_config(self, configs: list[ModelConfig]) -> bool:
        """Write the config atomically; returns whether it changed."""
        text = render_config(configs)
        try:
            if self.config_file.read_text() == text:
                return False
        except FileNotFoundError:
            pass
        temporary = self.config_file.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.config_file)  # the server never reads a half-written file
        return True


# -- pure helpers ---------------------------------------------------------------------------------


def _with_version(configs: list[ModelConfig], spec: ServeSpec) -> list[ModelConfig]:
    base_path = str(Path(spec.source).parent)
    result = []
    found = False
    for config in configs:
        if config.name != spec.name:
            result.append(config)
            continue
        found = True
        if config.base_path != base_path:
            raise Conflict(
                f"model {spec.name!r} is already served from {config.base_path!r}, not "
                f"{base_path!r}; the local server reads all versions of a model from one folder"
            )
        versions = tuple(sorted({*config.version_policy.versions, spec.version}))
        result.append(_config(spec.name, base_path, versions))
    if not found:
        result.append(_config(spec.name, base_path, (spec.version,)))
    return result


def _without_version(configs: list[ModelConfig], spec: ServeSpec) -> list[ModelConfig]:
    result = []
    for config in configs:
        if config.name == spec.name:
            versions = tuple(v for v in config.version_policy.versions if v != spec.version)
            if not versions:
                continue
            config = _config(config.name, config.base_path, versions)
        result.append(config)
    return result


def _config(name: str, base_path: str, versions: tuple[int, ...]) -> ModelConfig:
    return ModelConfig(
        name=name,
        base_path=base_path,
        version_policy=VersionPolicy(kind="specific", versions=versions),
    )


def _serves(configs: list[ModelConfig], spec: ServeSpec) -> bool:
    return any(c.name == spec.name and spec.version in c.version_policy.versions for c in configs)


def _version_state(body: dict[str, Any], spec: ServeSpec) -> str | None:
    for status in body.get("model_version_status", []):
        if str(status.get("version")) == str(spec.version):
            return str(status.get("state"))
    return None


def _observation_from_status(body: dict[str, Any], spec: ServeSpec) -> Observation:
    for status in body.get("model_version_status", []):
        if str(status.get("version")) != str(spec.version):
            continue
        state = status.get("state")
        error = status.get("status", {})
        if state == "AVAILABLE":
            return Observation(Observed.AVAILABLE)
        if state in ("START", "LOADING"):
            return Observation(Observed.LOADING, "the model server is loading it")
        if state == "END" and error.get("error_code", "OK") != "OK":
            return Observation(Observed.FAILED, error.get("error_message") or error["error_code"])
        return Observation(Observed.STARTING, f"model server reports {state}")
    return Observation(Observed.STARTING, "waiting for the model server to load it")
