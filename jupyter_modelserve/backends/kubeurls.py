"""Serves' external URLs as the cluster reports them: read from the status of their Ingresses or
LoadBalancer Services, which an ingress controller or cloud load balancer fills in later.

A present serve with no address in a status gets the url the current settings give. Costs one
list per kind, and only when the settings make a status worth reading
(`exposure.wants_status`); a failed read leaves the observations as they were, since a url is
news, never a reason to fail a status read.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ModelServeError
from . import exposure, naming
from .base import Key, Observation, Observed, ServeSpec
from .cluster_settings import ClusterSettings
from .kubeapi import KubeApi

log = logging.getLogger(__name__)


def with_urls(
    api: KubeApi,
    settings: ClusterSettings,
    specs: Sequence[ServeSpec],
    found: dict[Key, Observation],
    limit: tuple[float, float],
) -> dict[Key, Observation]:
    """`found`, each present serve's observation with its url: the one its Ingress or Service
    status tells, else the one the current settings give (`exposure.predict_url`), so a stored
    url follows a changed ingress host or TLS setting instead of keeping the create-time one."""
    present = [s for s in specs if _present(found.get((s.name, s.version)))]
    if not present:
        return found
    from_ingress, from_service = exposure.wants_status(settings)
    ingresses: dict[str, Any] = {}
    services: dict[str, Any] = {}
    selector = naming.owner_selector(settings)
    try:
        ingresses = _by_name(api, "Ingress", selector, limit) if from_ingress else {}
        services = _by_name(api, "Service", selector, limit) if from_service else {}
    except ModelServeError as error:
        # Nothing learnt, and nothing known to be stale: the rows keep the urls they have.
        log.info("Serve URLs not read from the cluster this time: %s", error.message)
        return found
    updated = dict(found)
    for spec in present:
        name = naming.object_name(spec, settings)
        learnt = exposure.learnt_url(spec, settings, ingresses.get(name), services.get(name))
        url = learnt if learnt is not None else exposure.predict_url(spec, settings)
        key = (spec.name, spec.version)
        updated[key] = dataclasses.replace(updated[key], url=url)
    return updated


def _present(observation: Observation | None) -> bool:
    return observation is not None and observation.state not in (
        Observed.ABSENT,
        Observed.UNKNOWN,
    )


def _by_name(api: KubeApi, kind: str, selector: str, limit: tuple[float, float]) -> dict[str, Any]:
    # 403: a Role from before this read (no list on the kind) only loses the url.
    listed = api.call(f"list {kind}s", api.list, kind, selector, limit, allow=(403,))
    return {obj.metadata.name: obj for obj in listed or []}
