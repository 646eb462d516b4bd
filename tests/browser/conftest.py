"""Browser fixtures: one real JupyterLab per variant, one Debian chromium per session.

Skipped (with the reason) when /usr/bin/chromium or the built labextension is missing, unless
MODELSERVE_REQUIRE_BROWSER=1 (CI sets it): then a missing piece fails the run instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import LabProcess

CHROMIUM = Path("/usr/bin/chromium")
EXTENSION = "jupyter-modelserve"
# Flags that work in these containers (root, no GPU, no network but the local one).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# JupyterLab served at the root, and as JupyterHub starts a single-user server.
VARIANTS = {"plain": "/", "hub": "/user/alice/"}
REPO = Path(__file__).resolve().parents[2]


# Why a test that must run (MODELSERVE_REQUIRE_BROWSER=1) cannot; failed at its setup.
_REQUIRED_REASON = pytest.StashKey[str]()


def _missing_browser() -> str | None:
    """Why no browser test can run here, or None."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (pip) is not installed: pip install -e '.[test]'"
    return None


def _missing_labextension() -> str | None:
    """Why the sidebar tests cannot run here (the built extension is not installed), or None."""
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    for line in (listing.stdout + listing.stderr).splitlines():
        words = re.sub(r"\x1b\[[0-9;]*m", "", line).split()  # it colours "enabled" and "OK"
        if words[:1] == [EXTENSION] and "enabled" in words and "OK" in words:
            return None
    return f"the {EXTENSION} labextension is not installed and OK: pip install -e ."


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "labextension: needs the built jupyter-modelserve sidebar")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if not ours:
        return
    browser_reason = _missing_browser()
    sidebar = [item for item in ours if item.get_closest_marker("labextension")]
    extension_reason = _missing_labextension() if sidebar and not browser_reason else None
    required = os.environ.get("MODELSERVE_REQUIRE_BROWSER") == "1"
    for item in ours:
        reason = browser_reason or (extension_reason if item in sidebar else None)
        if reason is None:
            continue
        if required:  # CI: a missing piece is a failure, never a silent skip
            item.stash[_REQUIRED_REASON] = reason
        else:
            item.add_marker(pytest.mark.skip(reason=f"browser tests: {reason}"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = item.stash.get(_REQUIRED_REASON, None)
    if reason is not None:  # before any fixture starts a server or a browser
        pytest.fail(f"MODELSERVE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go: $MODELSERVE_TEST_ARTIFACTS, else build/screenshots (gitignored)."""
    folder = Path(os.environ.get("MODELSERVE_TEST_ARTIFACTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], LabProcess]]:
    """Start each JupyterLab variant once, on first use; stop all after the browser tests."""
    started: dict[str, LabProcess] = {}

    def get(variant: str) -> LabProcess:
        if variant not in started:
            lab = LabProcess(tmp_path_factory.mktemp(f"lab-{variant}"), VARIANTS[variant])
            started[variant] = lab
            lab.start()
        return started[variant]

    yield get
    for lab in started.values():
        lab.stop()
    leaked = [lab.log for lab in started.values() if lab.log_mentions_token()]
    assert not leaked, f"the token is in the server log: {leaked}"


@pytest.fixture(params=list(VARIANTS))
def any_lab(request: pytest.FixtureRequest, labs: Callable[[str], LabProcess]) -> LabProcess:
    """Each JupyterLab variant in turn (plain, then under JupyterHub's /user/alice/)."""
    return labs(request.param)


@pytest.fixture
def lab(labs: Callable[[str], LabProcess]) -> LabProcess:
    """The plain JupyterLab variant."""
    return labs("plain")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope: Playwright's sync API keeps its event loop running in this thread until
    # it stops, and the in-process Jupyter servers of the tests after these need the thread's
    # loop to themselves.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep the call phase's report on the item, for `page` to screenshot a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def _file_name(test_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name)


class PageErrors:
    """Uncaught exceptions and unhandled rejections of a page; any one fails the test."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, error: Any) -> None:
        self.errors.append(str(error))


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Any, any_or_plain_lab: LabProcess, artifacts_dir: Path
) -> Iterator[Any]:
    """A logged-in JupyterLab page of the test's server; fails the test on any page error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    # The copy buttons write to the system clipboard; the tests read it back.
    context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=f"http://127.0.0.1:{any_or_plain_lab.port}"
    )
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", errors)
    log_in(page, any_or_plain_lab)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:  # what the page showed when the test failed
        page.screenshot(path=str(artifacts_dir / f"failed-{_file_name(request.node.name)}.png"))
    context.close()
    try:
        assert not errors.errors, f"errors in the page: {errors.errors}"
    finally:
        any_or_plain_lab.stop_all_serves()  # the next test starts with nothing served


@pytest.fixture
def any_or_plain_lab(request: pytest.FixtureRequest) -> LabProcess:
    """The server a test asked for: `any_lab` when it uses that fixture, else `lab`."""
    name = "any_lab" if "any_lab" in request.fixturenames else "lab"
    server: LabProcess = request.getfixturevalue(name)
    return server


def log_in(page: Any, lab: LabProcess) -> None:
    """Log in through Jupyter's login form, as a user pasting the token would (the token never
    appears in a URL, so Playwright's errors and traces cannot show it), then open /lab."""
    from playwright.sync_api import expect

    page.goto(lab.url + "login")
    page.locator("#password_input").fill(lab.login_secret())
    with page.expect_navigation():
        page.locator("#login_submit").click()
    page.goto(lab.url + "lab?reset")  # the default layout, whatever an earlier test left open
    # JupyterLab has started once the splash screen is gone and it has laid out the default
    # workspace: the launcher, and the file browser activated in the left area (done after
    # the splash goes; a tab clicked before that would be switched away from).
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=60_000)
    expect(page.locator('li.lm-TabBar-tab[data-id="filebrowser"]')).to_have_attribute(
        "aria-selected", "true", timeout=60_000
    )
    expect(page.locator(".jp-FileBrowser .jp-DirListing-content")).to_be_visible()


# pytest-jupyter (a plugin of the root conftest) has two autouse fixtures for tests that run a
# server in-process: one closes the current event loop after each test (here that is
# Playwright's own), the other cleans up ServerApp.instance(). These tests run JupyterLab as a
# process of its own and need neither.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None
