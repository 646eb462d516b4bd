"""pytest fixtures: a real Kubernetes control plane, a fresh namespace, a stand-in kubelet.

Load with ``pytest_plugins = ["tests.kube.fixtures"]`` in a conftest.

- ``kube_cluster`` (session): the cluster of ``$MODELSERVE_TEST_KUBECONFIG`` when set (for example
  after ``eval "$(scripts/test-cluster start DIR)"``), else one started by
  ``scripts/test-cluster start`` in a temporary folder and stopped at the end of the session. A
  cluster that cannot be built or started skips the tests that need it, or fails them when
  ``MODELSERVE_REQUIRE_KUBERNETES=1`` (as CI should set).
- ``kube_namespace``: a new namespace per test, deleted afterwards.
- ``kubelet``: a :class:`~tests.kube.kubelet.StandInKubelet` on that namespace.
- ``kube_api_client``: an admin ``kubernetes.client.ApiClient``, closed afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest
import yaml

from . import model

if TYPE_CHECKING:  # imported lazily below: this plugin must load without the kubernetes client
    from kubernetes.client import ApiClient

    from .kubelet import StandInKubelet

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test-cluster"
ENV_KUBECONFIG = "MODELSERVE_TEST_KUBECONFIG"
ENV_REQUIRE = "MODELSERVE_REQUIRE_KUBERNETES"
FIXTURE = "kube_cluster"
RBAC_GROUP = "rbac.authorization.k8s.io"
# Fetching Debian's source and compiling two Kubernetes binaries: ~5 minutes on 2 cores.
BUILD_TIMEOUT = 30 * 60
START_TIMEOUT = 3 * 60

T = TypeVar("T")

# Why the binaries could not be built during collection, if they could not.
_build_error: str | None = None


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when Kubernetes tests are required (CI), with the reason."""
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"Kubernetes is required ({ENV_REQUIRE}=1) but {reason}", pytrace=False)
    pytest.skip(f"no Kubernetes test cluster: {reason}")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------- cluster


@dataclass(frozen=True)
class RestrictedUser:
    """Credentials of a ServiceAccount bound only to one Role in one namespace."""

    namespace: str
    service_account: str
    username: str  # as the API server sees it: system:serviceaccount:<namespace>:<name>
    token: str
    kubeconfig: Path


@dataclass(frozen=True)
class KubeCluster:
    """A running control plane, as the tests see it."""

    kubeconfig: Path  # admin (cluster-admin through the system:masters group)
    server: str  # https://127.0.0.1:<port>
    token: str | None  # the admin bearer token (None for an external cert-based kubeconfig)
    scratch: Path  # a private folder for kubeconfigs the helpers write
    directory: Path | None = None  # scripts/test-cluster's DIR (logs) when we started it
    _cluster_entry: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: Path, scratch: Path, directory: Path | None = None
    ) -> KubeCluster:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context")
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
        context: dict[str, Any] = contexts.get(context_name) or next(iter(contexts.values()), {})
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        cluster = dict(clusters[context["cluster"]])
        # Inline the CA so the kubeconfigs written elsewhere stay valid on their own.
        authority = cluster.pop("certificate-authority", None)
        if authority and "certificate-authority-data" not in cluster:
            path = Path(authority)
            path = path if path.is_absolute() else kubeconfig.parent / path
            cluster["certificate-authority-data"] = base64.b64encode(path.read_bytes()).decode()
        return cls(
            kubeconfig=kubeconfig,
            server=str(cluster["server"]),
            token=users.get(context.get("user"), {}).get("token"),
            scratch=scratch,
            directory=directory,
            _cluster_entry=cluster,
        )

    def api_client(self) -> ApiClient:
        """A new admin ``kubernetes.client.ApiClient`` (the caller closes it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def write_kubeconfig(self, path: Path, token: str, user: str = "user") -> Path:
        """A kubeconfig for this cluster authenticating with ``token``."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "modelserve-test", "cluster": dict(self._cluster_entry)}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "modelserve-test", "user": user}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    def restricted_user(
        self,
        namespace: str,
        role: Mapping[str, Any] | str,
        *,
        name: str | None = None,
        timeout: float = 20.0,
    ) -> RestrictedUser:
        """A ServiceAccount in ``namespace`` bound to ``role`` only, with a token and kubeconfig.

        ``role`` is a Role manifest (created in ``namespace``; its ``metadata.name`` is kept or
        defaulted) or the name of an existing ClusterRole (bound in ``namespace`` only). The
        token comes from the TokenRequest API, which kube-apiserver serves because
        scripts/test-cluster gives it a service-account signing key: no token controller needed.
        Returns once the API server accepts the token and applies the binding, so the test's
        very first call sees the final permissions.
        """
        from kubernetes.client import (
            AuthenticationV1Api,
            AuthenticationV1TokenRequest,
            AuthorizationV1Api,
            CoreV1Api,
            RbacAuthorizationV1Api,
            V1ClusterRole,
            V1Role,
            V1RoleBinding,
            V1ServiceAccount,
            V1SubjectAccessReview,
            V1TokenReview,
        )

        account = name or f"restricted-{secrets.token_hex(3)}"
        username = f"system:serviceaccount:{namespace}:{account}"
        api = self.api_client()
        try:
            core, rbac = CoreV1Api(api), RbacAuthorizationV1Api(api)
            core.create_namespaced_service_account(
                namespace, model(V1ServiceAccount, {"metadata": {"name": account}})
            )
            # The first rule of the role, as (verb, API group, resource): probed below.
            probe: tuple[str, str, str] | None = None
            role_ref: dict[str, str]
            if isinstance(role, str):
                role_ref = {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}

                def filled() -> V1ClusterRole | None:
                    found = rbac.read_cluster_role(role)
                    # An aggregated role (admin, edit, view) is empty until the controller
                    # manager's clusterrole-aggregation loop fills it, just after start-up.
                    return None if found.aggregation_rule and not found.rules else found

                cluster_role = wait_for(filled, timeout=timeout, what=f"ClusterRole {role}")
                first = cluster_role.rules[0] if cluster_role.rules else None
                if first is not None and first.resources:
                    verbs, groups = first.verbs or ["get"], first.api_groups or [""]
                    probe = (verbs[0], groups[0], first.resources[0])
            else:
                manifest = {**role, "metadata": {**(role.get("metadata") or {})}}
                manifest.setdefault("apiVersion", f"{RBAC_GROUP}/v1")
                manifest.setdefault("kind", "Role")
                manifest["metadata"].setdefault("name", f"{account}-role")
                manifest["metadata"]["namespace"] = namespace
                rbac.create_namespaced_role(namespace, model(V1Role, manifest))
                role_ref = {
                    "apiGroup": RBAC_GROUP,
                    "kind": "Role",
                    "name": manifest["metadata"]["name"],
                }
                rules = manifest.get("rules") or []
                if rules and rules[0].get("resources"):
                    first_rule = rules[0]
                    probe = (
                        first_rule["verbs"][0],
                        (first_rule.get("apiGroups") or [""])[0],
                        first_rule["resources"][0],
                    )
            binding = {
                "metadata": {"name": f"{account}-binding"},
                "roleRef": role_ref,
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            }
            rbac.create_namespaced_role_binding(namespace, model(V1RoleBinding, binding))
            request = core.create_namespaced_service_account_token(
                account,
                namespace,
                model(AuthenticationV1TokenRequest, {"spec": {"expirationSeconds": 3600}}),
            )
            if request.status is None or not request.status.token:
                raise RuntimeError(f"the TokenRequest for {username} returned no token")
            token = request.status.token

            # The authenticator and the RBAC authorizer read informer caches: wait for both.
            authn = AuthenticationV1Api(api)

            def authenticated() -> bool:
                review = authn.create_token_review(model(V1TokenReview, {"spec": {"token": token}}))
                return bool(review.status and review.status.authenticated)

            wait_for(authenticated, timeout=timeout, what=f"{username}'s token to authenticate")
            if probe is not None:
                authz = AuthorizationV1Api(api)
                verb, group, resource = probe
                attributes = {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                }

                def allowed() -> bool:
                    spec = {"user": username, "resourceAttributes": attributes}
                    review = authz.create_subject_access_review(
                        model(V1SubjectAccessReview, {"spec": spec})
                    )
                    return bool(review.status and review.status.allowed)

                wait_for(allowed, timeout=timeout, what=f"RBAC to allow {username} {attributes}")
        finally:
            api.close()
        path = self.write_kubeconfig(
            self.scratch / f"{namespace}-{account}.kubeconfig", token, user=account
        )
        return RestrictedUser(namespace, account, username, token, path)


def _cluster_needed(items: list[pytest.Item]) -> bool:
    return any(FIXTURE in getattr(item, "fixturenames", ()) for item in items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build the binaries before any test runs, so the build is not under a test's timeout.

    A first build takes minutes (pytest-timeout would cut the first Kubernetes test short);
    when cached, this is a quick version check. Nothing happens when no selected test needs
    the cluster or an external one is configured. The build's progress goes to the terminal.
    """
    global _build_error
    if config.option.collectonly or os.environ.get(ENV_KUBECONFIG):
        return
    if not _cluster_needed(items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    output: list[str] = []
    try:
        # coreutils' timeout bounds the whole build (a hung download included).
        with subprocess.Popen(
            ["timeout", str(BUILD_TIMEOUT), str(SCRIPT), "build"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as build:
            assert build.stderr is not None
            for line in build.stderr:
                output.append(line)
                # Quiet when cached; a build's progress (minutes of it) is worth showing.
                if reporter is not None and "using the cached" not in line:
                    reporter.write_line(line.rstrip())
        if build.returncode != 0:
            _build_error = f"`scripts/test-cluster build` failed:\n{_tail(''.join(output))}"
    except OSError as exc:
        _build_error = f"`scripts/test-cluster build` could not run: {exc}"


def _watchdog(directory: Path) -> subprocess.Popen[bytes]:
    """Stop the cluster when this pytest process dies, even by SIGKILL (no teardown runs then).

    ``tail --pid`` returns once the pid is gone; the watchdog has its own session, so whatever
    kills pytest's process group leaves it to clean up.
    """
    return subprocess.Popen(
        [
            "bash",
            "-c",
            'tail --pid="$1" -f /dev/null; exec "$2" stop "$3"',
            "test-cluster-watchdog",
            str(os.getpid()),
            str(SCRIPT),
            str(directory),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop_cluster(directory: Path) -> str | None:
    """Stop the cluster in ``directory``; the error text, if it would not stop."""
    try:
        done = subprocess.run(
            [str(SCRIPT), "stop", str(directory)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else _tail(done.stderr)


def _check_reachable(cluster: KubeCluster) -> None:
    from kubernetes.client import VersionApi

    api = cluster.api_client()
    try:
        VersionApi(api).get_code(_request_timeout=10)
    except Exception as exc:
        _unavailable(f"the cluster of {cluster.kubeconfig} does not answer: {exc}")
    finally:
        api.close()


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real kube-apiserver + kube-controller-manager on 127.0.0.1 for the whole session."""
    try:
        import kubernetes  # noqa: F401
    except ImportError as exc:
        _unavailable(f"the kubernetes client is not installed ({exc})")
    scratch = tmp_path_factory.mktemp("kube")
    external = os.environ.get(ENV_KUBECONFIG)
    if external:
        path = Path(external)
        if not path.is_file():
            _unavailable(f"{ENV_KUBECONFIG}={external} is not a file")
        cluster = KubeCluster.from_kubeconfig(path, scratch)
        _check_reachable(cluster)
        yield cluster
        return
    if _build_error:
        _unavailable(_build_error)

    directory = scratch / "cluster"
    watchdog = _watchdog(directory)
    try:
        try:
            started = subprocess.run(
                [str(SCRIPT), "start", str(directory)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT + START_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"`scripts/test-cluster start` failed: {exc}")
        if started.returncode != 0:
            _unavailable(f"`scripts/test-cluster start` failed:\n{_tail(started.stderr)}")
        yield KubeCluster.from_kubeconfig(directory / "kubeconfig", scratch, directory)
    finally:
        error = _stop_cluster(directory)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watchdog.pid, signal.SIGKILL)  # its own group: the bash and its tail
        watchdog.wait(timeout=10)
        if error:
            raise RuntimeError(f"the test cluster in {directory} would not stop: {error}")


# ------------------------------------------------------------------------------ per-test pieces


@pytest.fixture
def kube_api_client(kube_cluster: KubeCluster) -> Iterator[ApiClient]:
    """An admin ``kubernetes.client.ApiClient`` for one test."""
    api = kube_cluster.api_client()
    try:
        yield api
    finally:
        api.close()


def _namespace_name(test_name: str) -> str:
    # DNS-1123 label: lowercase alphanumerics and '-', at most 63 characters.
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards with everything in it."""
    from kubernetes.client import ApiException, CoreV1Api, V1DeleteOptions, V1Namespace

    name = _namespace_name(request.node.name)
    api = kube_cluster.api_client()
    core = CoreV1Api(api)
    # Pods that do not pass Pod Security `restricted` are refused where it is enforced (from
    # Kubernetes 1.23; the 1.20 test cluster ignores the label, tests/test_pod_security.py holds
    # the manifests against every rule instead).
    labels = {"modelserve-test": "true", "pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace(model(V1Namespace, {"metadata": {"name": name, "labels": labels}}))
    try:
        yield name
    finally:
        try:
            try:
                core.delete_namespace(name, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise

            # The stand-in kubelet has stopped by now (it depends on this fixture), and without
            # a kubelet, bound Pods wait forever for one to confirm their graceful deletion,
            # keeping the namespace Terminating: confirm it here, as the kubelet would.
            def no_pods_left() -> bool:
                pods = core.list_namespaced_pod(name).items
                for pod in pods:
                    if pod.metadata is None or pod.metadata.name is None:
                        continue
                    try:
                        core.delete_namespaced_pod(
                            pod.metadata.name,
                            name,
                            grace_period_seconds=0,
                            body=V1DeleteOptions(grace_period_seconds=0),
                            _preload_content=False,
                        )
                    except ApiException as exc:
                        if exc.status != 404:
                            raise
                return not pods

            wait_for(no_pods_left, timeout=30, what=f"the pods of namespace {name} to go")
        finally:
            api.close()


@pytest.fixture
def kubelet(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[StandInKubelet]:
    """A started :class:`~tests.kube.kubelet.StandInKubelet` for ``kube_namespace``.

    Its policy defaults to ``ready``; a test changes it with ``kubelet.policy = ...``.
    """
    from .kubelet import StandInKubelet

    api = kube_cluster.api_client()
    standin = StandInKubelet(api, [kube_namespace])
    try:
        standin.start()
        yield standin
    finally:
        standin.stop()
        api.close()
        if standin.errors:
            warnings.warn(
                f"stand-in kubelet reported {len(standin.errors)} error(s), first: "
                f"{standin.errors[0]!r}",
                stacklevel=1,
            )
