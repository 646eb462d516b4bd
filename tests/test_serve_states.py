"""Serve states with real failures: a broken SavedModel, a load deadline, a stale reconcile."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from jupyter_modelserve.backends.base import Observation, Observed
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, post_json


async def test_a_model_that_fails_to_load_is_failed_with_the_reason_and_can_be_retried(
    api: Api, simple_registered: dict[str, Any], half_plus_two: Path
) -> None:
    # Given a registered version whose variables went missing after registration
    shutil.rmtree(Path(simple_registered["source"]) / "variables")

    # When it is served and waited for
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})

    # Then the wait ends in an error naming the state and the model server's reason
    assert code == 422 and envelope["status"] == "UNPROCESSABLE_ENTITY"
    assert envelope["message"].startswith("model 'simple' version 1 FAILED: ")
    # And GET reports FAILED with the same reason
    code, one = await api("GET", "/api/v1/serve/simple/1")
    assert code == 200 and one["result"]["state"] == "FAILED"
    assert one["result"]["reason"] and one["result"]["reason"] in envelope["message"]

    # When the artifact is repaired and the serve is POSTed again, it is retried from scratch
    shutil.copytree(half_plus_two / "variables", Path(simple_registered["source"]) / "variables")
    code, retried = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and retried["result"]["state"] == "AVAILABLE", retried
    status, body = await post_json(retried["result"]["url"], {"instances": [1.0]})
    assert (status, body) == (200, {"predictions": [2.5]})


def test_a_reconcile_that_read_a_row_before_a_delete_does_not_revive_it(
    service: ServeService, simple_registered: dict[str, Any]
) -> None:
    # Given a reconcile that read the serve row, then a delete that finished meanwhile
    service.create("simple", 1)
    stale = service.store.get_serve("simple", 1)
    assert stale is not None
    service.delete("simple", 1)

    # When the reconcile goes on with what it read: folds a status into it, starts it again
    view = service._fold_and_store(stale, Observation(Observed.ABSENT, "not running"))
    service._start_again(stale)

    # Then the serve stays deleted: no row, and nothing in the model server's config
    assert view is None
    assert service.store.get_serve("simple", 1) is None
    config = Path(service.backend.config_file).read_text()  # type: ignore[attr-defined]
    assert "simple" not in config
