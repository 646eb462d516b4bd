"""What every serving backend offers the service layer.

A backend knows nothing of the registry: the service tells it what to run (`ServeSpec`) and asks
it what it sees (`Observation`). Every method may block; the service runs them off the event loop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

Key = tuple[str, int]  # (model name, registry version)


@dataclass(frozen=True)
class ServeSpec:
    """One model version to serve. `source` is its TF Serving version folder (`<base>/<n>`)."""

    name: str
    version: int
    source: str

    @property
    def key(self) -> Key:
        return (self.name, self.version)

    @property
    def servable_version(self) -> int:
        """The version folder's number: what TF Serving calls the version it serves."""
        return int(self.source.rstrip("/").rsplit("/", 1)[-1])


class Observed(enum.Enum):
    ABSENT = "ABSENT"  # the backend runs nothing for this serve
    STARTING = "STARTING"  # accepted, not loading yet (server starting, config not read yet)
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    PARTIAL = "PARTIAL"  # some of its objects exist, not all: being created, or half deleted
    UNKNOWN = "UNKNOWN"  # the backend could not be asked in time (a hung server, a slow API)


@dataclass(frozen=True)
class Observation:
    state: Observed
    reason: str | None = None
    # The serve's external URL as the cluster reports it (an Ingress's or LoadBalancer's
    # address), once it has one; None: nothing learnt, keep the URL the serve has.
    url: str | None = None


class Backend(Protocol):
    """A place where serves run. Implementations must make every method idempotent."""

    name: str
    # Whether a serve whose deployment vanished is deployed again (local: a crashed server is
    # restarted) or reported FAILED (kubernetes: someone deleted it, and that is news).
    restarts_lost_serves: bool
    # Whether its deployments live on when the registry database is lost (a cluster's objects
    # do; the local model server's config lives beside the registry): a registry created by this
    # process then never sweeps them as orphans.
    outlives_registry: bool
    # When each serve that `deployed()` last returned was first deployed, where the backend can
    # tell (a cluster's creationTimestamp; empty otherwise): nothing older than the registry is
    # ever swept as an orphan (sweepbrake.py).
    deployed_since: Mapping[Key, datetime]

    def use_registry_identity(self, identity: str) -> None:
        """Learn the registry's stored id, which tells this registry's deployments from others'
        where several registries share one place (a Kubernetes namespace)."""
        ...

    def validate(self, spec: ServeSpec) -> None:
        """Raise InvalidInput, naming the missing setting, when `spec` cannot run here."""
        ...

    def url_for(self, spec: ServeSpec) -> str:
        """The TF-Serving predict URL at which `spec` answers once AVAILABLE."""
        ...

    def grpc_address(self, spec: ServeSpec) -> str | None:
        """`host:port` of TF Serving's gRPC API serving `spec`; None while none is known.

        Cheap (no network): lists ask it once per row."""
        ...

    def endpoint(self, spec: ServeSpec) -> str:
        """Scheme, host and port where the Jupyter server reaches `spec`'s TF Serving REST API."""
        ...

    def served_version(self, spec: ServeSpec) -> int:
        """The version number under which TF Serving answers for `spec` on this backend."""
        ...

    def apply(self, spec: ServeSpec) -> None:
        """Start serving `spec` (or keep serving it). Returns once the backend accepted it."""
        ...

    def remove(self, spec: ServeSpec) -> None:
        """Start removing `spec`; `status` answers ABSENT once it is gone."""
        ...

    def refresh(self, specs: Sequence[ServeSpec]) -> None:
        """Bring serves that run already to the backend's current settings (a changed image or
        resources reach them on the next reconcile). Idempotent, and cheap when nothing changed."""
        ...

    def statuses(self, specs: Sequence[ServeSpec], timeout: float) -> dict[Key, Observation]:
        """What the backend runs for each of `specs` right now, keyed by (name, version).

        One bounded read for the whole list, never one slow call per serve: when the backend
        does not answer within `timeout` seconds, the specs not seen yet are UNKNOWN with a
        reason that says so. Raise BackendUnavailable only when nothing could be read at all.
        """
        ...

    def deployed(self) -> list[Key]:
        """Every (name, version) this backend runs or is configured to run for us."""
        ...

    def needs_attention(self) -> bool:
        """A cheap local check (no network) that something wanted has stopped running, such as
        a crashed model server: the reconciler then runs at once instead of on its schedule."""
        ...

    def logs(self, spec: ServeSpec, tail: int) -> list[str]:
        """The last `tail` log lines that concern `spec`."""
        ...

    def close(self) -> None:
        """Release clients and handles (long-lived servers it started keep running)."""
        ...
