"""Log setup and the one format for naming a servable in log lines.

Every line about a model carries `{name: NAME version: N}` (or `{name: NAME}` for lines about
the model as a whole), as TF Serving writes it, so the backend can filter the log per model with
`\\{name: (\\S+)(?: version: (\\d+))?\\}`.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "jupyter_modelserve.modelserver"
log = logging.getLogger(LOGGER_NAME)


def servable_id(name: str, version: int | None = None) -> str:
    if version is None:
        return f"{{name: {name}}}"
    return f"{{name: {name} version: {version}}}"


class _Formatter(logging.Formatter):
    """`2024-01-02 03:04:05.678: I modelserver] message`, close to TF Serving's own lines."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        letter = record.levelname[:1]
        text = f"{stamp}.{int(record.msecs):03d}: {letter} modelserver] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: int = logging.INFO) -> None:
    """Send this package's log to stderr, one flushed line per record."""
    # stderr may be a pipe or a file the backend reads while we run: flush every line.
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(line_buffering=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
