"""A serve whose Deployment runs but whose Service (or wanted Ingress) was deleted behind our
back: its Pods are fine, yet nothing reaches them. statuses() says so in the reason.

The state is kept (AVAILABLE stays AVAILABLE, with the reason naming the missing object): a
missing part is not made FAILED because FAILED is final (servestate.fold), and a status read
that runs between the Deployment's and the Service's apply (create, or a settings change that
adds an Ingress) would then fail a healthy serve for good. One list per kind and status read;
a read that fails or is not allowed leaves the observations as they were.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ..errors import ModelServeError
from . import naming
from .base import Key, Observation, ServeSpec
from .cluster_settings import ClusterSettings

log = logging.getLogger(__name__)
# Reads the objects of a kind of this server's serves, given the names a caller expects.
Lister = Callable[[str, Collection[str]], Any]


def wanted_kinds(settings: ClusterSettings) -> tuple[str, ...]:
    """The kinds besides the Deployment that requests need: the Service, and the Ingress when
    the settings make one."""
    return ("Service", "Ingress") if settings.ingress_host else ("Service",)


def with_missing_parts(
    listed: Lister,
    settings: ClusterSettings,
    specs: Sequence[ServeSpec],
    found: dict[Key, Observation],
    running: set[Key],
) -> dict[Key, Observation]:
    """`found`, the serves in `running` (their Deployment exists and is not being deleted)
    saying which of their Service/Ingress is missing. `listed(kind, names)` reads a kind (the
    watch cache when it holds every name, else one list; None when not allowed)."""
    asking = [s for s in specs if (s.name, s.version) in running]
    if not asking:
        return found
    wanted = {naming.object_name(spec, settings) for spec in asking}
    names: dict[str, set[str]] = {}
    try:
        for kind in wanted_kinds(settings):
            objects = listed(kind, wanted)
            if objects is None:  # a Role that may not list them: nothing to say
                continue
            names[kind] = {obj.metadata.name for obj in objects}
    except ModelServeError as error:
        log.info("Services/Ingresses not checked this time: %s", error.message)
        return found
    updated = dict(found)
    for spec in asking:
        name = naming.object_name(spec, settings)
        missing = [f"{kind} {name}" for kind, present in names.items() if name not in present]
        if not missing:
            continue
        key = (spec.name, spec.version)
        observation = updated[key]
        note = (
            f"{' and '.join(missing)} missing from namespace {settings.namespace} (deleted "
            "outside jupyter_modelserve?): requests cannot reach the serve; delete the serve "
            "and create it again"
        )
        reason = "; ".join(part for part in (note, observation.reason) if part)
        updated[key] = dataclasses.replace(observation, reason=reason)
    return updated
