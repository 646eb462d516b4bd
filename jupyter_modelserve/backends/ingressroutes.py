"""Refuse an Ingress route that another object already claims on the same host.

Two Jupyter servers (instances) sharing an ingress host in one namespace would otherwise each
publish `/v1/models/<name>/versions/<v>:predict` for their own serve of the same model, and the
ingress controller would send one server's users to the other's model without a word. Before
applying, the namespace's Ingresses are listed (a namespaced Role may list them; deploy/rbac.yaml
grants it) and any host+path we want that an Ingress not ours routes is a Conflict naming it.

Another namespace's Ingresses cannot be seen with a namespaced Role, so a clash across
namespaces is not detected here: give each server its own host there
(`ingress_host = "{instance}.models.example.com"`).
"""

from __future__ import annotations

from typing import Any

from ..errors import Conflict
from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .kubeapi import KubeApi
from .naming import object_name, owned

Route = tuple[str, str]  # (host, "" for any host; path)
# Most Ingresses compared: the check stays bounded in a namespace full of other Ingresses.
MAX_LISTED = 2000


def routes(ingress: dict[str, Any]) -> set[Route]:
    """The (host, path) pairs an Ingress manifest (a dict, as manifests build it) routes."""
    return {
        (rule.get("host", ""), path["path"])
        for rule in ingress["spec"].get("rules", [])
        for path in (rule.get("http") or {}).get("paths", [])
    }


def refuse_claimed(
    api: KubeApi, ingress: dict[str, Any] | None, spec: ServeSpec, settings: ClusterSettings
) -> None:
    """Conflict when an Ingress that is not this serve's routes a host+path `ingress` wants.

    Only the same host (or both without a host) counts: a host-specific rule wins over a
    host-less one in every controller, so those do not clash. A Role without list on Ingresses
    (older than this check) skips it rather than failing every create.
    """
    if ingress is None:
        return
    wanted = routes(ingress)
    ours = object_name(spec, settings)
    listed = api.call("list Ingresses", api.list, "Ingress", "", allow=(403,)) or []
    for other in listed[:MAX_LISTED]:
        meta = other.metadata
        if meta.name == ours and owned(meta.labels, spec, settings):
            continue
        clash = sorted(wanted & _live_routes(other))
        if clash:
            host, path = clash[0]
            raise Conflict(
                f"Ingress {meta.name} in namespace {settings.namespace} already routes "
                f"{host or '(any host)'}{path}; give this server its own host, e.g. "
                "c.KubernetesBackend.ingress_host = '{instance}.models.example.com'"
            )


def _live_routes(obj: Any) -> set[Route]:
    """The (host, path) pairs of an Ingress as the API client reads it."""
    found: set[Route] = set()
    for rule in getattr(obj.spec, "rules", None) or []:
        for path in getattr(rule.http, "paths", None) or []:
            found.add((rule.host or "", path.path or ""))
    return found
