"""The "Model Serving" sidebar as the UI contract of issue 9 names its parts (roles, labels,
classes and data attributes), so the tests read as a user's steps."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from .lab import LabProcess

# A serve starts a TF Serving load; on two shared cores that takes seconds, not minutes.
SERVE_TIMEOUT_MS = 120_000
SIDEBAR_ID = "jupyter-modelserve-sidebar"


def open_sidebar(page: Any) -> Any:
    """Click the left-area tab "Model Serving"; returns the panel (class jp-ModelServe)."""
    tab = page.get_by_role("tab", name="Model Serving")
    expect(tab).to_have_attribute("data-id", SIDEBAR_ID)
    open_left_tab(page, SIDEBAR_ID)
    panel = page.locator(f"#{SIDEBAR_ID} .jp-ModelServe")
    expect(panel).to_be_visible()
    return panel


def open_left_tab(page: Any, widget_id: str) -> None:
    """Show a left-area panel by its tab; clicking the tab of the open one would close it."""
    tab = page.locator(f'li.lm-TabBar-tab[data-id="{widget_id}"]')
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def version_row(panel: Any, name: str, version: int) -> Any:
    return panel.locator(f'.jp-ModelServe-version[data-model="{name}"][data-version="{version}"]')


def badge(panel: Any, name: str, version: int) -> Any:
    return version_row(panel, name, version).locator(".jp-ModelServe-badge")


def signature_rows(table: Any) -> list[list[str]]:
    """A signature table's rows as [in/out, name, dtype] (the shape is TF's notation)."""
    rows = table.locator("tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("th, td").all_inner_texts()[:3]]
        for i in range(rows.count())
    ]


def wait_for_request_count_above(page: Any, metrics: Any, count: int) -> int:
    """Wait (with the page's default deadline) until the metrics list shows more than `count`
    requests; returns what it shows then."""
    page.wait_for_function(
        "([element, count]) => Number(element.getAttribute('data-request-count')) > count",
        arg=[metrics.element_handle(), count],
    )
    return int(metrics.get_attribute("data-request-count") or "")


def label(name: str, version: int) -> str:
    """How the contract's aria-labels name a version: "<name> version <n>"."""
    return f"{name} version {version}"


def copy_saved_model(lab: LabProcess, folder: Path) -> Path:
    """A good SavedModel version folder at `folder`: a copy of the demo model's artifact, the
    half_plus_two the server registered as `simple` 1 (the tests' own process then need not
    import TensorFlow to build one)."""
    shutil.copytree(lab.artifact_root / "simple" / "1", folder)
    return folder


def switch_theme(page: Any, theme: str) -> None:
    """Settings > Theme > `theme`, as a user does; waits until the page wears it."""
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    menu_item(page, "Theme").click()  # a submenu (Lumino gives submenus no role)
    menu_item(page, theme).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", theme)
    # JupyterLab shows its splash screen while the theme's CSS loads
    expect(page.locator("#jupyterlab-splash")).to_have_count(0)


def menu_item(page: Any, text: str) -> Any:
    """The item of an open menu whose label is exactly `text`."""
    label = page.locator(".lm-Menu-itemLabel").get_by_text(text, exact=True)
    return page.locator(".lm-Menu .lm-Menu-item").filter(has=label)


class ApiRequests:
    """The page's requests to the REST API (/api/v1/) that have not answered yet."""

    def __init__(self, page: Any) -> None:
        self._page = page
        self.pending: set[Any] = set()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Any) -> None:
        if "/api/v1/" in request.url:
            self.pending.add(request)

    def _ended(self, request: Any) -> None:
        self.pending.discard(request)

    def wait_until_answered(self, timeout: float = 30.0) -> None:
        """Poll, with a deadline, until every request sent so far has its answer."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"unanswered after {timeout} s: {self.pending}")
            self._page.wait_for_timeout(50)  # lets Playwright deliver the events it holds
