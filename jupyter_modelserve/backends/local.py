"""The local backend: one long-lived model server per state folder serves every local serve.

The server is TensorFlow Serving's `tensorflow_model_server` when it is on PATH, else the built-in
`python -m jupyter_modelserve.modelserver`; both read one `model_config_list` file written here.
The process is detached (its own session), so serves outlive a kernel or Jupyter server restart,
and a file lock keeps two processes (server, kernels, CLI) from starting two servers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ..errors import BackendUnavailable, InvalidInput
from .base import Key, Observation, Observed, ServeSpec
from .local_batching import batching_flags, started_otherwise
from .local_config import ModelsConfigFile, with_version, without_version
from .local_ports import PortSetting, choose_port
from .local_settings import LocalSettings
from .local_status import configured, observation, status_answers
from .process import HOST, is_our_server, terminate, wait_until_started

BUILTIN = "builtin"
# What may reach the model server's config file and URLs: the registry's own name rule. The
# front doors check it too; this is the last line before a name is written into a file.
_SAFE_NAME = re.compile(r"[0-9A-Za-z](?:[0-9A-Za-z_-]*[0-9A-Za-z])?")
# tensorflow_model_server re-reads its config at most once a second; the built-in server also
# reloads at once on SIGHUP.
CONFIG_POLL_SECONDS = 1
STARTED_TIMEOUT = 10.0  # for the exec chain nohup -> nice -> python to reach the server


class LocalBackend(LocalSettings):
    """Serves on this machine, on 127.0.0.1 only."""

    name = "local"
    restarts_lost_serves = True
    outlives_registry = False  # its config file lives in the data folder, beside the registry
    deployed_since: Mapping[Key, datetime] = {}  # its config file keeps no creation times

    def __init__(self, data_dir: str | Path, artifact_root: str | Path = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dir = Path(self.state_dir or Path(data_dir) / "server")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.dir / "models.config"
        self.models = ModelsConfigFile(self.config_file, self.log)
        self.info_file = self.dir / "server.json"
        self.log_file = self.dir / "server.log"
        self._lock = FileLock(str(self.dir / "server.lock"), timeout=120)
        self._children: list[subprocess.Popen[bytes]] = []
        self._grpc_seen: tuple[tuple[int, int, int] | None, int | None] = (None, None)

    def check_running_server(self) -> None:
        """Warn when the running model server was started with other batching flags than the
        settings now say. The Jupyter server calls it at start (not the CLI: `stop-server`
        is the remedy it names)."""
        info = self._running_info()
        wanted = batching_flags(self.enable_batching, self.batching_parameters_file, check=False)
        if info is not None and started_otherwise(info.get("command", []), wanted):
            self.log.warning(
                "The model server (pid %s) was started with other batching flags than "
                "c.LocalBackend.enable_batching/batching_parameters_file now say; they take "
                "effect when it next starts: `jupyter modelserve stop-server`, then serve again",
                info["pid"],
            )

    # -- Backend protocol --------------------------------------------------------------------

    def validate(self, spec: ServeSpec) -> None:
        if not _SAFE_NAME.fullmatch(spec.name):
            raise InvalidInput(f"modelName: {spec.name!r} cannot be served by the local backend")
        if "://" in spec.source:
            raise InvalidInput(
                f"source: {spec.source!r} is remote; the local backend serves models stored on "
                "this machine only (set c.ModelServeApp.backend = 'kubernetes' for s3:// and "
                "gs:// sources)"
            )

    def url_for(self, spec: ServeSpec) -> str:
        return f"{self.endpoint(spec)}/v1/models/{spec.name}/versions/{spec.version}:predict"

    def grpc_address(self, spec: ServeSpec) -> str | None:
        """host:port of the model server's gRPC API (it serves every local serve); None before
        a server was ever started here. Read from server.json, re-parsed only when it changes:
        lists ask once per row."""
        try:
            stat = self.info_file.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._grpc_seen[0] != key:
            self._grpc_seen = (key, self._last_port("grpc_port"))
        port = self._grpc_seen[1]
        return f"{HOST}:{port}" if port else None

    def use_registry_identity(self, identity: str) -> None:
        """Nothing to tell apart: one data folder, one model server, one registry."""

    def served_version(self, spec: ServeSpec) -> int:
        return spec.servable_version  # the model server reads the registered version folder

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
        # A server that cannot start is named before the config file lists the serve (else
        # the reconciler would retry it on every tick).
        batching_flags(self.enable_batching, self.batching_parameters_file)
        with self._locked():
            configs = self.models.read()
            updated = with_version(configs, spec)
            changed = self.models.write(updated)
            info, started = self._ensure_running()
            if changed and not started:  # a server just started reads the file by itself
                self._signal_reload(info)

    def refresh(self, specs: Sequence[ServeSpec]) -> None:
        """Nothing to do: the model server reads its settings when it starts, and every serve
        of it shares them."""

    def remove(self, spec: ServeSpec) -> None:
        with self._locked():
            updated = without_version(self.models.read(), spec)
            if self.models.write(updated):
                info = self._running_info()
                if info is not None:
                    self._signal_reload(info)

    def statuses(self, specs: Sequence[ServeSpec], timeout: float) -> dict[Key, Observation]:
        if not specs:
            return {}
        info = self._running_info()
        if info is None:
            if self._stopped_on_purpose():
                wanted = configured(self.models.read())
                stopped = Observation(
                    Observed.FAILED,
                    "the model server was stopped (jupyter modelserve stop-server); POST the "
                    "serve again to start it",
                )
                gone = Observation(Observed.ABSENT, "the model server was stopped")
                return {(s.name, s.version): stopped if s.key in wanted else gone for s in specs}
            last = self._last_log_line()
            absent = Observation(
                Observed.ABSENT,
                "the model server is not running" + (f"; its log ends: {last}" if last else ""),
            )
            return {(s.name, s.version): absent for s in specs}
        wanted = configured(self.models.read())
        deadline = time.monotonic() + min(timeout, self.status_timeout)
        by_name: dict[str, list[ServeSpec]] = {}
        for spec in specs:
            by_name.setdefault(spec.name, []).append(spec)
        # One keep-alive connection, one deadline: a hung server costs the deadline once, not
        # per serve.
        connection = http.client.HTTPConnection(HOST, int(info["port"]))
        try:
            answers = status_answers(
                connection, list(by_name), deadline, all_at_once=info.get("kind") == BUILTIN
            )
        finally:
            connection.close()
        found = {
            spec.key: observation(answers[name], spec.key in wanted, spec)
            for name, group in by_name.items()
            if name in answers
            for spec in group
        }
        silent = Observation(
            Observed.UNKNOWN,
            f"the model server (pid {info['pid']}) does not answer: no reply within "
            f"{min(timeout, self.status_timeout):.1f} s",
        )
        return {(s.name, s.version): found.get((s.name, s.version), silent) for s in specs}

    def deployed(self) -> list[Key]:
        return [(c.name, v) for c in self.models.read() for v in c.version_policy.versions]

    def needs_attention(self) -> bool:
        """Serves are configured but their server is not running (it crashed, or was killed)."""
        if self._stopped_on_purpose():
            return False
        return bool(self.models.read()) and self._running_info() is None

    def _stopped_on_purpose(self) -> bool:
        try:
            return bool(json.loads(self.info_file.read_text()).get("stopped"))
        except (FileNotFoundError, ValueError, AttributeError):
            return False

    def close(self) -> None:
        for child in self._children:
            child.poll()  # reap, do not stop: the server outlives us by design

    # -- the model server process ------------------------------------------------------------

    def base_url(self) -> str:
        info = self._running_info()
        port = info["port"] if info else self._last_port() or self.rest_api_port or 0
        return f"http://{HOST}:{port}"

    def stop_server(self, timeout: float = 15.0) -> bool:
        """Stop the model server (used by tests and `jupyter modelserve stop-server`); False
        when none was running."""
        with self._locked():
            info = self._running_info()
            if info is not None:
                pid = int(info["pid"])
                terminate(pid, timeout)
                # server.json stays: a restart reuses its port, so served urls stay valid. The
                # mark tells the reconciler this was wanted: no restart until a serve is POSTed.
                self.info_file.write_text(json.dumps({**info, "stopped": True}))
            for child in self._children:
                child.poll()
            return info is not None

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
        port, grpc_port = self._ports_to_start_on()
        command, kind = self._command()
        if shutil.which(command[0]) is None:  # nohup would hide this until the server's log
            raise BackendUnavailable(
                f"cannot start the model server: {command[0]!r} is not an executable on PATH; "
                "check c.LocalBackend.server_command"
            )
        # Loading models takes every core it can get: below the Jupyter server and kernels on
        # the same machine, it never makes the notebook stall.
        nice = shutil.which("nice")
        if nice and self.niceness:
            command = [nice, "-n", str(self.niceness), *command]
        # nohup first: its SIGHUP ignore is inherited through `nice` into the server, which
        # then installs its own handler. What keeps a reload signal from killing a process not
        # yet there is `wait_until_started` below.
        nohup = shutil.which("nohup")
        command = [nohup, *command] if nohup else command
        command += [
            f"--port={grpc_port}",
            f"--rest_api_port={port}",
            *(
                [f"--rest_api_allowed_hosts={','.join(self.allowed_hosts)}"]
                if kind == BUILTIN and self.allowed_hosts
                else []
            ),
            f"--model_config_file={self.config_file}",
            f"--model_config_file_poll_wait_seconds={CONFIG_POLL_SECONDS}",
            *batching_flags(self.enable_batching, self.batching_parameters_file),
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
        # Under the lock, until the new process is recognisably ours and safe to signal: until
        # then another caller's liveness check would start a second server, and a SIGHUP
        # would kill it.
        if not wait_until_started(process.pid, self.config_file, STARTED_TIMEOUT):
            self.log.warning(
                "The model server (pid %s) neither ignores nor handles SIGHUP after %.0f s; "
                "reload signals may kill it (is nohup on PATH?)",
                process.pid,
                STARTED_TIMEOUT,
            )
        info = {
            "pid": process.pid,
            "port": port,
            "grpc_port": grpc_port,
            "kind": kind,
            "command": command,
        }
        self.info_file.write_text(json.dumps(info))
        self.log.info("Started model server %s (pid %s) on %s:%s", kind, process.pid, HOST, port)
        return info, True

    def _last_port(self, key: str = "port") -> int | None:
        try:
            return int(json.loads(self.info_file.read_text())[key])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _ports_to_start_on(self) -> tuple[int, int]:
        """(REST, gRPC) ports for a (re)started server: see local_ports.choose_port."""
        rest = PortSetting(self.rest_api_port, self._port_explicit, "c.LocalBackend.rest_api_port")
        grpc = PortSetting(self.grpc_port, self._grpc_port_explicit, "c.LocalBackend.grpc_port")
        timeout = self.port_release_timeout
        rest_port = choose_port(rest, self._last_port(), timeout, self.log)
        grpc_port = choose_port(grpc, self._last_port("grpc_port"), timeout, self.log, {rest_port})
        return rest_port, grpc_port

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

    # -- locking ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Any:
        try:
            with self._lock:
                yield
        except LockTimeout:
            raise BackendUnavailable(
                f"another process has held the model server's lock ({self._lock.lock_file}) for "
                f"{self._lock.timeout:.0f} s; try again"
            ) from None
