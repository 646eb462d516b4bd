"""A request body to a JSON object, and bounded previews of JSON values for error messages.

Python's json module accepts NaN, Infinity and -Infinity, as TF Serving does. Its failure modes
are turned into TF Serving's "JSON Parse error" 400s: nesting deeper than the interpreter's
recursion limit (RecursionError), integers of more than 4300 digits (ValueError) and bytes that
are no Unicode text.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

from .errors import invalid

_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel = 3
_PREVIEW.maxlist = _PREVIEW.maxtuple = 8
_PREVIEW.maxdict = 4
_PREVIEW.maxstring = _PREVIEW.maxother = 60
_PREVIEW.maxlong = 40


def preview(value: Any) -> str:
    """A short repr of any JSON value: `{value!r:.60}` would first build the whole repr (slow
    for a big list) and raise RecursionError on deep nesting; this does neither."""
    return _PREVIEW.repr(value)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ServingError (400) naming what is wrong otherwise."""
    try:
        request = json.loads(body or b"null")
    except RecursionError:
        raise invalid(
            "JSON Parse error: nesting too deep (arrays and objects nest hundreds of levels; "
            "no tensor has more than 64 dimensions)"
        ) from None
    except UnicodeDecodeError as error:
        raise invalid(f"JSON Parse error: the body is not UTF-8 text ({error.reason})") from None
    except ValueError as error:
        if "integer string conversion" in str(error):
            # Python's own message advises sys.set_int_max_str_digits(), which no client can do.
            raise invalid(
                "JSON Parse error: a number has more than 4300 digits; no tensor type holds it"
            ) from None
        raise invalid(f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise invalid(f"JSON Value: {preview(request)} Is not object")
    return request
