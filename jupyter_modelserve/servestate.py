"""The serve state machine: how a row's desired state and a backend's observation fold together.

    PENDING -> LOADING -> AVAILABLE          (the backend reports progress)
    PENDING/LOADING -> FAILED                (the backend failed it, or the load deadline passed)
    any -> DELETING -> (row gone)            (DELETE, confirmed by the backend)
    FAILED stays FAILED until a retry (POST again), whatever the backend still tries.

Pure functions: no I/O, so every rule is tested in milliseconds (tests/test_serve_states.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .backends.base import Observation, Observed
from .errors import ServeFailed
from .registry.rows import ServeRecord
from .schemas import ServeState, ServeView

IN_PROGRESS = (ServeState.PENDING, ServeState.LOADING)
SETTLED = (ServeState.AVAILABLE, ServeState.FAILED)


def in_progress(state: ServeState) -> bool:
    """Still on its way to AVAILABLE or FAILED: what panels poll for and waits wait out."""
    return state in IN_PROGRESS


def settled(view: ServeView) -> bool:
    """AVAILABLE or FAILED: nothing more will happen without a request."""
    return view.state in SETTLED


def failure(view: ServeView) -> ServeFailed:
    """The error a wait ends with when the serve it waited for FAILED."""
    return ServeFailed(
        f"model {view.model_name!r} version {view.model_version} FAILED: {view.reason}"
    )


def not_ready(view: ServeView, waited: float) -> str:
    """What a wait that ran out says about a serve that is still on its way."""
    return (
        f"model {view.model_name!r} version {view.model_version} is still {view.state.value} "
        f"after {waited:.0f} s ({view.reason or 'no detail'})"
    )


_OBSERVED_TO_STATE = {
    Observed.STARTING: ServeState.PENDING,
    Observed.LOADING: ServeState.LOADING,
    Observed.AVAILABLE: ServeState.AVAILABLE,
    Observed.FAILED: ServeState.FAILED,
}


@dataclass(frozen=True)
class Folded:
    state: ServeState
    reason: str | None
    # The backend could not be asked (it does not answer): report `reason`, store nothing.
    transient: bool = False
    # Accepted but not running, on a backend that restarts such serves: the reconciler's job.
    restart_wanted: bool = False


def fold(
    record: ServeRecord,
    observation: Observation,
    load_timeout: float,
    backend: str,
    restarts_lost_serves: bool,
) -> Folded:
    """The state and reason a serve has, given its row and what its backend observes now."""
    if observation.state is Observed.UNKNOWN:
        return Folded(record.state, observation.reason, transient=True)
    if record.state is ServeState.DELETING:
        return Folded(record.state, record.reason)
    if record.state is ServeState.FAILED:
        # Final until a retry: a backend still trying does not make it LOADING again, or
        # waiters would see FAILED, then LOADING, then FAILED...
        return Folded(record.state, record.reason)
    if observation.state in (Observed.ABSENT, Observed.PARTIAL):
        return _missing(record, observation, backend, restarts_lost_serves)
    state = _OBSERVED_TO_STATE[observation.state]
    # AVAILABLE keeps its reason too: "2 of 3 replicas ready: ..." is news a user acts on.
    reason = observation.reason
    if state in IN_PROGRESS and record.state in IN_PROGRESS:
        waited = (datetime.now(timezone.utc) - record.state_since).total_seconds()
        if waited > load_timeout:
            return Folded(
                ServeState.FAILED,
                f"not AVAILABLE after {load_timeout:.0f} s; last seen: "
                f"{state.value} ({observation.reason or 'no detail'})",
            )
    return Folded(state, reason)


def _missing(
    record: ServeRecord, observation: Observation, backend: str, restarts_lost_serves: bool
) -> Folded:
    if record.url is None:
        # Accepted, not applied yet: its creator is applying it now, or died first (then the
        # reconciler applies it).
        return Folded(ServeState.PENDING, "its objects are being created", restart_wanted=True)
    if observation.state is Observed.PARTIAL:
        return Folded(
            ServeState.FAILED, f"{observation.reason}; delete the serve and create it again"
        )
    if restarts_lost_serves:
        return Folded(
            ServeState.PENDING,
            f"not running on the {backend} backend, starting it again ({observation.reason})",
            restart_wanted=True,
        )
    return Folded(
        ServeState.FAILED,
        f"it is gone from the {backend} backend ({observation.reason}); "
        "delete the serve and create it again",
    )


def view_of(
    record: ServeRecord, reason: str | None = None, grpc_url: str | None = None
) -> ServeView:
    """A row as every front door shows it; `reason` overrides the stored one when given;
    `grpc_url` is the backend's (the registry does not store it)."""
    return ServeView(
        model_name=record.model_name,
        model_version=record.model_version,
        state=record.state,
        reason=reason if reason is not None else record.reason,
        url=record.url,
        grpc_url=grpc_url,
        backend=record.backend,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
