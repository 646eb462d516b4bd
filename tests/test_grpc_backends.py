"""Where each backend's serves answer gRPC: the address given, and the local server's port."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from jupyter_modelserve.backends import exposure
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.backends.local_ports import PortSetting, choose_port
from jupyter_modelserve.errors import BackendUnavailable

SPEC = ServeSpec("simple", 3, "/models/simple/3")
LOG = logging.getLogger("test")


def test_kubernetes_grpc_address_is_the_services_grpc_port(tmp_path: Path) -> None:
    # Given a Kubernetes backend in namespace `ml`
    backend = KubernetesBackend(data_dir=tmp_path, namespace="ml", instance="a")
    try:
        # When the gRPC address of a serve is asked for
        address = backend.grpc_address(SPEC)
        # Then it is the serve's Service, in cluster, on the Service's port named grpc
        assert address is not None
        host, _, port = address.rpartition(":")
        assert host == urlsplit(backend.endpoint(SPEC)).hostname
        assert host.endswith(".ml.svc")
        service = exposure.service(SPEC, backend.settings)
        grpc_ports = [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc_ports == [int(port)] == [8500]
    finally:
        backend.close()


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_default_port_held_by_another_program_gives_way(held_port: int) -> None:
    # Given the default gRPC port held by another program
    setting = PortSetting(held_port, explicit=False, setting="c.LocalBackend.grpc_port")
    # When the port to start on is chosen
    port = choose_port(setting, None, 1.0, LOG)
    # Then it is another, free one
    assert port not in (held_port, 0)
    # And a port chosen for REST already is never chosen again for gRPC
    assert choose_port(PortSetting(port, False, "x"), None, 1.0, LOG, {port}) != port


def test_a_port_set_explicitly_is_used_or_refused(held_port: int) -> None:
    # Given c.LocalBackend.grpc_port set to a port another program holds
    setting = PortSetting(held_port, explicit=True, setting="c.LocalBackend.grpc_port")
    # When the port to start on is chosen
    with pytest.raises(BackendUnavailable) as caught:
        choose_port(setting, None, 1.0, LOG)
    # Then the start is refused, naming the setting
    assert "c.LocalBackend.grpc_port" in caught.value.message
    # And set to the REST port too, it is refused before anything is tried
    with pytest.raises(BackendUnavailable, match="other port"):
        choose_port(setting, None, 1.0, LOG, {held_port})


def test_the_last_port_is_kept_when_free() -> None:
    # Given a data folder whose server last used a port that is free now
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        last = sock.getsockname()[1]
    # When a server is started again with the default setting
    port = choose_port(PortSetting(8500, False, "x"), last, 1.0, LOG)
    # Then it gets the same port, so addresses handed out stay valid
    assert port == last
