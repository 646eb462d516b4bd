"""ServePanel: the notebook's table of model versions with Serve / Stop buttons and live state.

    from jupyter_modelserve.widgets import ServePanel
    ServePanel()

It calls the same `ServeService` as the REST API. ipywidgets is imported only when a panel is
built (as dask's cluster widget does), so importing this module stays cheap for kernels and
servers that never show one. Plain ipywidgets 8: it renders alike in JupyterLab and Notebook 7.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .display import NOT_SERVED, state_badge, state_label
from .errors import ModelServeError
from .results import curl_command, metrics_text
from .schemas import ServeState, ServeView
from .servestate import in_progress

if TYPE_CHECKING:
    from .service import ServeService

log = logging.getLogger(__name__)

_WIDTHS = ("140px", "60px", "110px", "70px", "70px", "360px", "60px", "230px", "110px")
_HEADERS = ("model", "version", "state", "", "", "url", "", "traffic", "")
Key = tuple[str, int]  # a model version: (name, version)
DETAILED_ROWS = 50  # AVAILABLE rows whose signature and traffic one update reads, at most
_DETAIL_FIELDS = ("signature", "example_request", "metrics")  # what ServeService.describe adds


class PanelRow:
    """The widgets of one model version; `panel.row(name, version)` returns it."""

    def __init__(self, panel: ServePanel, name: str, version: int) -> None:
        import ipywidgets as widgets

        self.name, self.version = name, version
        self.state = NOT_SERVED  # the word its badge shows
        self.busy = False  # a Serve/Stop call of this row is running in a worker thread
        self._url = ""
        self._serve_state: ServeState | None = None
        cell = [widgets.Layout(width=width) for width in _WIDTHS]
        self.name_label = widgets.HTML(f"<b>{html.escape(name)}</b>", layout=cell[0])
        self.version_label = widgets.HTML(str(version), layout=cell[1])
        self.badge = widgets.HTML(layout=cell[2])
        self.serve_button = widgets.Button(description="Serve", button_style="success")
        self.serve_button.layout = cell[3]
        self.stop_button = widgets.Button(description="Stop", button_style="danger")
        self.stop_button.layout = cell[4]
        self.url = widgets.Text(
            placeholder="no url yet",
            tooltip="predict url: select it, or press copy",
            layout=cell[5],
        )
        self.copy = widgets.HTML(layout=cell[6])
        self.traffic = widgets.HTML(layout=cell[7])
        self.status = widgets.HTML(layout=cell[8])
        self.reason = widgets.HTML(layout=widgets.Layout(display="none", margin="0 0 4px 10px"))
        self.serve_button.on_click(lambda _button: panel._start(self, "serve"))
        self.stop_button.on_click(lambda _button: panel._start(self, "stop"))
        # ipywidgets has no read-only Text, and a disabled one cannot be selected in every
        # browser: keep it editable and put the url back whenever someone types into it.
        self.url.observe(self._keep_url, names="value")
        cells = [self.name_label, self.version_label, self.badge, self.serve_button]
        cells += [self.stop_button, self.url, self.copy, self.traffic, self.status]
        self.box = widgets.VBox([widgets.HBox(cells), self.reason])

    def show(self, view: ServeView | None) -> None:
        """Show a serve (None: not served) as the service last reported it."""
        serve_state = view.state if view is not None else None
        self.state = state_label(serve_state)
        self.badge.value = state_badge(serve_state)
        self._url = (view.url or "") if view is not None else ""
        self.url.value = self._url
        # The button copies a curl command whose body fits the model's signature, once known.
        example = view.example_request if view is not None else None
        command = curl_command(self._url, example) if self._url else ""
        self.copy.value = _copy_button(command) if command else ""
        metrics = view.metrics if view is not None and view.state is ServeState.AVAILABLE else None
        self.traffic.value = html.escape(metrics_text(metrics)) if metrics is not None else ""
        reason = view.reason if view is not None else None
        style = "color:#dc3545" if serve_state is ServeState.FAILED else "color:#6c757d"
        self.reason.value = f'<span style="{style}">{html.escape(reason or "")}</span>'
        self.reason.layout.display = "flex" if reason else "none"
        self._serve_state = serve_state
        self._enable()

    def set_busy(self, status: str) -> None:
        self.busy = bool(status)
        self.status.value = f"<i>{html.escape(status)}</i>" if status else ""
        self._enable()

    def _enable(self) -> None:
        state = self._serve_state
        # Serve is offered for a version that is not served, and again for a FAILED one (a
        # retry); Stop for anything served that is not being stopped already.
        self.serve_button.disabled = self.busy or state not in (None, ServeState.FAILED)
        self.stop_button.disabled = self.busy or state in (None, ServeState.DELETING)

    def _keep_url(self, change: dict[str, Any]) -> None:
        if change["new"] != self._url:
            self.url.value = self._url

    def close(self) -> None:
        for child in (*self.box.children[0].children, self.box.children[0], self.reason):
            child.close()
        self.box.close()


class ServePanel:
    """Registered model versions with Serve / Stop buttons and live serve state."""

    def __init__(self, service: ServeService | None = None, refresh_interval: float = 1.0) -> None:
        import ipywidgets as widgets

        if service is None:
            from . import api

            service = api.service()
        self.service = service
        self.refresh_interval = refresh_interval
        self._rows: dict[tuple[str, int], PanelRow] = {}
        self._detailed: dict[Key, ServeView] = {}  # the last details read, by serve
        # One update at a time, fetch and display together: an older listing must never
        # overwrite a newer one, and the refresh decision follows the latest listing.
        self._update_lock = threading.Lock()
        self._refreshing = False
        self._stop_timer = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._closed = False
        self._update_failed = False
        self.error_area = widgets.HTML()
        self._empty = widgets.HTML(
            "<i>No registered models yet: register one with "
            "<code>jupyter_modelserve.api.register(model, name)</code>.</i>"
        )
        header = [
            widgets.HTML(f"<b>{title}</b>", layout=widgets.Layout(width=width))
            for title, width in zip(_HEADERS, _WIDTHS, strict=True)
        ]
        self._header = widgets.HBox(header)
        self._table = widgets.VBox()
        self.widget = widgets.VBox([self._table, self.error_area])
        self.update()

    @property
    def refreshing(self) -> bool:
        """Whether the panel is refreshing itself (a serve is PENDING or LOADING)."""
        return self._refreshing

    def row(self, name: str, version: int) -> PanelRow:
        """The row of a model version; KeyError when the panel does not list it."""
        return self._rows[(name, int(version))]

    def update(self) -> None:
        """Rebuild the view from the service: one listing of serves, one of the registry, and
        the details (signature, traffic) of every AVAILABLE serve."""
        self._update(read_details=True)

    def _update(self, read_details: bool) -> None:
        with self._update_lock:
            if self._closed:
                return
            try:
                serves = {(s.model_name, s.model_version): s for s in self.service.list_serves()}
                serves.update(self._details(serves, read_details))
                registry = self.service.registry
                keys = {
                    (v.name, v.version)
                    for m in registry.list_registered_models()
                    for v in registry.list_model_versions(m.name)
                }
            except Exception as error:  # the timer thread must survive a backend hiccup
                self._show_error(error)
                self._update_failed = True
                return
            if self._update_failed:  # that problem is over; a click's error stays visible
                self._update_failed = False
                self.error_area.value = ""
            self._show(serves, keys | set(serves))
            self._set_refreshing(any(in_progress(s.state) for s in serves.values()))

    def _details(self, serves: dict[Key, ServeView], read_all: bool) -> dict[Key, ServeView]:
        """AVAILABLE serves with their signature (for the copied request) and traffic.

        Each costs a read of the model server, so the timer (which ticks while anything
        loads) reads only serves it has no details of yet; `update()` reads them all again.
        A serve whose details cannot be read keeps its listed view: one bad row breaks none.
        """
        available = sorted(k for k, view in serves.items() if view.state is ServeState.AVAILABLE)
        known = {k: v for k, v in self._detailed.items() if k in available}
        detailed: dict[Key, ServeView] = {}
        for key in available[:DETAILED_ROWS]:
            if key in known and not read_all:
                detailed[key] = serves[key].model_copy(
                    update={f: getattr(known[key], f) for f in _DETAIL_FIELDS}
                )
                continue
            try:
                detailed[key] = self.service.describe(*key)
            except Exception:  # one serve's details must never break the panel
                log.debug("ServePanel: details of %s %s", *key, exc_info=True)
        self._detailed = detailed
        return detailed

    def close(self, timeout: float = 10.0) -> None:
        """Stop refreshing, wait briefly for running clicks, and close every widget."""
        with self._update_lock:
            self._closed = True
            self._refreshing = False
            self._stop_timer.set()
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        for row in self._rows.values():
            row.close()
        for widget in (self._header, self._empty, self._table, self.error_area, self.widget):
            widget.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _show(self, serves: dict[tuple[str, int], ServeView], keys: set[tuple[str, int]]) -> None:
        for key in sorted(keys):
            if key not in self._rows:
                self._rows[key] = PanelRow(self, *key)
            self._rows[key].show(serves.get(key))
        for key in set(self._rows) - keys:
            self._rows.pop(key).close()
        boxes = [self._rows[key].box for key in sorted(self._rows)]
        children = (self._header, *boxes) if boxes else (self._empty,)
        if tuple(self._table.children) != children:  # re-sending it would flicker the table
            self._table.children = children

    def _set_refreshing(self, wanted: bool) -> None:
        # Called under the update lock, so a stopping timer and a new PENDING serve cannot
        # cross: the latest listing decides, and a fresh timer starts when it needs one.
        if wanted and not self._refreshing:
            self._stop_timer = threading.Event()
            self._spawn("refresh", self._refresh_loop, self._stop_timer)
        elif not wanted:
            self._stop_timer.set()
        self._refreshing = wanted

    def _refresh_loop(self, stop: threading.Event) -> None:
        # A periodic timer: the event only cuts the wait short when the panel stops refreshing.
        while not stop.wait(self.refresh_interval):
            self._update(read_details=False)

    def _start(self, row: PanelRow, action: str) -> None:
        """A click: the service call runs in a worker so the kernel stays responsive."""
        if row.busy or self._closed:
            return
        self.error_area.value = ""
        row.set_busy("Serving…" if action == "serve" else "Stopping…")
        self._spawn(f"{action}-{row.name}-{row.version}", self._run, row, action)

    def _run(self, row: PanelRow, action: str) -> None:
        try:
            if action == "serve":
                self.service.create(row.name, row.version)
            else:
                self.service.delete(row.name, row.version)
        except Exception as error:  # shown in the panel: nothing may raise into the kernel
            self._show_error(error)
        finally:
            # Update first: once a row is no longer busy, it already shows the outcome.
            self.update()
            row.set_busy("")

    def _show_error(self, error: Exception) -> None:
        if isinstance(error, ModelServeError):
            message = str(error)
        else:  # a bug: the panel shows one line, the traceback goes to the log
            log.debug("ServePanel: unexpected error", exc_info=error)
            message = f"internal error: {error}"
        self.error_area.value = (
            f'<div style="color:#dc3545;white-space:pre-wrap">{html.escape(message)}</div>'
        )

    def _spawn(self, label: str, target: Callable[..., None], *args: Any) -> None:
        # Daemon threads: a kernel shutting down must not wait for a panel's refresh.
        thread = threading.Thread(target=target, args=args, name=f"ServePanel-{label}", daemon=True)
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()


def _copy_button(command: str) -> str:
    # The clipboard is the browser's, so copying is a line of inline JS in plain HTML (no custom
    # widget); json.dumps makes it a JS string, html.escape makes that an attribute value.
    script = html.escape(f"navigator.clipboard.writeText({json.dumps(command)})", quote=True)
    title = "copy a curl command that predicts with a request of the model's shape"
    return f'<button title="{title}" onclick="{script}">copy</button>'


__all__ = ["NOT_SERVED", "PanelRow", "ServePanel"]
