"""The notebook's ServePanel (ipywidgets) rendered in JupyterLab, clicked in a real browser."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .lab import LabProcess

# A serve starts a TF Serving load; on two shared cores this takes seconds, not minutes.
SERVE_TIMEOUT_MS = 120_000


def panel_row(page: Any, name: str, version: int) -> Any:
    """The panel's row of a model version: an HBox whose first cells are <b>name</b>, version."""
    return (
        page.locator(".jp-OutputArea-output .widget-hbox")
        .filter(has=page.locator("b").get_by_text(name, exact=True))
        .filter(has=page.locator(".widget-html").get_by_text(str(version), exact=True))
    )


def test_serve_panel_serves_from_a_notebook(page: Any, lab: LabProcess) -> None:
    # Given a notebook in the server's root folder whose cell displays a ServePanel
    lab.put_notebook(
        "serve_panel.ipynb", ["from jupyter_modelserve import ServePanel\nServePanel()"]
    )
    # and that notebook open in JupyterLab with its kernel (the venv's python3) ready
    page.goto(lab.url + "lab/tree/serve_panel.ipynb")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    # (the status bar, not the toolbar's indicator, which says "idle" before the kernel exists)
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        "Python 3 (ipykernel) | Idle", timeout=60_000
    )

    # When the cell runs
    notebook.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    expect(notebook.locator(".jp-InputPrompt").first).to_have_text("[1]:", timeout=60_000)

    # Then the panel renders a row for the demo model `simple` 1, not served
    row = panel_row(page, "simple", 1)
    expect(row).to_have_count(1, timeout=60_000)
    badge = row.locator(".widget-html").nth(2)
    expect(badge).to_have_text("not served")

    # When Serve is clicked in that row
    row.get_by_role("button", name="Serve", exact=True).click()

    # Then its badge turns AVAILABLE, with the model server's url beside it
    expect(badge).to_have_text("AVAILABLE", timeout=SERVE_TIMEOUT_MS)
    expect(row.locator("input")).to_have_value(
        re.compile(r"^http://.*/v1/models/simple/versions/1:predict$")
    )
    # and the server agrees: the kernel served it through the same registry and backend
    assert lab.serves()[("simple", 1)]["state"] == "AVAILABLE"
