"""One reconciler per registry: the lease decides who sweeps and restarts, and a process with no
Jupyter server (a kernel) heals its serves by itself."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.backends.local import LocalBackend
from jupyter_modelserve.reconciler import Reconciler
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.schemas import ServeState
from jupyter_modelserve.service import ServeService

from ..servers import model_server_pid
from .conftest import poll
from .tally import tally

Services = Callable[[], ServeService]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Services as separate processes would build them: one registry, one model server folder."""
    made: list[ServeService] = []

    def make() -> ServeService:
        service = ServeService(
            store=RegistryStore(f"sqlite:///{tmp_path / 'registry.db'}"),
            backend=LocalBackend(
                data_dir=tmp_path / "data",
                artifact_root=tmp_path / "artifacts",
                rest_api_port=0,
                grpc_port=0,
            ),
            artifact_root=tmp_path / "artifacts",
            reconcile_interval=30.0,
        )
        service.reconciler = Reconciler(service, interval=30.0, lease_ttl=1.0)
        made.append(service)
        return service

    yield make
    for service in made:
        service.reconciler.stop()
    if made:
        made[0].backend.stop_server()  # type: ignore[attr-defined]
    for service in made:
        service.close()


def test_only_one_process_holds_the_lease_and_another_takes_over_when_it_stops(
    services: Services,
) -> None:
    # Given three processes sharing one registry, each ticking
    first, second, third = services(), services(), services()
    for service in (first, second, third):
        service.reconciler.tick()

    # Then exactly one of them holds the reconciler lease
    holders = [s for s in (first, second, third) if s.reconciler.is_holder]
    assert len(holders) == 1

    # When the holder stops (handing the lease on), Then the next tick of another takes it
    holders[0].reconciler.stop()
    others = [s for s in (first, second, third) if s is not holders[0]]
    for service in others:
        service.reconciler.tick()
    assert sum(s.reconciler.is_holder for s in others) == 1
    tally.fault()


def test_a_holder_that_stops_renewing_loses_the_lease_once_it_lapses(services: Services) -> None:
    # Given a holder that dies without a word (it never ticks again)
    dead, alive = services(), services()
    dead.reconciler.tick()
    assert dead.reconciler.is_holder
    alive.reconciler.tick()
    assert not alive.reconciler.is_holder

    # When its lease lapses (1 s here), Then the other process takes the role over
    poll(lambda: alive.reconciler.tick() or alive.reconciler.is_holder, 10, "a takeover")
    tally.fault()


def test_a_kernel_with_no_jupyter_server_restarts_its_crashed_model_server(
    services: Services, half_plus_two: Path
) -> None:
    # Given a kernel-like process (no Jupyter server anywhere) serving simple 1, its reconciler
    # running in a thread as api.service() starts it
    kernel = services()
    kernel.registry.register_saved_model(half_plus_two, "simple")
    view = kernel.create("simple", 1, wait=120)
    assert view.state is ServeState.AVAILABLE
    kernel.reconciler.start_thread()
    backend: Any = kernel.backend
    crashed = model_server_pid(backend.dir)
    port = backend.base_url()

    # When its model server is killed
    os.kill(crashed, signal.SIGKILL)
    tally.fault()

    # Then the kernel's own reconciler starts it again, on the same port, with the model
    poll(
        lambda: (
            model_server_pid(backend.dir) not in (None, crashed)
            and kernel.get("simple", 1).state is ServeState.AVAILABLE
        ),
        120,
        "the kernel to restart its model server",
    )
    assert backend.base_url() == port
