"""Writes against a cluster others write to at the same time, on the real control plane.

Settings that drop a kind delete our object of it; one refused serve does not stop a refresh of
the others; an object made or changed between our read and our write is never taken over; a
delete removes only the very object read as ours; a server-side rejection of OUR object is a
ServerFault naming the settings; retries end by the caller's deadline and never repeat a write.
Cluster scenarios run as admin and as the identity bound only to deploy/rbac.yaml.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_modelserve.backends import kubewrites, manifests, naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.kubeapi import KubeApi
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.errors import BackendUnavailable, Conflict, ServerFault

from .kube.fixtures import KubeCluster, wait_for
from .kube.loopback import loopback_kubeconfig
from .test_kubernetes_backend import RBAC

FENCE = {"network_policy": True, "jupyter_pod_selector": {"app": "jupyter"}}
LOG = "test-kube-writes"


@pytest.fixture(params=["admin", "rbac-role"])
def identity(
    request: pytest.FixtureRequest, kube_cluster: KubeCluster, kube_namespace: str
) -> Path:
    """The kubeconfig of the admin, or of a user bound only to deploy/rbac.yaml's Role."""
    if request.param == "admin":
        return kube_cluster.kubeconfig
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    role["metadata"]["namespace"] = kube_namespace
    return kube_cluster.restricted_user(kube_namespace, role).kubeconfig


def _backend(path: Path, kubeconfig: Path, namespace: str, **traits: Any) -> KubernetesBackend:
    return KubernetesBackend(
        path,
        artifact_root=path,
        kubeconfig=str(kubeconfig),
        namespace=namespace,
        instance="h1",
        model_volume="models",
        log=logging.getLogger(LOG),
        **traits,
    )


def _spec(path: Path, name: str = "simple") -> ServeSpec:
    return ServeSpec(name, 1, str(path / name / "1"))


def _admin(kube_cluster: KubeCluster, namespace: str) -> KubeApi:
    return KubeApi(namespace, str(kube_cluster.kubeconfig), 10.0)


def _make_foreign(admin: KubeApi, obj: dict[str, Any]) -> None:
    """Make `obj` as somebody else would (kubectl create): same name and spec, none of our
    labels, another field manager."""
    other = copy.deepcopy(obj)
    other["metadata"]["labels"] = {"app": "theirs"}
    other["metadata"].pop("annotations", None)
    api, suffix = admin.kind_api(obj["kind"])
    creator = getattr(api, f"create_namespaced_{suffix}")
    admin.call(f"create {obj['kind']}", creator, admin.namespace, other, field_manager="kubectl")


def test_settings_that_drop_a_kind_delete_our_object_of_it(
    kube_cluster: KubeCluster, kube_namespace: str, identity: Path, tmp_path: Path
) -> None:
    # Given a serve applied with an Ingress and a NetworkPolicy
    backend = _backend(
        tmp_path, identity, kube_namespace, ingress_host="models.example.com", **FENCE
    )
    spec = _spec(tmp_path)
    admin = _admin(kube_cluster, kube_namespace)
    try:
        backend.apply(spec)
        name = naming.object_name(spec, backend.settings)
        assert admin.read("Ingress", name) is not None
        assert admin.read("NetworkPolicy", name) is not None

        # When ingress_host is unset and network_policy turned off, and the reconciler refreshes
        backend.ingress_host = ""
        backend.network_policy = False
        backend.refresh([spec])

        # Then both objects are deleted (the garbage collector ends a foreground delete), and
        # the serve's other objects stay
        for kind in ("Ingress", "NetworkPolicy"):
            wait_for(lambda k=kind: admin.read(k, name) is None, what=f"the {kind} to go")
        assert admin.read("Deployment", name) is not None
        assert admin.read("Service", name) is not None
    finally:
        backend.close()
        admin.close()


def test_one_refused_serve_does_not_stop_the_refresh_of_the_others(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    identity: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given two serves, and somebody else's Ingress under the name of the first one's
    backend = _backend(tmp_path, identity, kube_namespace)
    first, second = _spec(tmp_path, "alpha"), _spec(tmp_path, "beta")
    admin = _admin(kube_cluster, kube_namespace)
    try:
        backend.apply(first)
        backend.apply(second)
        backend.ingress_host = "models.example.com"
        theirs = next(
            o for o in manifests.manifests(first, backend.settings) if o["kind"] == "Ingress"
        )
        _make_foreign(admin, theirs)

        # When ingress_host is set and the reconciler refreshes both, twice
        with caplog.at_level(logging.WARNING, logger=LOG):
            backend.refresh([first, second])
            backend.refresh([first, second])

        # Then the second serve got its Ingress, the first one's foreign Ingress is untouched
        settings = backend.settings
        assert admin.read("Ingress", naming.object_name(second, settings)) is not None
        kept = admin.read("Ingress", naming.object_name(first, settings))
        assert kept.metadata.labels == {"app": "theirs"}
        # And the refused serve was logged once, naming why
        warnings = [r.getMessage() for r in caplog.records if r.name == LOG]
        assert len(warnings) == 1
        assert "alpha" in warnings[0] and "not made by jupyter_modelserve" in warnings[0]
    finally:
        backend.close()
        admin.close()


def test_an_object_made_between_our_read_and_our_create_is_not_taken_over(
    kube_cluster: KubeCluster, kube_namespace: str, identity: Path, tmp_path: Path
) -> None:
    # Given a Service read as absent, and somebody else creating one of that name right then
    backend = _backend(tmp_path, identity, kube_namespace)
    spec = _spec(tmp_path)
    admin = _admin(kube_cluster, kube_namespace)
    try:
        desired = manifests.manifests(spec, backend.settings)
        service = next(o for o in desired if o["kind"] == "Service")
        _make_foreign(admin, service)

        # When the backend writes its Service as if it were still absent
        def refuse(live: Any, obj: dict[str, Any]) -> None:
            backend._refuse_foreign(live, obj, spec)

        with pytest.raises(Conflict, match="not made by jupyter_modelserve"):
            kubewrites._write(backend._api, service, None, desired, refuse)

        # Then their Service is as they made it
        live = admin.read("Service", service["metadata"]["name"])
        assert live.metadata.labels == {"app": "theirs"}
    finally:
        backend.close()
        admin.close()


def test_an_object_changed_since_our_read_is_read_again_before_it_is_written(
    kube_cluster: KubeCluster, kube_namespace: str, identity: Path, tmp_path: Path
) -> None:
    # Given our Service, read, and then relabelled by somebody else (theirs now)
    backend = _backend(tmp_path, identity, kube_namespace)
    spec = _spec(tmp_path)
    admin = _admin(kube_cluster, kube_namespace)
    try:
        backend.apply(spec)
        desired = manifests.manifests(spec, backend.settings)
        service = next(o for o in desired if o["kind"] == "Service")
        name = service["metadata"]["name"]
        stale = admin.read("Service", name)
        admin.call(
            "relabel Service",
            lambda: admin.core().patch_namespaced_service(
                name, kube_namespace, {"metadata": {"labels": {naming.OWNER_KEYS[1]: "other"}}}
            ),
        )

        def refuse(live: Any, obj: dict[str, Any]) -> None:
            backend._refuse_foreign(live, obj, spec)

        # When the backend writes the Service with what it read before the change
        # Then the change is seen (409), the object read again and refused as not ours
        with pytest.raises(Conflict, match="not made by jupyter_modelserve"):
            kubewrites._write(backend._api, service, stale, desired, refuse)
        assert admin.read("Service", name).metadata.labels[naming.OWNER_KEYS[1]] == "other"
    finally:
        backend.close()
        admin.close()


def test_remove_deletes_only_the_object_it_read(
    kube_cluster: KubeCluster, kube_namespace: str, identity: Path, tmp_path: Path
) -> None:
    # Given our ConfigMap, read, then deleted and made again by somebody else
    backend = _backend(tmp_path, identity, kube_namespace)
    spec = _spec(tmp_path)
    admin = _admin(kube_cluster, kube_namespace)
    try:
        backend.apply(spec)
        name = naming.object_name(spec, backend.settings)
        ours = admin.read("ConfigMap", name)
        admin.call("delete ConfigMap", admin.delete, "ConfigMap", name)
        wait_for(lambda: admin.read("ConfigMap", name) is None, what="the ConfigMap to go")
        config_map = next(
            o for o in manifests.manifests(spec, backend.settings) if o["kind"] == "ConfigMap"
        )
        _make_foreign(admin, config_map)

        # When the backend deletes the ConfigMap it read as ours
        api = backend._api
        api.call("delete", api.delete, "ConfigMap", name, uid=ours.metadata.uid, allow=(404, 409))

        # Then theirs is still there, and not being deleted
        theirs = admin.read("ConfigMap", name)
        assert theirs.metadata.labels == {"app": "theirs"}
        assert theirs.metadata.deletion_timestamp is None
    finally:
        backend.close()
        admin.close()


def test_a_rejected_object_of_ours_is_a_server_fault_naming_the_setting(
    kube_namespace: str, identity: Path, tmp_path: Path
) -> None:
    # Given a node_selector the API server rejects (not a valid label key)
    backend = _backend(tmp_path, identity, kube_namespace, node_selector={"bad key!": "x"})
    try:
        # When a serve is applied
        # Then it is the server's configuration at fault, naming the Deployment and the setting
        with pytest.raises(ServerFault, match=r"Deployment .*node_selector"):
            backend.apply(_spec(tmp_path))
    finally:
        backend.close()


# ------------------------------------------------------- deadlines and retries (loopback)


class _Silent:
    """A TCP server on loopback that accepts, reads the request and then either says nothing
    (`hang`) or resets the connection; counts the requests."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            self.requests += 1
            if self.hang:
                self.open.append(conn)
            else:  # RST instead of FIN: a reset connection
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()


def _kubeconfig(path: Path, port: int) -> Path:
    return loopback_kubeconfig(path, port)


@pytest.fixture(params=[True, False], ids=["hanging", "resetting"])
def silent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[_Silent, Path]]:
    server = _Silent(hang=request.param)
    try:
        yield server, _kubeconfig(tmp_path / "kubeconfig", server.port)
    finally:
        server.close()


@pytest.mark.parametrize("how", ["list", "read"])
def test_a_read_ends_by_the_callers_deadline(how: str, silent: tuple[_Silent, Path]) -> None:
    # Given an API server that never answers (or resets), and a 30 s request timeout
    server, path = silent
    api = KubeApi("ns", str(path), 30.0)
    started = time.monotonic()
    try:
        # When a list (our helper) or a read (a client method given the request timeout) is
        # asked with a 1.5 s deadline
        deadline = time.monotonic() + 1.5
        with pytest.raises(BackendUnavailable):
            if how == "list":
                api.call("list", api.list, "Deployment", "a=b", deadline=deadline)
            else:
                reader = api.apps().read_namespaced_deployment
                api.call("read", reader, "x", "ns", _request_timeout=api.timeout, deadline=deadline)
    finally:
        api.close()
    # Then the caller hears by its deadline, not the request timeout's
    assert time.monotonic() - started < 2.5
    if not server.hang:  # And a reset read was asked again (a read is harmless to repeat)
        assert server.requests >= 2


def test_a_status_read_ends_by_its_own_bound_not_one_request_timeout_per_list(
    tmp_path: Path, silent: tuple[_Silent, Path]
) -> None:
    # Given an API server that never answers (or resets), a 30 s request timeout, no watches
    _server, path = silent
    backend = KubernetesBackend(
        data_dir=tmp_path, kubeconfig=str(path), instance="t", watch_cache=False
    )
    backend.request_timeout = 30.0
    started = time.monotonic()
    try:
        # When the service reads the status of a serve with its 1.5 s status bound
        with pytest.raises(BackendUnavailable):
            backend.statuses([ServeSpec("simple", 1, "s3://models/simple/1")], 1.5)
    finally:
        backend.close()
    # Then it hears within that bound (the service shows UNKNOWN), not after 30 s per list
    assert time.monotonic() - started < 5


def test_a_write_whose_connection_failed_is_never_sent_again(
    silent: tuple[_Silent, Path],
) -> None:
    # Given an API server that resets (or never answers) every connection
    server, path = silent
    api = KubeApi("ns", str(path), 1.5)
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    try:
        # When the backend applies an object
        with pytest.raises(BackendUnavailable):
            api.call("apply ConfigMap", api.apply, obj)
    finally:
        api.close()
    # Then it was sent once: it may have been written, so asking again is not ours to decide
    assert server.requests == 1
