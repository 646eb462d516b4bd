"""What the Python API and the magic hand back, shaped to read well in a notebook.

A registered version, a model, a list of serves: each has a short text repr for a terminal and an
HTML table for a notebook, instead of a dataclass repr full of datetimes. They are values: read
once, never refreshed behind the caller's back.
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from .schemas import (
    ModelVersionView,
    RegisteredModelView,
    ServeMetrics,
    SignatureView,
    TensorSpecView,
)

Item = TypeVar("Item")


class Version:
    """A registered model version: `name`, `version`, `source`, `description`, `tags`..."""

    def __init__(self, view: ModelVersionView) -> None:
        self.view = view

    name = property(lambda self: self.view.name)
    version = property(lambda self: self.view.version)
    source = property(lambda self: self.view.source)
    description = property(lambda self: self.view.description)
    tags = property(lambda self: list(self.view.tags))
    stage = property(lambda self: self.view.current_stage)
    registered = property(lambda self: self.view.creation_time)

    def __repr__(self) -> str:
        about = f", {self.description!r}" if self.description else ""
        return f"Version({self.name!r}, {self.version}{about}, source={self.source!r})"

    def _repr_html_(self) -> str:
        return VERSION_TABLE.html([self])


class Model:
    """A registered model: `name`, `description`, `tags`."""

    def __init__(self, view: RegisteredModelView) -> None:
        self.view = view

    name = property(lambda self: self.view.name)
    description = property(lambda self: self.view.description)
    tags = property(lambda self: list(self.view.tags))

    def __repr__(self) -> str:
        about = f", {self.description!r}" if self.description else ""
        return f"Model({self.name!r}{about})"

    def _repr_html_(self) -> str:
        return MODEL_TABLE.html([self])


class Columns(Generic[Item]):
    """How one kind of item is shown as a table row: a text cell and an HTML cell per column."""

    def __init__(
        self,
        kind: str,
        columns: Sequence[tuple[str, Callable[[Item], str], Callable[[Item], str] | None]],
    ) -> None:
        self.kind = kind  # a plural noun: "no serves"
        self.columns = columns  # (header, text cell, HTML cell or None to escape the text)

    def text(self, items: Sequence[Item]) -> str:
        if not items:
            return f"(no {self.kind})"
        rows = [[header for header, _, _ in self.columns]]
        rows += [[cell(item) for _, cell, _ in self.columns] for item in items]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def html(self, items: Sequence[Item]) -> str:
        if not items:
            return f"<p><i>(no {html.escape(self.kind)})</i></p>"
        head = "".join(
            f"<th style='text-align:left'>{html.escape(h)}</th>" for h, _, _ in self.columns
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{rich(item) if rich else html.escape(text(item))}</td>"
                for _, text, rich in self.columns
            )
            + "</tr>"
            for item in items
        )
        # Left-aligned: JupyterLab right-aligns table cells by default, which scatters text.
        style = "<style>.modelserve-table th,.modelserve-table td{text-align:left}</style>"
        return f"{style}<table class='modelserve-table'><tr>{head}</tr>{body}</table>"


class Table(list[Item]):
    """A list that shows itself as a table: `api.serves()`, `api.versions(name)`, `%serve list`."""

    def __init__(self, items: Iterable[Item], columns: Columns[Item]) -> None:
        super().__init__(items)
        self._columns = columns

    def __repr__(self) -> str:
        return self._columns.text(self)

    def _repr_html_(self) -> str:
        return self._columns.html(self)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def shape_text(spec: TensorSpecView) -> str:
    if spec.shape is None:
        return "any shape"
    return "(" + ", ".join("?" if d < 0 else str(d) for d in spec.shape) + ")"


def signature_lines(signature: SignatureView) -> list[str]:
    """`signature` as lines: `inputs:  x float (?, 3)`."""
    lines = [f"signature {signature.name!r}:"]
    for label, specs in (("input", signature.inputs), ("output", signature.outputs)):
        lines += [f"  {label} {s.name}: {s.dtype} {shape_text(s)}" for s in specs]
    return lines


def metrics_text(metrics: ServeMetrics | None) -> str:
    if metrics is None:
        return "no metrics (the model server did not answer)"
    text = f"{metrics.request_count} requests, {metrics.error_count} errors"
    if metrics.latency_p50_ms is not None and metrics.latency_p99_ms is not None:
        text += f", p50 {metrics.latency_p50_ms:.1f} ms, p99 {metrics.latency_p99_ms:.1f} ms"
    return text


VERSION_TABLE: Columns[Version] = Columns(
    "versions",
    [
        ("model", lambda v: v.name, None),
        ("version", lambda v: str(v.version), None),
        ("description", lambda v: v.description or "", None),
        ("registered", lambda v: when(v.registered), None),
        ("source", lambda v: v.source, lambda v: f"<code>{html.escape(v.source)}</code>"),
    ],
)

MODEL_TABLE: Columns[Model] = Columns(
    "registered models",
    [
        ("model", lambda m: m.name, None),
        ("description", lambda m: m.description or "", None),
        ("tags", lambda m: ", ".join(m.tags), None),
    ],
)


def curl_command(url: str, example_request: dict[str, Any] | None) -> str:
    """A copyable command that predicts at `url`; its body is the signature's example request
    when known (a guess of one float otherwise)."""
    body = json.dumps(example_request or {"instances": [0.0]})
    return f"curl -H 'Content-Type: application/json' -d {shlex.quote(body)} {shlex.quote(url)}"


def html_rows(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column HTML table of (label, HTML) rows."""
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>{label}</th>"
        f"<td style='text-align:left'>{value}</td></tr>"
        for label, value in rows
    )
    return f"<table class='modelserve-serve'>{cells}</table>"
