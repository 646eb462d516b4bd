"""One namespace of one Kubernetes API server, as the kubernetes backend needs it.

Every call is bounded in time and ends in our errors (`BackendUnavailable`, `Conflict`,
`InvalidInput`), never in the client's exceptions; the backend above it knows what objects to
make, this module only how to ask. Every call blocks: the service runs them off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BackendUnavailable, Conflict, InvalidInput

T = TypeVar("T")
CONNECT_TIMEOUT = 3.0  # seconds to open a connection to the API server
FIELD_MANAGER = "jupyter-modelserve"  # our name in every object's managedFields
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply (JSON is valid YAML)
# Answers worth asking again: the API server is throttling us (429, with Retry-After) or one of
# its replicas or the proxy in front of it failed (5xx). Few and short, so one call still ends
# within its deadline: a cluster that keeps failing is a 503 for the caller, not a hang.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_ATTEMPTS = 3
RETRY_FIRST_DELAY = 0.2  # seconds; doubled for every further attempt
RETRY_MAX_DELAY = 2.0  # seconds; a longer Retry-After is cut to this
MIN_ATTEMPT = 0.5  # seconds; less left before the deadline is not worth another attempt


class KubeApi:
    """Typed-enough access to the kinds a serve is made of, in one namespace."""

    def __init__(self, namespace: str, kubeconfig: str, request_timeout: float) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.request_timeout = request_timeout
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._deadline = threading.local()  # the deadline of the `call` running on a thread

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for one API call: within the running call's deadline."""
        return self.clamped((CONNECT_TIMEOUT, self.request_timeout))

    def clamped(self, limit: tuple[float, float]) -> tuple[float, float]:
        """`limit` with its read part cut to what is left of the running call's deadline."""
        deadline = getattr(self._deadline, "at", None)
        if deadline is None:
            return limit
        return (limit[0], max(0.1, min(limit[1], deadline - time.monotonic())))

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
            "NetworkPolicy": (self.networking, "network_policy"),
            "Pod": (self.core, "pod"),
            "ReplicaSet": (self.apps, "replica_set"),
            "PersistentVolumeClaim": (self.core, "persistent_volume_claim"),
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
        limit = self.clamped(timeout) if timeout else self.timeout
        return list(lister(self.namespace, label_selector=selector, _request_timeout=limit).items)

    def apply(self, obj: dict[str, Any], force: bool = True) -> Any:
        """Server-side apply as `FIELD_MANAGER`, creating the object when it is missing.

        Not forced (`force=False`, for an object read as absent): a field another manager owns
        with another value is a 409, so an object somebody made in between is never taken over.
        A `metadata.resourceVersion` in `obj` makes any change since that version a 409.
        Forced: every field we send is ours (the caller leaves out fields others own, such as
        an HPA's `spec.replicas`); fields we stopped sending are removed unless another manager
        owns them.
        """
        api, suffix = self.kind_api(obj["kind"])
        patcher = getattr(api, f"patch_namespaced_{suffix}")
        return _drained(
            patcher(
                obj["metadata"]["name"],
                self.namespace,
                obj,
                field_manager=FIELD_MANAGER,
                force=force,
                _content_type=APPLY_PATCH,
                **self._raw,
            )
        )

    def delete(self, kind: str, name: str, uid: str | None = None) -> Any:
        """Delete `kind` `name`; with `uid`, only that very object (else a 409)."""
        api, suffix = self.kind_api(kind)
        deleter = getattr(api, f"delete_namespaced_{suffix}")
        # Foreground: the Deployment stays until its ReplicaSets and Pods are gone, so "absent"
        # means really nothing left.
        body: dict[str, Any] = {"propagationPolicy": "Foreground"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        return _drained(deleter(name, self.namespace, body=body, **self._raw))

    def call(
        self,
        what: str,
        function: Callable[..., T],
        *args: Any,
        allow: tuple[int, ...] = (),
        deadline: float | None = None,
        **kwargs: Any,
    ) -> T:
        """Run one API call, turning Kubernetes and network failures into our errors.

        Everything ends by `deadline` (monotonic; default one `request_timeout` from now):
        every attempt's read timeout is cut to what is left, and none starts with less than
        `MIN_ATTEMPT` left. 429 and 5xx answers are asked again (`RETRY_ATTEMPTS` in all,
        backing off, honouring Retry-After); a reset or timed-out connection only for reads
        (`read`/`list` calls), never for a write that may have happened.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        end = deadline if deadline is not None else time.monotonic() + self.request_timeout
        outer = getattr(self._deadline, "at", None)
        self._deadline.at = end if outer is None else min(end, outer)
        given = kwargs.get("_request_timeout")
        try:
            for attempt in range(1, RETRY_ATTEMPTS + 1):
                if given is not None:
                    kwargs["_request_timeout"] = self.clamped(given)
                try:
                    return function(*args, **kwargs)
                except (ApiException, HTTPError, OSError) as exc:
                    retried = isinstance(exc, ApiException) or _is_read(function)
                    pause = retry_delay(exc, attempt) if retried else None
                    if pause is None or time.monotonic() + pause + MIN_ATTEMPT >= self._deadline.at:
                        raise
                time.sleep(pause)  # backing off the API server, not synchronising
            raise AssertionError("unreachable: the last attempt returns or raises")
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
        finally:
            self._deadline.at = outer

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Every call made inside ends within `seconds` from now, retries included (a status
        read's own bound, tighter than one `request_timeout` per call)."""
        outer = getattr(self._deadline, "at", None)
        end = time.monotonic() + seconds
        self._deadline.at = end if outer is None else min(end, outer)
        try:
            yield
        finally:
            self._deadline.at = outer

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def retry_delay(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before asking again after `attempt` failed with `exc`; None: do not."""
    status = getattr(exc, "status", None)
    if isinstance(exc, OSError | _http_errors()):
        status = 503  # a reset or timed-out connection: as a failing proxy would answer
    if status not in RETRY_STATUSES or attempt >= RETRY_ATTEMPTS:
        return None
    delay = RETRY_FIRST_DELAY * 2 ** (attempt - 1)
    headers = getattr(exc, "headers", None) or {}
    after = headers.get("Retry-After") if hasattr(headers, "get") else None
    if after is not None:
        with contextlib.suppress(ValueError):  # seconds; k8s never sends the HTTP-date form
            delay = max(delay, float(after))
    return min(delay, RETRY_MAX_DELAY)


def _http_errors() -> type[Exception]:
    from urllib3.exceptions import HTTPError

    return HTTPError


def _is_read(function: Callable[..., Any]) -> bool:
    """Whether asking again is harmless: our `read`/`list`, or a client read/list method."""
    name = getattr(function, "__name__", "")
    return name in ("read", "list") or name.startswith(("read_", "list_"))


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
