"""Runs a Pod's init containers for real, on this machine, for the stand-in kubelet.

The stand-in kubelet (kubelet.py) runs no container. For the model download that is not enough:
whether the download's command, its env, the Secret's keys and the credential hint really fetch
a SavedModel is what the tests must show. :func:`running_init_containers` wraps a kubelet policy:
once a Pod is bound, it runs each init container's command and args as a subprocess (the host's
`/bin/sh` and `rclone` stand in for the image's), with

- each volume mount mapped to a folder of this runner's (``<root>/<pod uid>/<volume>``): paths in
  args and env values under a mountPath are rewritten to it;
- env from ``env`` values and ``envFrom`` Secrets, read from the API server as a kubelet does;
- the node's own facts in ``node_env`` (no instance metadata service on this node);

and, as a kubelet with ``FallbackToLogsOnError`` does, turns a failure into that init container
crash-looping with the tail of its output as the termination message. Each Pod runs once.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api, V1Pod

from .kubelet import Behaviour, Outcome, Policy

# What the kubelet keeps of a failed container's log as its message (kubelet: 80 lines, 2 KiB).
MESSAGE_LINES = 80
MESSAGE_BYTES = 2048
RUN_TIMEOUT = 120.0  # one init container; the command bounds its own network waits
# No cloud here: the SDKs' metadata lookups (EC2, GCE) must fail at once, not wait on a timeout.
NODE_ENV = {"AWS_EC2_METADATA_DISABLED": "true", "GCE_METADATA_HOST": "127.0.0.1:9"}


class InitRunner:
    """Runs init containers of the Pods it is shown; results by Pod uid."""

    def __init__(self, core: CoreV1Api, root: Path, node_env: Mapping[str, str] | None = None):
        self._core = core
        self.root = root
        self._node_env = {**NODE_ENV, **(node_env or {})}
        self._results: dict[str, Outcome | None] = {}
        self._lock = threading.Lock()
        self.runs: list[tuple[str, str, int]] = []  # (pod name, container, exit code), in order

    def folder(self, pod: V1Pod, volume: str) -> Path:
        """Where this runner keeps `volume` of `pod` (what TF Serving would mount)."""
        assert pod.metadata is not None and pod.metadata.uid is not None
        return self.root / pod.metadata.uid / volume

    def outcome(self, pod: V1Pod) -> Outcome | None:
        """None when every init container succeeded, else the first failure's crash loop."""
        assert pod.metadata is not None and pod.metadata.uid is not None
        with self._lock:
            if pod.metadata.uid not in self._results:
                self._results[pod.metadata.uid] = self._run_all(pod)
            return self._results[pod.metadata.uid]

    def _run_all(self, pod: V1Pod) -> Outcome | None:
        assert pod.spec is not None and pod.metadata is not None
        for container in pod.spec.init_containers or []:
            code, output = self._run(pod, container)
            self.runs.append((pod.metadata.name or "", container.name, code))
            if code != 0:
                return Outcome(
                    "crash_loop", message=_tail(output), exit_code=code, container=container.name
                )
        return None

    def _run(self, pod: V1Pod, container: Any) -> tuple[int, str]:
        mounts = sorted(
            (
                (m.mount_path.rstrip("/"), self.folder(pod, m.name))
                for m in container.volume_mounts or []
            ),
            key=lambda pair: -len(pair[0]),
        )
        for _, host in mounts:
            host.mkdir(parents=True, exist_ok=True)

        def mapped(value: str) -> str:
            for path, host in mounts:
                if value == path or value.startswith(path + "/"):
                    return str(host) + value[len(path) :]
            return value

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self._node_env}
        env |= self._secret_env(pod, container)
        env |= {e.name: mapped(e.value or "") for e in container.env or []}
        argv = [mapped(a) for a in [*(container.command or []), *(container.args or [])]]
        try:
            done = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return 124, f"{exc.output or ''}\ninit container {container.name} timed out"
        except OSError as exc:  # no such binary: the runtime's StartError
            return 128, f"failed to start {argv[:1]}: {exc}"
        return done.returncode, done.stdout

    def _secret_env(self, pod: V1Pod, container: Any) -> dict[str, str]:
        assert pod.metadata is not None and pod.metadata.namespace is not None
        env: dict[str, str] = {}
        for source in container.env_from or []:
            if source.secret_ref is None:
                continue
            secret = self._core.read_namespaced_secret(
                source.secret_ref.name, pod.metadata.namespace
            )
            for key, value in (secret.data or {}).items():
                env[key] = base64.b64decode(value).decode()
        return env


def running_init_containers(
    runner: InitRunner, then: Policy | Behaviour | Outcome = "ready"
) -> Policy:
    """A kubelet policy: a bound Pod's init containers run first; `then` decides the rest."""

    def policy(pod: V1Pod) -> Behaviour | Outcome:
        rest = then(pod) if callable(then) else then
        if pod.spec is None or not pod.spec.node_name or not pod.spec.init_containers:
            return rest  # not bound yet: the kubelet binds it first
        return runner.outcome(pod) or rest

    return policy


def _tail(output: str) -> str:
    lines = output.strip().splitlines()[-MESSAGE_LINES:]
    return "\n".join(lines)[-MESSAGE_BYTES:]
