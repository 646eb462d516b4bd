"""One namespace of one Kubernetes API server, as the kubernetes backend needs it.

Every call is bounded in time and ends in our errors (`BackendUnavailable`, `Conflict`,
`InvalidInput`), never in the client's exceptions; the backend above it knows what objects to
make, this module only how to ask. Every call blocks: the service runs them off the event loop.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BackendUnavailable, Conflict, InvalidInput

T = TypeVar("T")
CONNECT_TIMEOUT = 3.0  # seconds to open a connection to the API server


class KubeApi:
    """Typed-enough access to the kinds a serve is made of, in one namespace."""

    def __init__(self, namespace: str, kubeconfig: str, request_timeout: float) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.request_timeout = request_timeout
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for one API call."""
        return (CONNECT_TIMEOUT, self.request_timeout)

    @property
    def _raw(self) -> dict[str, Any]:
        # Writes do not deserialise the answer: we never use it, and API servers of other versions
        # answer some of them in shapes this client's models reject (1.20's Status for a deleted
        # Service, say).
        return {"_request_timeout": self.timeout, "_preload_content": False}

    def api_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = connect(self.kubeconfig)
            return self._client

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client())

    def networking(self) -> Any:
        from kubernetes import client

        return client.NetworkingV1Api(self.api_client())

    def kind_api(self, kind: str) -> tuple[Any, str]:
        apis = {
            "ConfigMap": (self.core, "config_map"),
            "Deployment": (self.apps, "deployment"),
            "Service": (self.core, "service"),
            "Ingress": (self.networking, "ingress"),
            "Pod": (self.core, "pod"),
            "ReplicaSet": (self.apps, "replica_set"),
        }
        api, suffix = apis[kind]
        return api(), suffix

    def read(self, kind: str, name: str) -> Any:
        """The object, or None when there is none."""
        api, suffix = self.kind_api(kind)
        reader = getattr(api, f"read_namespaced_{suffix}")
        return self.call(
            f"read {kind} {name}",
            reader,
            name,
            self.namespace,
            _request_timeout=self.timeout,
            allow=(404,),
        )

    def list(self, kind: str, selector: str, timeout: tuple[float, float] | None = None) -> Any:
        """Raw list call (wrap it in `call`): the items of `kind` that `selector` selects."""
        api, suffix = self.kind_api(kind)
        lister = getattr(api, f"list_namespaced_{suffix}")
        limit = timeout or self.timeout
        return list(lister(self.namespace, label_selector=selector, _request_timeout=limit).items)

    def create(self, obj: dict[str, Any]) -> Any:
        api, suffix = self.kind_api(obj["kind"])
        creator = getattr(api, f"create_namespaced_{suffix}")
        return _drained(creator(self.namespace, obj, **self._raw))

    def patch(self, obj: dict[str, Any]) -> Any:
        api, suffix = self.kind_api(obj["kind"])
        patcher = getattr(api, f"patch_namespaced_{suffix}")
        return _drained(patcher(obj["metadata"]["name"], self.namespace, obj, **self._raw))

    def delete(self, kind: str, name: str) -> Any:
        api, suffix = self.kind_api(kind)
        deleter = getattr(api, f"delete_namespaced_{suffix}")
        # Foreground: the Deployment stays until its ReplicaSets and Pods are gone, so "absent"
        # means really nothing left.
        return _drained(deleter(name, self.namespace, propagation_policy="Foreground", **self._raw))

    def call(
        self,
        what: str,
        function: Callable[..., T],
        *args: Any,
        allow: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> T:
        """Run one API call, turning Kubernetes and network failures into our errors."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            if exc.status in allow:
                return None  # type: ignore[return-value]
            if exc.status == 409:
                raise Conflict(f"Kubernetes refused to {what}: {reason(exc)}") from None
            if exc.status in (400, 422):
                raise InvalidInput(f"Kubernetes rejected {what}: {reason(exc)}") from None
            if exc.status in (401, 403):
                raise BackendUnavailable(
                    f"Kubernetes does not allow this Jupyter server to {what} in namespace "
                    f"{self.namespace}: {reason(exc)}; grant the Role in deploy/rbac.yaml"
                ) from None
            raise BackendUnavailable(f"Kubernetes failed to {what}: {reason(exc)}") from None
        except (HTTPError, OSError) as exc:
            host = getattr(self._client.configuration, "host", "?") if self._client else "?"
            raise BackendUnavailable(
                f"cannot reach the Kubernetes API server at {host} to {what}: {exc}"
            ) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _drained(response: Any) -> Any:
    response.data  # read it all, so the pooled connection can be reused  # noqa: B018
    return response


def connect(kubeconfig: str) -> Any:
    """An ApiClient from the kubeconfig, $KUBECONFIG, ~/.kube/config or in-cluster config."""
    from kubernetes import client, config

    path = (
        kubeconfig or os.environ.get("KUBECONFIG", "") or str(Path("~/.kube/config").expanduser())
    )
    configuration = client.Configuration()
    try:
        if Path(path).is_file():
            config.load_kube_config(config_file=path, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (config.ConfigException, OSError, ValueError) as exc:
        raise BackendUnavailable(
            f"no usable Kubernetes configuration (kubeconfig {path!r} not found and not running "
            f"in a cluster): {exc}; set c.KubernetesBackend.kubeconfig"
        ) from None
    configuration.retries = 0  # fail fast: the service retries on its own schedule
    return client.ApiClient(configuration)


def reason(exc: Exception) -> str:
    """The API server's own message for a failed call."""
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message") or body)
        except ValueError:
            return str(body)
    return str(getattr(exc, "reason", None) or exc)
