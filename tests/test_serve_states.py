"""Serve states: the fold rules in milliseconds, then real failures (a broken SavedModel, a
stale reconcile) against a real server."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.backends.base import Observation, Observed
from jupyter_modelserve.registry.rows import ServeRecord
from jupyter_modelserve.schemas import ServeState
from jupyter_modelserve.servestate import Folded, fold, in_progress, settled, view_of
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, post_json

# -- the fold: a row and an observation give the state every front door shows ----------------

LOAD_TIMEOUT = 300.0
URL = "http://127.0.0.1:8501/v1/models/simple/versions/1:predict"


def record(
    state: ServeState, url: str | None = URL, reason: str | None = None, age: float = 1.0
) -> ServeRecord:
    """A serve row in `state` for `age` seconds."""
    since = datetime.now(timezone.utc) - timedelta(seconds=age)
    return ServeRecord(
        "simple", 1, "local", state, reason, url, since, since, since, "/models/simple/1"
    )


@pytest.mark.parametrize(
    ("row", "seen", "restarts", "expected"),
    [
        # The backend reports progress, and the row follows it
        (record(ServeState.PENDING), Observation(Observed.STARTING, "starting"), True,
         Folded(ServeState.PENDING, "starting")),
        (record(ServeState.PENDING), Observation(Observed.LOADING, "loading"), True,
         Folded(ServeState.LOADING, "loading")),
        (record(ServeState.LOADING, reason="loading"), Observation(Observed.AVAILABLE), True,
         Folded(ServeState.AVAILABLE, None)),
        (record(ServeState.LOADING), Observation(Observed.FAILED, "bad graph"), True,
         Folded(ServeState.FAILED, "bad graph")),
        # A backend that cannot be asked changes nothing: the row stays, with why
        (record(ServeState.AVAILABLE), Observation(Observed.UNKNOWN, "no answer"), True,
         Folded(ServeState.AVAILABLE, "no answer", transient=True)),
        (record(ServeState.DELETING), Observation(Observed.UNKNOWN, "no answer"), True,
         Folded(ServeState.DELETING, "no answer", transient=True)),
        # DELETING stays DELETING until the service sees ABSENT (and drops the row)
        (record(ServeState.DELETING), Observation(Observed.AVAILABLE), True,
         Folded(ServeState.DELETING, None)),
        # FAILED is final until a retry, whatever the backend still tries
        (record(ServeState.FAILED, reason="bad graph"), Observation(Observed.LOADING), True,
         Folded(ServeState.FAILED, "bad graph")),
        (record(ServeState.FAILED, reason="bad graph"), Observation(Observed.AVAILABLE), True,
         Folded(ServeState.FAILED, "bad graph")),
        # Accepted but never applied (its creator died): the reconciler's to start
        (record(ServeState.PENDING, url=None), Observation(Observed.ABSENT), False,
         Folded(ServeState.PENDING, "its objects are being created", restart_wanted=True)),
        # Applied and gone: the local backend starts it again, a cluster reports it FAILED
        (record(ServeState.AVAILABLE), Observation(Observed.ABSENT, "not running"), True,
         Folded(ServeState.PENDING,
                "not running on the local backend, starting it again (not running)",
                restart_wanted=True)),
        (record(ServeState.AVAILABLE), Observation(Observed.ABSENT, "no Deployment"), False,
         Folded(ServeState.FAILED, "it is gone from the local backend (no Deployment); "
                "delete the serve and create it again")),
        (record(ServeState.AVAILABLE), Observation(Observed.PARTIAL, "no Service"), True,
         Folded(ServeState.FAILED, "no Service; delete the serve and create it again")),
    ],
)  # fmt: skip
def test_fold(row: ServeRecord, seen: Observation, restarts: bool, expected: Folded) -> None:
    # The rows above were made at collection, maybe minutes ago in a long run: age them anew
    # (one second in their state) so the load deadline does not count the wait for this test.
    row = dataclasses.replace(row, state_since=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert fold(row, seen, LOAD_TIMEOUT, "local", restarts) == expected


def test_a_serve_in_progress_past_the_load_deadline_is_failed_with_what_was_last_seen() -> None:
    # Given a serve PENDING for longer than the load deadline
    row = record(ServeState.PENDING, age=LOAD_TIMEOUT + 1)
    # When the backend still says it is loading
    folded = fold(row, Observation(Observed.LOADING, "loading"), LOAD_TIMEOUT, "local", True)
    # Then it is FAILED, saying how long it had and what was last seen
    assert folded == Folded(
        ServeState.FAILED, "not AVAILABLE after 300 s; last seen: LOADING (loading)"
    )
    # And just inside the deadline it is still LOADING
    row = record(ServeState.PENDING, age=LOAD_TIMEOUT - 5)
    folded = fold(row, Observation(Observed.LOADING, "loading"), LOAD_TIMEOUT, "local", True)
    assert folded.state is ServeState.LOADING


def test_in_progress_and_settled_split_the_states() -> None:
    progressing = {s for s in ServeState if in_progress(s)}
    finished = {s for s in ServeState if settled(view_of(record(s)))}
    assert progressing == {ServeState.PENDING, ServeState.LOADING}
    assert finished == {ServeState.AVAILABLE, ServeState.FAILED}
    # DELETING is neither: a wait on it does not end as if it were served or failed
    assert ServeState.DELETING not in progressing | finished


# -- real failures against a real server ------------------------------------------------------


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
