"""Bounds of a logs answer: how many lines a caller may ask for, and how many bytes it gets."""

from __future__ import annotations

from ..schemas import MAX_LOG_TAIL

__all__ = ["MAX_LOG_TAIL", "bounded_lines"]


def bounded_lines(lines: list[str], max_bytes: int) -> list[str]:
    """The newest `lines` whose UTF-8 size (newlines counted) fits in `max_bytes`; a single
    line larger than that is cut to its end."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        cost = len(line.encode()) + 1
        if size + cost > max_bytes:
            if not kept:  # one huge line: its end, so the answer is never empty
                kept.append(line.encode()[-(max_bytes - 1) :].decode(errors="ignore"))
            break
        kept.append(line)
        size += cost
    return kept[::-1]
