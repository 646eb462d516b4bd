"""Ownership on a shared namespace (issue 11, item 5), against the real control plane.

Two Jupyter servers with their own registries, on defaults, in one namespace: each names and
labels its objects with its registry's id, so neither collides with, reads, nor sweeps the
other's serves. A registry created by this process never sweeps; a sweep is bounded.
Each cluster scenario runs as admin and as the identity bound only to deploy/rbac.yaml.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_modelserve.backends import manifests, naming
from jupyter_modelserve.backends.base import Observed, ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.errors import Conflict
from jupyter_modelserve.service import ServeService
from jupyter_modelserve.settings import ModelServeSettings

from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import StandInKubelet
from .test_kubernetes_backend import kubeconfig  # noqa: F401  (admin and deploy/rbac.yaml)

SERVICE_LOG = "jupyter_modelserve.service"


def _service(folder: Path, kube_config: Path, namespace: str, **kube: Any) -> ServeService:
    """A ServeService built as the Jupyter server builds it, on the registry in `folder`."""
    config = Config()
    config.ModelServeSettings.db_url = f"sqlite:///{folder / 'registry.db'}"
    config.ModelServeSettings.artifact_root = str(folder / "artifacts")
    config.ModelServeSettings.backend = "kubernetes"
    config.KubernetesBackend.kubeconfig = str(kube_config)
    config.KubernetesBackend.namespace = namespace
    config.KubernetesBackend.model_volume = "models"
    for key, value in kube.items():
        setattr(config.KubernetesBackend, key, value)
    return ModelServeSettings(config=config).build_service()


def _served(service: ServeService, half_plus_two: Path, name: str = "simple") -> ServeSpec:
    registered = service.registry.register(str(half_plus_two), name)
    service.create(name, registered.version)
    return ServeSpec(name, registered.version, registered.source)


def _deployments(kube_cluster: KubeCluster, namespace: str) -> dict[str, dict[str, str]]:
    """Every Deployment in the namespace not being deleted: name -> labels."""
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        found = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
        return {
            d.metadata.name: dict(d.metadata.labels or {})
            for d in found
            if d.metadata.deletion_timestamp is None
        }
    finally:
        api.close()


def _create_deployment(kube_cluster: KubeCluster, namespace: str, body: dict[str, Any]) -> None:
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        client.AppsV1Api(api).create_namespaced_deployment(namespace, body)
    finally:
        api.close()


# -- pure: names and instances ----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["Team@A", "a" * 80, "@@@", "x y", "ops-Team"])
def test_any_instance_becomes_a_short_label_safe_value(raw: str) -> None:
    # Given an instance a user typed; When it is made label-safe
    value = naming.instance_value(raw)
    # Then it is a DNS label of at most 20 characters, distinct from its look-alikes
    assert value and len(value) <= 20, value
    assert set(value) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert value[0] != "-" and value[-1] != "-"
    assert naming.instance_value(value) == value  # stable once safe
    look_alike = raw.lower().replace("@", "-").replace(" ", "-")
    if look_alike != raw:
        assert value != naming.instance_value(look_alike)


def test_a_safe_instance_is_kept_and_object_names_carry_it() -> None:
    # Given two instances and one serve
    spec = ServeSpec("simple", 1, "/models/simple/1")
    first, second = ClusterSettings(instance="team-a"), ClusterSettings(instance="3fa9c2d1")
    # Then the names differ by the instance, readable, and the instance label is the instance
    # (a hyphenated instance gets the hash suffix: "team-a" + "simple" must not read like "team"
    # + "a-simple")
    assert naming.object_name(spec, first).startswith("ms-team-a-simple-v1-")
    assert naming.object_name(spec, second) == "ms-3fa9c2d1-simple-v1"
    assert naming.labels(spec, first)[naming.LABEL_INSTANCE] == "team-a"
    # And ownership is proven by the instance label
    assert naming.owned(naming.labels(spec, first), spec, first)
    assert not naming.owned(naming.labels(spec, first), spec, second)


@pytest.mark.parametrize("name", ["Simple_Model", "x" * 200, "9lives"])
def test_long_instances_and_names_still_fit(name: str) -> None:
    # Given the longest instance and awkward model names
    settings = ClusterSettings(instance=naming.instance_value("i" * 100))
    spec = ServeSpec(name, 123456, f"/models/{name}/1")
    # When named; Then each name is a DNS-1035 label of at most 63 characters
    object_name = naming.object_name(spec, settings)
    assert len(object_name) <= 63 and object_name[0].isalpha() and object_name[-1].isalnum()
    assert set(object_name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    other = ClusterSettings(instance=naming.instance_value("j" * 100))
    assert naming.object_name(spec, other) != object_name


# -- on the cluster -----------------------------------------------------------------------------


def test_two_servers_on_defaults_in_one_namespace_never_touch_each_other(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubelet: StandInKubelet,
    half_plus_two: Path,
) -> None:
    # Given two Jupyter servers with their own registries, on default settings, in one namespace
    one = _service(tmp_path / "one", kubeconfig, kube_namespace)
    two = _service(tmp_path / "two", kubeconfig, kube_namespace)
    # (both registries exist before the servers that reconcile: not freshly created ones)
    one, two = _reopened(one), _reopened(two)
    try:
        # When both serve the same model name and version
        spec_one, spec_two = _served(one, half_plus_two), _served(two, half_plus_two)

        # Then both are accepted (no 409) under two names, each labelled with its registry
        mine = naming.object_name(spec_one, one.backend.settings)  # type: ignore[attr-defined]
        theirs = naming.object_name(spec_two, two.backend.settings)  # type: ignore[attr-defined]
        names = {mine: one, theirs: two}
        assert len(names) == 2
        found = wait_for(
            lambda: (d := _deployments(kube_cluster, kube_namespace)).keys() >= names.keys() and d,
            what="both Deployments",
        )
        for name, service in names.items():
            short_id = service.store.identity().short_id
            assert found[name][naming.LABEL_INSTANCE] == short_id
            assert name.startswith(f"ms-{short_id}-")

        # When the first server's registry forgets its serve (its row deleted) and it reconciles
        one.store.delete_serve("simple", 1)
        one.reconcile()
        two.reconcile()

        # Then only its own Deployment goes; the other's stays and still reads as its own
        wait_for(
            lambda: mine not in _deployments(kube_cluster, kube_namespace), what="the orphan gone"
        )
        assert theirs in _deployments(kube_cluster, kube_namespace)
        wait_for(
            lambda: two.get("simple", 1).state.value == "AVAILABLE", what="two's serve AVAILABLE"
        )
        # And the first server reads nothing of the second's same-named serve as its own
        # (once its own objects finished their foreground delete)
        wait_for(
            lambda: one.backend.statuses([spec_one], 3.0)[("simple", 1)].state is Observed.ABSENT,
            what="the first server to see nothing of simple 1",
        )
        assert one.backend.logs(spec_one, 10) == []
        one.backend.remove(spec_one)  # and removing "its" serve leaves the other's alone
        assert theirs in _deployments(kube_cluster, kube_namespace)
    finally:
        one.close()
        two.close()


def _reopened(service: ServeService) -> ServeService:
    """The same server again, started on the registry it created before (a restart)."""
    backend: Any = service.backend
    settings: Any = backend.parent
    service.close()
    return settings.build_service()  # type: ignore[no-any-return]


def test_a_same_named_object_of_another_instance_is_never_read_adopted_or_removed(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubelet: StandInKubelet,
) -> None:
    # Given a server whose instance is "team-a", and a Deployment under the very name it would
    # give simple 1, but labelled as another instance's
    service = _service(tmp_path, kubeconfig, kube_namespace, instance="team-a")
    try:
        spec = ServeSpec("simple", 1, str(tmp_path / "artifacts" / "simple" / "1"))
        ours = service.backend.settings  # type: ignore[attr-defined]
        foreign = manifests.deployment(spec, ClusterSettings(**{**vars(ours), "instance": "b"}))
        foreign["metadata"]["name"] = naming.object_name(spec, ours)
        _create_deployment(kube_cluster, kube_namespace, foreign)

        # When the server reads, removes, and creates that serve
        observed = service.backend.statuses([spec], 3.0)[("simple", 1)]
        service.backend.remove(spec)

        # Then it sees nothing of its own, deletes nothing, and refuses to adopt it
        assert observed.state is Observed.ABSENT, observed
        assert naming.object_name(spec, ours) in _deployments(kube_cluster, kube_namespace)
        assert service.backend.logs(spec, 10) == []
        with pytest.raises(Conflict, match="already exists"):
            service.backend.apply(spec)
    finally:
        service.close()


def test_an_instance_with_an_at_sign_is_sanitized_not_refused(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubelet: StandInKubelet,
    half_plus_two: Path,
) -> None:
    # Given a server configured with an instance no label may hold
    service = _service(tmp_path, kubeconfig, kube_namespace, instance="alice@example.com")
    try:
        # When it serves a model
        _served(service, half_plus_two)

        # Then the API server accepted it (no 422) under the sanitized instance, and it runs
        expected = naming.instance_value("alice@example.com")
        found = wait_for(
            lambda: [
                labels
                for labels in _deployments(kube_cluster, kube_namespace).values()
                if labels.get(naming.LABEL_INSTANCE) == expected
            ],
            what="the Deployment",
        )
        assert expected.startswith("alice-examp-") and len(found) == 1
        wait_for(lambda: service.get("simple", 1).state.value == "AVAILABLE", what="AVAILABLE")
    finally:
        service.close()


def _orphans(
    kube_cluster: KubeCluster, namespace: str, settings: ClusterSettings, versions: range
) -> set[str]:
    """Labelled Deployments of `settings`' instance that no row wants; their names."""
    names = set()
    for version in versions:
        spec = ServeSpec("lost", version, f"{settings.artifact_root}/lost/{version}")
        _create_deployment(kube_cluster, namespace, manifests.deployment(spec, settings))
        names.add(naming.object_name(spec, settings))
    return names


def test_a_registry_created_by_this_process_never_sweeps(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given labelled objects of instance "team" (a lost registry's serves) and a server of that
    # instance whose registry database was just created (the lost one replaced)
    service = _service(tmp_path, kubeconfig, kube_namespace, instance="team")
    try:
        settings = service.backend.settings  # type: ignore[attr-defined]
        lost = _orphans(kube_cluster, kube_namespace, settings, range(1, 3))
        assert service.store.created_here

        # When it reconciles, twice
        with caplog.at_level(logging.WARNING, logger=SERVICE_LOG):
            service.reconcile()
            service.reconcile()

        # Then nothing is removed, and the log says why, once
        assert lost <= _deployments(kube_cluster, kube_namespace).keys()
        warnings = [r.getMessage() for r in caplog.records if r.name == SERVICE_LOG]
        assert len(warnings) == 1, warnings
        assert "lost 1, lost 2" in warnings[0] and "created the registry" in warnings[0]

        # When the same registry is opened again by a later start (it is not new any more)
        later = _reopened(service)
        service = later
        later.reconcile()

        # Then those orphans are removed
        wait_for(
            lambda: not lost & _deployments(kube_cluster, kube_namespace).keys(),
            what="the orphans removed",
        )
    finally:
        service.close()


@pytest.mark.parametrize(("limit", "removed"), [(2, True), (1, False)])
def test_a_sweep_is_bounded(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    caplog: pytest.LogCaptureFixture,
    limit: int,
    removed: bool,
) -> None:
    # Given a server on a registry it did not create, and two labelled orphans of its instance
    _service(tmp_path, kubeconfig, kube_namespace).close()
    service = _service(tmp_path, kubeconfig, kube_namespace)
    service.max_orphan_sweep = limit
    try:
        settings = service.backend.settings  # type: ignore[attr-defined]
        lost = _orphans(kube_cluster, kube_namespace, settings, range(1, 3))

        # When it reconciles
        with caplog.at_level(logging.WARNING, logger=SERVICE_LOG):
            service.reconcile()

        # Then at most `limit` orphans go: within it both, beyond it none and the log says why
        if removed:
            wait_for(
                lambda: not lost & _deployments(kube_cluster, kube_namespace).keys(),
                what="the orphans removed",
            )
        else:
            assert lost <= _deployments(kube_cluster, kube_namespace).keys()
            [warning] = [r.getMessage() for r in caplog.records if r.name == SERVICE_LOG]
            assert "2 deployed serves" in warning and "max_orphan_sweep = 1" in warning
    finally:
        service.close()


def test_objects_older_than_the_registry_are_never_swept_even_after_a_restart(
    tmp_path: Path,
    kubeconfig: Path,  # noqa: F811
    kube_cluster: KubeCluster,
    kube_namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datetime import datetime, timezone

    # Given labelled objects of instance "team" deployed by a registry that was then lost
    first = _service(tmp_path / "lost", kubeconfig, kube_namespace, instance="team")
    settings = first.backend.settings  # type: ignore[attr-defined]
    first.close()
    lost = _orphans(kube_cluster, kube_namespace, settings, range(1, 3))
    deployed_in = datetime.now(timezone.utc).replace(microsecond=0)
    wait_for(  # the new registry is born in a later second than those objects
        lambda: datetime.now(timezone.utc).replace(microsecond=0) > deployed_in,
        what="the next second",
    )
    # And a new registry for that instance, restarted once (so "created here" no longer brakes)
    service = _reopened(_service(tmp_path / "new", kubeconfig, kube_namespace, instance="team"))
    try:
        assert not service.store.created_here
        # And one orphan deployed after the new registry was created
        young = _orphans(kube_cluster, kube_namespace, settings, range(3, 4))

        # When it reconciles, twice
        with caplog.at_level(logging.WARNING, logger=SERVICE_LOG):
            service.reconcile()
            service.reconcile()

        # Then only the young orphan goes; the old ones stay, logged once with why
        wait_for(
            lambda: not young & _deployments(kube_cluster, kube_namespace).keys(),
            what="the young orphan removed",
        )
        assert lost <= _deployments(kube_cluster, kube_namespace).keys()
        warnings = [r.getMessage() for r in caplog.records if r.name == SERVICE_LOG]
        assert len(warnings) == 1, warnings
        assert "lost 1, lost 2" in warnings[0]
        assert "deployed before this registry was created" in warnings[0]
    finally:
        service.close()
