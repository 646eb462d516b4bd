"""A request body to a JSON object, answers to JSON bytes, and bounded previews of JSON values.

Bodies are parsed by orjson when it is installed (several times faster than json), and by
Python's json module whenever orjson refuses one: json accepts NaN, Infinity and -Infinity, as
TF Serving does, and numbers past 64 bits, and it phrases the errors. Its failure modes are
turned into TF Serving's "JSON Parse error" 400s: nesting deeper than the interpreter's
recursion limit (RecursionError), integers of more than 4300 digits (ValueError) and bytes that
are no Unicode text.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

from .errors import invalid

try:
    import orjson
except ImportError:  # the model server works without it, only slower
    orjson = None  # type: ignore[assignment]


# An integer of 19 digits or more may not fit 64 bits (-9223372036854775809 has 19), and orjson
# reads such a one as a float: json keeps it exact, so a tensor conversion can say it is out of
# range. Runs of 19+ digits are found by mapping digits to "0" and substring searches (a regex
# took 6 ms on a 32x784 body, longer than orjson's whole parse); a run right after a point is a
# fraction (0.0027320816647620205 has 19 digits there) and keeps the fast path.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19
_POINT = ord(".")
_ZEROS = re.compile(b"0*")  # the end of a run, found in C: a byte loop here cost 80 ms a MB


def _has_long_integer(body: bytes) -> bool:
    digits = body.translate(_DIGITS_AS_ZERO)
    start = digits.find(_LONG_DIGIT_RUN)
    while start != -1:  # `start` is where a run begins: the search resumes past each run
        if start == 0 or body[start - 1] != _POINT:
            return True
        end = _ZEROS.match(digits, start).end()  # type: ignore[union-attr]  # (matches "")
        start = digits.find(_LONG_DIGIT_RUN, end)
    return False


class NumpyJson(dict[str, Any]):
    """An answer whose leaves may be numpy arrays that hold only finite numbers or booleans.

    orjson writes those straight from the array's memory (float32 as its shortest float32
    text, as TF Serving prints it), with no Python float made per value. Only finite values
    may go this way: orjson would write NaN as null, where TF Serving writes NaN.
    """


def dumps(value: dict[str, Any]) -> bytes:
    """An answer as JSON bytes; a `NumpyJson` one through orjson's numpy path."""
    if orjson is not None and isinstance(value, NumpyJson):
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(value).encode("utf-8")


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
    request: Any = None
    if orjson is not None and not _has_long_integer(body):
        try:
            request = orjson.loads(body or b"null")
        except orjson.JSONDecodeError:
            request = None  # json below accepts NaN and big integers, or says what is wrong
    if request is None:
        request = _json_loads(body)
    if not isinstance(request, dict):
        raise invalid(f"JSON Value: {preview(request)} Is not object")
    return request


def _json_loads(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
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
