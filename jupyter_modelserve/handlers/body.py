"""Reading JSON request bodies, including the non-strict JSON of Submarine's examples."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidInput


def parse_json_body(raw: bytes, expected: str) -> Any:
    """Decode a JSON body; `expected` describes it for the error message of an empty body."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("request body is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput(f"request body is empty: send a JSON object with {expected}")
    try:
        return json.loads(_drop_trailing_commas(text))
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _drop_trailing_commas(text: str) -> str:
    """Remove commas that directly precede `}` or `]`, outside strings.

    Submarine's documented requests (`{"modelName": "simple", "modelVersion": 1, }`) carry one.
    """
    out: list[str] = []
    in_string = escaped = False
    pending_comma: list[str] | None = None  # a comma and the blanks after it, not yet written
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if pending_comma is not None:
            if char.isspace():
                pending_comma.append(char)
                continue
            if char not in "}]":
                out.extend(pending_comma)
            else:
                out.extend(pending_comma[1:])
            pending_comma = None
        if char == ",":
            pending_comma = [char]
            continue
        out.append(char)
        if char == '"':
            in_string = True
    if pending_comma is not None:
        out.extend(pending_comma)
    return "".join(out)
