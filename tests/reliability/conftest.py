"""Reliability suite fixtures, and the one summary line the suite ends with."""

from __future__ import annotations

import pytest

from . import tally


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the tally once, after the test outcomes (also with -q)."""
    # A conftest below the root is a plugin like any other once collection loads it, and
    # pytest_terminal_summary is not path-filtered, so this runs whenever any test under
    # tests/reliability/ was collected.
    terminalreporter.write_sep("-", "reliability summary")
    terminalreporter.write_line(tally.summary())
