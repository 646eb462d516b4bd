"""A logs answer is bounded: `tail` has a cap a caller is told about, and the lines kept fit in
a byte budget (the newest ones)."""

from __future__ import annotations

from jupyter_modelserve.backends.kubelogs import bounded_lines
from jupyter_modelserve.schemas import MAX_LOG_TAIL

from .conftest import Api


async def test_a_tail_above_the_cap_is_refused_naming_it(api: Api) -> None:
    # Given the serve API (local backend, no serve)
    # When logs are asked with a tail one above the cap, and with the cap itself
    code, above = await api(
        "GET", "/api/v1/serve/simple/1/logs", params={"tail": str(MAX_LOG_TAIL + 1)}
    )
    at_cap, _ = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": str(MAX_LOG_TAIL)})

    # Then the first is a 400 naming the cap; the second passes validation (no such serve: 404)
    assert code == 400
    assert above["message"] == f"tail: must be an integer from 1 to {MAX_LOG_TAIL}"
    assert at_cap == 404


def test_the_newest_lines_within_the_byte_budget_are_kept() -> None:
    # Given lines of 9 bytes each (newline counted), and one huge line
    lines = [f"line {i:03d}" for i in range(100)]

    # When they are cut to 30 bytes, and the huge one to 10
    kept = bounded_lines(lines, 30)
    huge = bounded_lines(["x" * 50 + "END"], 10)

    # Then the newest three lines fit; a single huge line keeps its end
    assert kept == ["line 097", "line 098", "line 099"]
    assert huge == ["xxxxxxEND"]
