"""The notebook panel over a real ServeService: local backend, real TensorFlow, real SavedModel."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_modelserve.api import Serve
from jupyter_modelserve.schemas import ServeState
from jupyter_modelserve.service import ServeService
from jupyter_modelserve.settings import ModelServeSettings
from jupyter_modelserve.widgets import NOT_SERVED, ServePanel


@pytest.fixture
def local_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServeService]:
    """A ServeService on the local backend, with its registry and model server under tmp_path."""
    # Before building: the model server's state folder lives under the Jupyter data dir.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    settings = ModelServeSettings(
        config=Config({"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}}),
        db_url=f"sqlite:///{tmp_path / 'r.db'}",
        artifact_root=str(tmp_path / "artifacts"),
    )
    service = settings.build_service()
    yield service
    service.backend.stop_server()  # type: ignore[attr-defined]
    service.close()


@pytest.fixture
def simple(local_service: ServeService, half_plus_two: Path) -> Path:
    """`simple` version 1 registered; returns its artifact folder."""
    return Path(local_service.registry.register_saved_model(half_plus_two, "simple").source)


@pytest.fixture
def make_panel(local_service: ServeService) -> Iterator[Callable[[], ServePanel]]:
    panels: list[ServePanel] = []

    def make() -> ServePanel:
        panels.append(ServePanel(local_service, refresh_interval=0.1))
        return panels[-1]

    yield make
    for panel in panels:  # before the service fixture stops the model server
        panel.close()


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(0.02)


def served_state(service: ServeService, name: str, version: int) -> ServeState | None:
    states = {(s.model_name, s.model_version): s.state for s in service.list_serves()}
    return states.get((name, version))


def test_the_panel_lists_registered_versions_as_not_served(
    local_service: ServeService, half_plus_two: Path, make_panel: Callable[[], ServePanel]
) -> None:
    # Given two versions of `simple` in the registry and nothing served
    local_service.registry.register_saved_model(half_plus_two, "simple")
    local_service.registry.register_saved_model(half_plus_two, "simple")

    # When a panel is built
    panel = make_panel()

    # Then it has a row per version, each "not served", offering Serve but not Stop
    for version in (1, 2):
        row = panel.row("simple", version)
        assert row.state == NOT_SERVED and NOT_SERVED in row.badge.value
        assert not row.serve_button.disabled and row.stop_button.disabled
        assert row.url.value == ""
    assert not panel.refreshing and panel.error_area.value == ""


def test_serve_then_stop_from_the_panel(
    local_service: ServeService, simple: Path, make_panel: Callable[[], ServePanel]
) -> None:
    # Given a panel listing `simple` 1, not served
    panel = make_panel()
    row = panel.row("simple", 1)

    # When Serve is clicked
    row.serve_button.click()

    # Then the panel refreshes itself while it loads, until the service says AVAILABLE
    seen_refreshing = []

    def available_and_settled() -> bool:
        seen_refreshing.append(panel.refreshing)
        settled = not row.busy and not panel.refreshing
        return settled and served_state(local_service, "simple", 1) is ServeState.AVAILABLE

    eventually(available_and_settled, "simple 1 AVAILABLE and the panel settled")
    assert any(seen_refreshing), "the panel never auto-refreshed while the serve was loading"
    # And the row shows AVAILABLE with the serve's url, which predicts
    view = local_service.get("simple", 1)
    assert row.state == "AVAILABLE" and "AVAILABLE" in row.badge.value
    # And its badge is the very one a Serve shows in a notebook (one renderer for both)
    assert row.badge.value in Serve(view, local_service)._repr_html_()
    assert view.url and row.url.value == view.url and view.url in row.copy.value
    assert row.serve_button.disabled and not row.stop_button.disabled
    request = urllib.request.Request(
        view.url,
        data=json.dumps({"instances": [1.0]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response) == {"predictions": [2.5]}
    # And the url field stays as it is when someone types into it
    row.url.value = "edited"
    assert row.url.value == view.url

    # When Stop is clicked
    row.stop_button.click()

    # Then the service no longer lists the serve, and the row says "not served"
    eventually(lambda: not row.busy, "the Stop click to finish")
    assert local_service.list_serves() == []
    assert row.state == NOT_SERVED and NOT_SERVED in row.badge.value and row.url.value == ""
    assert not row.serve_button.disabled and row.stop_button.disabled
    assert not panel.refreshing and panel.error_area.value == ""


def test_a_model_that_fails_to_load_shows_failed_with_the_reason(
    local_service: ServeService, simple: Path, make_panel: Callable[[], ServePanel]
) -> None:
    # Given a registered version whose variables went missing after registration
    shutil.rmtree(simple / "variables")
    panel = make_panel()
    row = panel.row("simple", 1)

    # When Serve is clicked
    row.serve_button.click()

    # Then the row ends FAILED with the model server's reason, and Serve is offered again
    def failed_and_settled() -> bool:
        settled = not row.busy and not panel.refreshing
        return settled and served_state(local_service, "simple", 1) is ServeState.FAILED

    eventually(failed_and_settled, "simple 1 FAILED and the panel settled")
    view = local_service.get("simple", 1)
    assert view.reason and row.state == "FAILED" and "FAILED" in row.badge.value
    assert row.badge.value in Serve(view, local_service)._repr_html_()
    assert row.reason.layout.display != "none"
    assert html.escape(view.reason) in row.reason.value
    assert not row.serve_button.disabled and not row.stop_button.disabled


def test_a_service_error_shows_in_the_panel_instead_of_raising(
    local_service: ServeService, simple: Path, make_panel: Callable[[], ServePanel]
) -> None:
    # Given a panel listing `simple` 1, whose version is then deleted from the registry
    panel = make_panel()
    row = panel.row("simple", 1)
    local_service.registry.delete_model_version("simple", 1)

    # When Serve is clicked on the stale row
    row.serve_button.click()  # raises nothing into the caller

    # Then the service's one-line message appears in the panel's error area
    eventually(lambda: not row.busy, "the Serve click to finish")
    assert html.escape("model 'simple' has no version 1") in panel.error_area.value
    # And the panel dropped the row of the version that is gone
    with pytest.raises(KeyError):
        panel.row("simple", 1)
    assert local_service.list_serves() == []


def test_importing_the_panel_module_does_not_import_ipywidgets() -> None:
    code = "import sys, jupyter_modelserve.widgets; assert 'ipywidgets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_available_row_shows_its_traffic_and_copies_a_request_of_the_models_shape(
    local_service: ServeService, simple: Path, make_panel: Callable[[], ServePanel]
) -> None:
    # Given `simple` 1 served, and a panel that counts the details it reads
    view = local_service.create("simple", 1, wait=60)
    assert view.state is ServeState.AVAILABLE and view.url
    described: list[tuple[str, int]] = []
    describe = local_service.describe

    def counting_describe(name: str, version: int) -> Any:
        described.append((name, version))
        return describe(name, version)

    local_service.describe = counting_describe  # type: ignore[method-assign]
    panel = make_panel()
    row = panel.row("simple", 1)

    # Then the row shows no traffic yet, and copies a curl command with the model's body
    assert row.traffic.value == "0 requests, 0 errors"
    onclick = html.unescape(re.search(r'onclick="([^"]*)"', row.copy.value)[1])  # type: ignore[index]
    command = json.loads(re.fullmatch(r"navigator\.clipboard\.writeText\((.*)\)", onclick)[1])  # type: ignore[index]
    assert '{"instances": [0.0]}' in command
    ran = subprocess.run(["sh", "-c", command + " -s"], capture_output=True, text=True, timeout=60)
    assert json.loads(ran.stdout) == {"predictions": [2.0]}
    assert described == [("simple", 1)]

    # When it is called twice and the panel is updated
    for _ in range(2):
        body = json.dumps({"instances": [1.0]}).encode()
        request = urllib.request.Request(
            view.url, data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=30).read()
    panel.update()

    # Then the row counts them (the copied command's and two more), with their latency
    assert row.traffic.value.startswith("3 requests, 0 errors, p50 "), row.traffic.value

    # And the refresh timer, ticking while another serve loads, reads no details again
    panel._update(read_details=False)
    assert described == [("simple", 1), ("simple", 1)]
    assert row.traffic.value.startswith("3 requests"), row.traffic.value
