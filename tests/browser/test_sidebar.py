"""The "Model Serving" sidebar in a real browser against a real JupyterLab and model server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import log_in
from .lab import LabProcess
from .sidebar import (
    SERVE_TIMEOUT_MS,
    ApiRequests,
    badge,
    copy_saved_model,
    label,
    open_left_tab,
    open_sidebar,
    signature_rows,
    switch_theme,
    version_row,
    wait_for_request_count_above,
)

pytestmark = pytest.mark.labextension

SIMPLE = label("simple", 1)
# What "Try it" holds until the panel read the version's example request (components.tsx).
DEFAULT_REQUEST = '{"instances": [1.0, 2.0, 5.0]}'


def test_serve_predict_logs_and_stop(page: Any, any_lab: LabProcess) -> None:
    # Given JupyterLab (at the root, and under JupyterHub's /user/alice/) with the demo model
    # `simple` 1 registered and nothing served
    # When the user opens the Model Serving sidebar
    panel = open_sidebar(page)
    # Then `simple` 1 is listed, not served
    expect(panel.get_by_role("group", name="simple")).to_be_visible()
    expect(badge(panel, "simple", 1)).to_have_attribute("data-state", "NONE")
    expect(badge(panel, "simple", 1)).to_have_text("not served")

    # When they click Serve on it
    panel.get_by_role("button", name=f"Serve {SIMPLE}").click()
    # Then its badge reaches AVAILABLE and shows the urls the server reports
    expect(badge(panel, "simple", 1)).to_have_attribute(
        "data-state", "AVAILABLE", timeout=SERVE_TIMEOUT_MS
    )
    expect(badge(panel, "simple", 1)).to_have_text("AVAILABLE")
    serve = any_lab.serves()[("simple", 1)]
    row = version_row(panel, "simple", 1)
    expect(row).to_contain_text(serve["url"])
    expect(row).to_contain_text(serve["proxyUrl"])
    assert serve["proxyUrl"].startswith(any_lab.url), serve  # JupyterHub's prefix kept
    for copy in ("Copy URL of", "Copy proxy URL of", "Copy curl command for"):
        expect(panel.get_by_role("button", name=f"{copy} {SIMPLE}")).to_be_visible()
    # and its signature, as the server's GET one describes it, and its request count
    described = any_lab.described("simple", 1)
    signature = panel.get_by_role("table", name=f"Signature of {SIMPLE}")
    expect(signature).to_be_visible()
    assert signature_rows(signature) == [
        [kind, spec["name"], spec["dtype"]]
        for kind, specs in (("in", described["signature"]["inputs"]),
                            ("out", described["signature"]["outputs"]))
        for spec in specs
    ], described["signature"]  # fmt: skip
    metrics = panel.get_by_label(f"Metrics of {SIMPLE}", exact=True)
    expect(metrics).to_have_attribute("data-request-count", re.compile(r"^\d+$"))
    count_before = int(metrics.get_attribute("data-request-count") or "")

    # When they predict with what "Try it" holds
    request = panel.get_by_role("textbox", name=f"Request for {SIMPLE}")
    example = described["exampleRequest"]
    assert example == {"instances": [0.0]}, described  # half_plus_two: one float
    # Then it holds the server's example request (once the panel read it)
    expect(request).not_to_have_value(DEFAULT_REQUEST)
    assert json.loads(request.input_value()) == example, request.input_value()
    panel.get_by_role("button", name=f"Predict with {SIMPLE}").click()
    # Then half_plus_two answers it (0.5 * 0 + 2), through the proxy on the page's origin
    prediction = panel.get_by_role("status", name=f"Prediction of {SIMPLE}")
    expect(prediction).to_contain_text("predictions")
    assert json.loads(prediction.inner_text()) == {"predictions": [2.0]}
    # and the request count the panel shows went up, as far as the model server's
    count_after = wait_for_request_count_above(page, metrics, count_before)
    assert count_after <= any_lab.described("simple", 1)["metrics"]["requestCount"]

    # When they type a request of their own in "Try it" and predict
    request.fill('{"instances": [1.0, 2.0, 5.0]}')
    panel.get_by_role("button", name=f"Predict with {SIMPLE}").click()
    # Then the answer is half_plus_two's: 0.5 * x + 2
    expect(prediction).to_contain_text("4.5")
    assert json.loads(prediction.inner_text()) == {"predictions": [2.5, 3.0, 4.5]}

    # When they predict with a request the model cannot take
    request.fill('{"instances": ["not a number"]}')
    panel.get_by_role("button", name=f"Predict with {SIMPLE}").click()
    # Then TF Serving's own error is shown, the one the proxy answers
    refusal = any_lab.session().post(serve["proxyUrl"], json={"instances": ["not a number"]})
    assert refusal.status_code == 400 and refusal.json()["error"], refusal.text
    expect(prediction).to_contain_text(refusal.json()["error"])

    # When they copy its curl line and run it in a shell
    panel.get_by_role("button", name=f"Copy curl command for {SIMPLE}").click()
    curl = shlex.split(page.evaluate("navigator.clipboard.readText()"))
    # Then it is a curl that posts the example request straight to the model server
    assert curl[0] == "curl" and "Content-Type: application/json" in curl, curl
    assert serve["url"] in curl, curl
    assert json.loads(curl[curl.index("-d") + 1]) == example, curl
    # and it predicts
    answer = subprocess.run(
        [*curl, "--silent", "--max-time", "60"], capture_output=True, check=True
    )
    assert json.loads(answer.stdout) == {"predictions": [2.0]}, answer

    # When they ask for its logs
    panel.get_by_role("button", name=f"Show logs of {SIMPLE}").click()
    # Then the model server's lines about it are shown, the ones the REST API returns
    logs = panel.get_by_label(f"Logs of {SIMPLE}", exact=True)
    expect(logs).not_to_be_empty()
    code, envelope = any_lab.call("GET", "api/v1/serve/simple/1/logs")
    assert code == 200, envelope
    shown = [line for line in logs.inner_text().splitlines() if line.strip()]
    assert shown and set(shown) & set(envelope["result"]), (shown, envelope["result"])

    # When they stop it
    panel.get_by_role("button", name=f"Stop {SIMPLE}").click()
    # Then it is gone: the badge says not served again, and so does the server
    expect(badge(panel, "simple", 1)).to_have_attribute("data-state", "NONE", timeout=60_000)
    expect(badge(panel, "simple", 1)).to_have_text("not served")
    expect(panel.get_by_role("button", name=f"Serve {SIMPLE}")).to_be_visible()
    assert ("simple", 1) not in any_lab.serves()


def test_register_a_folder_from_the_file_browser(page: Any, lab: LabProcess) -> None:
    # Given a SavedModel folder `my_model/` in the server's root folder, in the file browser
    copy_saved_model(lab, lab.root_dir / "my_model")
    open_left_tab(page, "filebrowser")
    page.locator('.jp-FileBrowser [data-command="filebrowser:refresh"]').click()
    folder = page.locator('.jp-DirListing-item[data-isdir="true"]', has_text="my_model")
    expect(folder).to_be_visible()

    # When the user right-clicks it, chooses "Register as model…" and accepts the name offered
    folder.click(button="right")
    page.get_by_role("menuitem", name="Register as model…").click()
    name = page.get_by_role("textbox", name="Model name")
    expect(name).to_have_value("my_model")
    page.get_by_role("button", name="Register", exact=True).click()

    # Then version 1 of `my_model` is in the registry and appears in the sidebar, not served
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    panel = open_sidebar(page)
    expect(panel.get_by_role("group", name="my_model")).to_be_visible()
    expect(badge(panel, "my_model", 1)).to_have_attribute("data-state", "NONE")
    code, envelope = lab.call("GET", "api/v1/model-version/my_model")
    assert code == 200, envelope
    assert [v["version"] for v in envelope["result"]] == [1]


def test_a_failed_serve_shows_its_reason(page: Any, lab: LabProcess, tmp_path: Path) -> None:
    # Given a version `broken` 1 registered from a good folder, whose copy in the registry's
    # artifact root then got corrupt (its variables overwritten with garbage)
    lab.register("broken", copy_saved_model(lab, tmp_path / "broken"))
    variables = sorted((lab.artifact_root / "broken" / "1" / "variables").glob("variables.data-*"))
    assert variables, "the registry keeps no variables for broken 1"
    for data in variables:
        data.write_bytes(b"this is not a tensor bundle" * 64)
    panel = open_sidebar(page)
    panel.get_by_role("button", name="Refresh").click()

    # When the user serves it
    panel.get_by_role("button", name=f"Serve {label('broken', 1)}").click()

    # Then the badge says FAILED, with the server's reason on hover and in a details row
    failed = badge(panel, "broken", 1)
    expect(failed).to_have_attribute("data-state", "FAILED", timeout=SERVE_TIMEOUT_MS)
    reason = lab.serves()[("broken", 1)]["reason"]
    assert reason, "the server gave no reason for the FAILED serve"
    expect(failed).to_have_attribute("title", reason)
    details = version_row(panel, "broken", 1).locator(".jp-ModelServe-reason")
    expect(details).to_contain_text(reason)
    # and it can be stopped (or served again) from there
    expect(panel.get_by_role("button", name=f"Stop {label('broken', 1)}")).to_be_visible()


def test_a_rest_error_is_shown_in_the_panel(page: Any, lab: LabProcess, tmp_path: Path) -> None:
    # Given the sidebar listing `gone` 1, a version deleted from the registry behind its back
    lab.register("gone", copy_saved_model(lab, tmp_path / "gone"))
    requests = ApiRequests(page)
    panel = open_sidebar(page)
    panel.get_by_role("button", name="Refresh").click()
    serve = panel.get_by_role("button", name=f"Serve {label('gone', 1)}")
    expect(serve).to_be_visible()
    # (every read the page started has answered, so none still on its way can take the row
    # away once the version is deleted below)
    requests.wait_until_answered()
    code, envelope = lab.call("DELETE", "api/v1/model-version/gone/1")
    assert code == 200, envelope

    # When the user clicks Serve on it
    serve.click()

    # Then the server's refusal is said in the panel's alert area, as the server words it
    code, refusal = lab.call("POST", "api/v1/serve", {"modelName": "gone", "modelVersion": 1})
    assert code == 404, refusal
    expect(panel.get_by_role("alert")).to_contain_text(refusal["message"])


def test_a_serve_made_elsewhere_shows_when_the_panel_is_shown(
    page: Any, lab: LabProcess, tmp_path: Path
) -> None:
    # Given the sidebar open with `other` 1 not served, then hidden behind the file browser
    lab.register("other", copy_saved_model(lab, tmp_path / "other"))
    panel = open_sidebar(page)
    panel.get_by_role("button", name="Refresh").click()
    expect(badge(panel, "other", 1)).to_have_attribute("data-state", "NONE")
    open_left_tab(page, "filebrowser")
    expect(panel).to_be_hidden()

    # When `other` 1 is served over REST (a notebook or a script would do the same)
    body = {"modelName": "other", "modelVersion": 1}
    code, envelope = lab.call("POST", "api/v1/serve?wait=60", body)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope

    # Then showing the sidebar again shows it AVAILABLE, with no click on Refresh
    open_left_tab(page, "jupyter-modelserve-sidebar")
    expect(badge(panel, "other", 1)).to_have_attribute("data-state", "AVAILABLE")


def test_keyboard_only(page: Any, lab: LabProcess) -> None:
    # Given JupyterLab with `simple` 1 not served
    # When the user opens the sidebar from the command palette, typing only
    page.keyboard.press("Control+Shift+C")
    expect(page.locator(".jp-ModalCommandPalette .lm-CommandPalette-input")).to_be_focused()
    page.keyboard.type("Open Model Serving")
    active = page.locator(".jp-ModalCommandPalette .lm-CommandPalette-item.lm-mod-active")
    expect(active).to_contain_text("Open Model Serving")
    page.keyboard.press("Enter")
    # Then the sidebar is shown
    panel = page.locator("#jupyter-modelserve-sidebar .jp-ModelServe")
    expect(panel).to_be_visible()

    # When they serve `simple` 1 with Enter on its focused Serve button
    panel.get_by_role("button", name=f"Serve {SIMPLE}").focus()
    page.keyboard.press("Enter")
    # Then it reaches AVAILABLE, and the focus stayed on the button, which now says Stop
    expect(badge(panel, "simple", 1)).to_have_attribute(
        "data-state", "AVAILABLE", timeout=SERVE_TIMEOUT_MS
    )
    expect(panel.get_by_role("button", name=f"Stop {SIMPLE}")).to_be_focused()
    # When they press Space there
    page.keyboard.press(" ")
    # Then it stops, and the focus is back on Serve, ready for the next key
    expect(badge(panel, "simple", 1)).to_have_attribute("data-state", "NONE", timeout=60_000)
    expect(panel.get_by_role("button", name=f"Serve {SIMPLE}")).to_be_focused()


def test_screenshots_light_and_dark(page: Any, lab: LabProcess, artifacts_dir: Path) -> None:
    # Given `simple` 1 served and AVAILABLE, with a prediction shown in the sidebar
    code, envelope = lab.call(
        "POST", "api/v1/serve?wait=120", {"modelName": "simple", "modelVersion": 1}
    )
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    panel = open_sidebar(page)
    panel.get_by_role("button", name="Refresh").click()  # served behind the page's back
    expect(badge(panel, "simple", 1)).to_have_attribute("data-state", "AVAILABLE")
    expect(panel.get_by_label(f"Metrics of {SIMPLE}", exact=True)).to_be_visible()
    panel.get_by_role("button", name=f"Predict with {SIMPLE}").click()
    expect(panel.get_by_role("status", name=f"Prediction of {SIMPLE}")).to_contain_text("2.0")

    # When the page is photographed in the light theme, then in the dark one
    shots = {}
    try:
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            switch_theme(page, theme)
            # the whole window, and the sidebar with the menu bar above it (for the README)
            page.screenshot(path=str(artifacts_dir / f"jupyterlab-{suffix}.png"))
            shots[suffix] = artifacts_dir / f"model-serving-sidebar-{suffix}.png"
            page.screenshot(path=str(shots[suffix]), clip=_sidebar_clip(page, panel))
            # Then the badge's colour follows the theme's own success colour
            expect(badge(panel, "simple", 1)).to_be_visible()
            assert _badge_uses_theme_colour(page), f"the AVAILABLE badge ignores {theme}'s colours"
    finally:
        switch_theme(page, "JupyterLab Light")  # the theme is a saved setting: put it back
    assert all(shot.stat().st_size > 10_000 for shot in shots.values()), shots


def _sidebar_clip(page: Any, panel: Any) -> dict[str, float]:
    """The window's top-left corner: the sidebar down to its last model, and a bit beside."""
    box = panel.bounding_box()
    last = panel.get_by_role("group").last.bounding_box()
    assert box is not None and last is not None, "the sidebar shows no model"
    width = page.viewport_size["width"]
    return {"x": 0, "y": 0, "width": min(width, box["x"] + box["width"] + 360),
            "height": last["y"] + last["height"] + 24}  # fmt: skip


def _badge_uses_theme_colour(page: Any) -> bool:
    """Whether the AVAILABLE badge's background or text colour is --jp-success-color1 now."""
    return bool(
        page.evaluate(
            """() => {
                const badge = document.querySelector(
                    '.jp-ModelServe-badge[data-state="AVAILABLE"]');
                const probe = document.createElement('span');
                probe.style.color = 'var(--jp-success-color1)';
                document.body.appendChild(probe);
                const success = getComputedStyle(probe).color;
                probe.remove();
                const style = getComputedStyle(badge);
                return [style.backgroundColor, style.color, style.borderColor].includes(success);
            }"""
        )
    )


def test_polls_only_while_a_serve_is_in_progress(browser: Any, lab: LabProcess) -> None:
    # Given a page whose timers run on Playwright's clock, so minutes pass on request
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.clock.install()
    listings: list[str] = []  # the panel's requests of the serve list
    others: list[str] = []  # JupyterLab's own (sessions, kernels, contents...)
    page.on(
        "request",
        lambda r: (listings if "/api/v1/serve" in r.url else others).append(r.url),
    )
    try:
        log_in(page, lab)
        panel = open_sidebar(page)
        # and `simple` 1 served from the sidebar, which refreshes until it is AVAILABLE
        panel.get_by_role("button", name=f"Serve {SIMPLE}").click()
        expect(badge(panel, "simple", 1)).to_have_attribute(
            "data-state", "AVAILABLE", timeout=SERVE_TIMEOUT_MS
        )

        # When ten minutes pass with nothing PENDING, LOADING or DELETING
        listings.clear()
        others.clear()
        page.clock.run_for(10 * 60 * 1000)

        # Then the panel asked the server nothing more, while JupyterLab's own pollers did (so
        # the clock really drove the page's timers)
        assert any("/api/sessions" in url or "/api/kernels" in url for url in others), others
        assert listings == [], f"the idle panel still polls: {listings[:5]}"
    finally:
        context.close()
        lab.stop_all_serves()
    assert not errors, f"errors in the page: {errors}"
