"""Reading request bodies: bounded in size while they arrive, then JSON, including the
non-strict JSON of Submarine's examples."""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import InvalidInput, PayloadTooLarge


class BodyBuffer:
    """A request body collected chunk by chunk, never holding more than `limit` bytes.

    `declare` refuses a Content-Length over the limit before any byte is read; `add` refuses a
    body (chunked, or longer than it declared) the moment it passes the limit, and drops what
    it held. `setting` names the knob that raises the limit, for the error message.
    """

    def __init__(self, limit: int, setting: str) -> None:
        self.limit = limit
        self.setting = setting
        self.received = 0
        self._chunks: list[bytes] = []

    def declare(self, content_length: str | None) -> None:
        declared = content_length or ""
        if not (declared.isascii() and declared.isdigit()):
            return  # tornado itself refuses a malformed Content-Length
        digits = declared.lstrip("0") or "0"
        # Compared as text first: int() of a few thousand digits is slow, or refused outright.
        if len(digits) > len(str(self.limit)) or int(digits) > self.limit:
            size = f"{digits} bytes" if len(digits) <= 20 else f"a {len(digits)}-digit size"
            raise self._too_large(size)

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.limit:
            self._chunks = []
            raise self._too_large(f"more than {self.limit} bytes")
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body is {size}; at most {self.limit} bytes are accepted here ({self.setting})"
        )


def parse_json_body(raw: bytes, expected: str) -> Any:
    """Decode a JSON body; `expected` describes it for the error message of an empty body.

    Blocking (a large body takes milliseconds): handlers call it off the event loop. Strict
    JSON is tried first; only a body that fails it gets the trailing-comma repair.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("request body is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput(f"request body is empty: send a JSON object with {expected}")
    try:
        return _loads(text)
    except json.JSONDecodeError as strict_error:
        repaired = _drop_trailing_commas(text)
        if repaired == text:
            raise InvalidInput(_describe(strict_error)) from None
    try:
        return _loads(repaired)
    except json.JSONDecodeError as exc:
        raise InvalidInput(_describe(exc)) from None


def _loads(text: str) -> Any:
    """json.loads, with its two ways of failing on hostile input turned into InvalidInput."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:  # "[[[[...": the decoder recurses once per level
        raise InvalidInput(
            "request body is nested too deeply: JSON arrays and objects may nest about "
            f"{sys.getrecursionlimit()} levels at most"
        ) from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise InvalidInput(
            f"request body has a number with more than {sys.get_int_max_str_digits()} digits"
        ) from None


def _describe(exc: json.JSONDecodeError) -> str:
    return f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


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
