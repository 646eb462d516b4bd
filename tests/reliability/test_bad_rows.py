"""One bad row never breaks a list for everyone: rows the rules of today would refuse (written
by an older version, or by hand) are listed with a reason, and every other serve still reads."""

from __future__ import annotations

from typing import Any

from jupyter_modelserve.service import ServeService

from ..conftest import SEED_BODY, Api, eventually
from .tally import tally


async def test_a_serve_row_with_a_name_no_rule_allows_is_listed_with_a_reason(
    api: Api, service: ServeService, simple_registered: dict[str, Any]
) -> None:
    # Given simple 1 served, and a serve row for "evil\n" written past every front door
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200
    source = simple_registered["source"]
    service.store.add_model_version("evil\n", lambda _v: source, "tensorflow")
    service.store.insert_serve("evil\n", 1, service.backend.name, None)
    tally.bad_input()

    # When every client lists the serves, and the reconciler gets to the bad row
    async def listed() -> Any:
        code, envelope = await api("GET", "/api/v1/serve")
        tally.requests()
        assert code == 200, envelope
        rows = {row["modelName"]: row for row in envelope["result"]}
        return rows["evil\n"]["state"] == "FAILED" and rows

    rows = await eventually(listed, timeout=30, what="the bad row to be FAILED with a reason")

    # Then the list answers, the good serve is AVAILABLE, and the bad one says why it cannot run
    assert rows["simple"]["state"] == "AVAILABLE"
    assert "cannot be served" in rows["evil\n"]["reason"]
    code, one = await api("GET", "/api/v1/serve/simple/1")
    assert code == 200 and one["result"]["state"] == "AVAILABLE"
    # And the model server never had the bad name written into its config
    config = service.backend.config_file.read_text()  # type: ignore[attr-defined]
    assert "evil" not in config
