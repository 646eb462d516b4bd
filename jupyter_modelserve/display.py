"""How a serve's state looks in a notebook: the one badge the Serve repr and the panel show.

Plain HTML, no widgets: a `Serve` renders it in its `_repr_html_`, a panel row puts it in an
`ipywidgets.HTML`, and both say the same state in the same colour.
"""

from __future__ import annotations

import html

from .schemas import ServeState

NOT_SERVED = "not served"  # what a panel row says of a registered version nobody serves

STATE_COLOURS = {
    ServeState.PENDING: "#6c757d",
    ServeState.LOADING: "#0d6efd",
    ServeState.AVAILABLE: "#198754",
    ServeState.FAILED: "#dc3545",
    ServeState.DELETING: "#fd7e14",
}
_NOT_SERVED_COLOUR = "#adb5bd"


def state_label(state: ServeState | None) -> str:
    """The word a badge shows: the state's name, or NOT_SERVED for None."""
    return state.value if state is not None else NOT_SERVED


def state_badge(state: ServeState | None) -> str:
    """A coloured badge for a serve's state; None is a version that is not served."""
    colour = STATE_COLOURS[state] if state is not None else _NOT_SERVED_COLOUR
    return (
        f'<span style="background:{colour};color:#fff;border-radius:4px;padding:1px 6px">'
        f"{html.escape(state_label(state))}</span>"
    )
