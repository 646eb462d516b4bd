"""Reading one serve (`simple` 1) in the status tests: over REST, and as the backend sees it."""

from __future__ import annotations

from typing import Any

from jupyter_modelserve.backends.base import Observation, ServeSpec
from jupyter_modelserve.service import ServeService

from ..conftest import SEED_BODY, Api, eventually


async def serve_of(api: Api) -> dict[str, Any] | None:
    """GET /api/v1/serve/simple/1's result, or None when it is not there."""
    code, envelope = await api("GET", "/api/v1/serve/simple/1")
    return envelope["result"] if code == 200 else None


def in_state(api: Api, state: str, fragment: str = "") -> Any:
    """A check for `eventually`: the serve once it is `state` with `fragment` in its reason."""

    async def check() -> Any:
        serve = await serve_of(api)
        ok = serve is not None and serve["state"] == state
        return serve if ok and fragment in (serve["reason"] or "") else None

    return check


async def post_until_available(api: Api) -> dict[str, Any]:
    """POST the seed serve and wait until it is AVAILABLE."""
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope
    served: dict[str, Any] = await eventually(in_state(api, "AVAILABLE"), what="AVAILABLE")
    return served


def observed(service: ServeService, state: str, fragment: str) -> Observation | None:
    """What the backend itself observes for simple 1, without folding it into the row."""
    found = service.backend.statuses([ServeSpec("simple", 1, "")], 10)[("simple", 1)]
    return found if found.state.value == state and fragment in (found.reason or "") else None
