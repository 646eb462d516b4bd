"""Every Pod the manifests make, held against each rule of the Pod Security Standards.

The rules are written from the standard's text (kubernetes.io/docs/concepts/security/
pod-security-standards, profiles `baseline` and `restricted`), not from our manifests: an API
server before 1.25 ignores the namespace label, so these checks are what proves the Pods would
be admitted. Three hardening rules the profile leaves out but platforms expect come last. Each
rule is also shown a Pod that breaks it, so none of them can pass by checking nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jupyter_modelserve.backends import manifests
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings

ROOT = "/srv/jupyter/artifacts"
GPU_NODES = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CASES = {
    "plain": (ServeSpec("simple", 1, "gs://bucket/simple/1"), ClusterSettings()),
    "model-volume": (
        ServeSpec("simple", 3, f"{ROOT}/simple/3"),
        ClusterSettings(model_volume="models", artifact_root=ROOT, run_as_user=2000),
    ),
    "s3-secret": (
        ServeSpec("simple", 1, "s3://bucket/simple/7"),
        ClusterSettings(storage_secret="minio", ingress_host="models.example.com"),
    ),
    "gpu": (
        ServeSpec("simple", 1, "gs://bucket/simple/1"),
        ClusterSettings(
            resources={"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
            tolerations=[GPU_NODES],
            node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
            image_pull_secrets=["registry"],
        ),
    ),
}
Pod = dict[str, Any]  # {"metadata": ..., "spec": ...}: a Pod or a workload's Pod template


def pods(objects: list[dict[str, Any]]) -> Iterator[Pod]:
    for obj in objects:
        kind = obj["kind"]
        if kind == "Pod":
            yield obj
        elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
            yield obj["spec"]["template"]
        elif kind == "CronJob":
            yield obj["spec"]["jobTemplate"]["spec"]["template"]


def containers(pod: Pod) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [
        *spec.get("containers", []),
        *spec.get("initContainers", []),
        *spec.get("ephemeralContainers", []),
    ]


def pod_context(pod: Pod) -> dict[str, Any]:
    return pod["spec"].get("securityContext") or {}


def context(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def contexts(pod: Pod) -> list[dict[str, Any]]:
    """The Pod's security context, then each container's."""
    return [pod_context(pod), *(context(c) for c in containers(pod))]


# -- baseline -----------------------------------------------------------------------------------
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def host_process(pod: Pod) -> list[str]:
    """Windows Pods may not run as HostProcess containers."""
    return [
        "windowsOptions.hostProcess"
        for c in contexts(pod)
        if (c.get("windowsOptions") or {}).get("hostProcess")
    ]


def host_namespaces(pod: Pod) -> list[str]:
    """Sharing the host namespaces must be disallowed."""
    return [f for f in ("hostNetwork", "hostPID", "hostIPC") if pod["spec"].get(f)]


def privileged(pod: Pod) -> list[str]:
    """Privileged Pods disable most security mechanisms and must be disallowed."""
    return [c["name"] for c in containers(pod) if context(c).get("privileged")]


def baseline_capabilities(pod: Pod) -> list[str]:
    """Adding capabilities beyond the default set must be disallowed."""
    added = ((context(c).get("capabilities") or {}).get("add") or [] for c in containers(pod))
    return [cap for caps in added for cap in caps if cap not in BASELINE_CAPABILITIES]


def host_path_volumes(pod: Pod) -> list[str]:
    """HostPath volumes must be forbidden."""
    return [v["name"] for v in pod["spec"].get("volumes", []) if "hostPath" in v]


def host_ports(pod: Pod) -> list[str]:
    """HostPorts should be disallowed entirely (or restricted to a known list)."""
    return [
        f"{c['name']}:{p['hostPort']}"
        for c in containers(pod)
        for p in c.get("ports", [])
        if p.get("hostPort")
    ]


def apparmor(pod: Pod) -> list[str]:
    """The default AppArmor profile may not be overridden or disabled."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    bad = [
        key
        for key, value in annotations.items()
        if key.startswith(APPARMOR_PREFIX)
        and value != "runtime/default"
        and not value.startswith("localhost/")
    ]
    profiles = (c.get("appArmorProfile") for c in contexts(pod))
    return bad + [
        p["type"] for p in profiles if p and p.get("type") not in ("RuntimeDefault", "Localhost")
    ]


def selinux(pod: Pod) -> list[str]:
    """Setting a custom SELinux user or role, or an unlisted type, is forbidden."""
    bad = []
    for options in (c.get("seLinuxOptions") for c in contexts(pod)):
        if not options:
            continue
        if options.get("type", "") not in SELINUX_TYPES:
            bad.append(f"type {options['type']}")
        bad += [f"{f} {options[f]}" for f in ("user", "role") if options.get(f)]
    return bad


def proc_mount(pod: Pod) -> list[str]:
    """The default /proc masks are set up to reduce attack surface, and must be required."""
    return [
        c["name"] for c in containers(pod) if context(c).get("procMount", "Default") != "Default"
    ]


def baseline_seccomp(pod: Pod) -> list[str]:
    """Seccomp profile must not be explicitly set to Unconfined."""
    profiles = (c.get("seccompProfile") or {} for c in contexts(pod))
    return [p["type"] for p in profiles if p.get("type") == "Unconfined"]


def sysctls(pod: Pod) -> list[str]:
    """Sysctls can disable security mechanisms; only the safe subset is allowed."""
    found = pod_context(pod).get("sysctls") or []
    return [s["name"] for s in found if s["name"] not in SAFE_SYSCTLS]


# -- restricted ---------------------------------------------------------------------------------
def volume_types(pod: Pod) -> list[str]:
    """Only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected
    and secret volumes are permitted."""
    return [
        v["name"]
        for v in pod["spec"].get("volumes", [])
        if not (set(v) - {"name"}) or not (set(v) - {"name"}) <= RESTRICTED_VOLUMES
    ]


def privilege_escalation(pod: Pod) -> list[str]:
    """Privilege escalation (such as via set-user-ID or set-group-ID file mode) should not be
    allowed: allowPrivilegeEscalation must be false."""
    return [
        c["name"]
        for c in containers(pod)
        if context(c).get("allowPrivilegeEscalation") is not False
    ]


def running_as_non_root(pod: Pod) -> list[str]:
    """Containers must be required to run as non-root users: runAsNonRoot true at the Pod
    level (and not false on a container), or true on every container."""
    at_pod = pod_context(pod).get("runAsNonRoot") is True
    return [
        c["name"]
        for c in containers(pod)
        if context(c).get("runAsNonRoot") is False
        or (not at_pod and context(c).get("runAsNonRoot") is not True)
    ]


def running_as_non_root_user(pod: Pod) -> list[str]:
    """Containers must not set runAsUser to 0."""
    return ["runAsUser 0" for c in contexts(pod) if c.get("runAsUser") == 0]


def restricted_seccomp(pod: Pod) -> list[str]:
    """Seccomp profile must be explicitly set to RuntimeDefault or Localhost (at the Pod level,
    or on every container); containers may not set anything else."""
    allowed = ("RuntimeDefault", "Localhost")
    at_pod = (pod_context(pod).get("seccompProfile") or {}).get("type") in allowed
    bad = []
    for c in containers(pod):
        kind = (context(c).get("seccompProfile") or {}).get("type")
        if (kind is not None and kind not in allowed) or (kind is None and not at_pod):
            bad.append(c["name"])
    return bad


def restricted_capabilities(pod: Pod) -> list[str]:
    """Containers must drop ALL capabilities, and may only add back NET_BIND_SERVICE."""
    bad = []
    for c in containers(pod):
        caps = context(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{c['name']} keeps capabilities")
        bad += [f"{c['name']} adds {a}" for a in caps.get("add") or [] if a != "NET_BIND_SERVICE"]
    return bad


# -- hardening the profile does not require --------------------------------------------------
def read_only_root_filesystem(pod: Pod) -> list[str]:
    """Hardened platforms expect a read-only root filesystem."""
    return [
        c["name"] for c in containers(pod) if context(c).get("readOnlyRootFilesystem") is not True
    ]


def writable_tmp(pod: Pod) -> list[str]:
    """With a read-only root, every container gets an emptyDir at /tmp for temporary files."""
    empty = {v["name"] for v in pod["spec"].get("volumes", []) if "emptyDir" in v}
    return [
        c["name"]
        for c in containers(pod)
        if not any(
            m["mountPath"] == "/tmp" and m["name"] in empty for m in c.get("volumeMounts", [])
        )
    ]


def fixed_non_root_uid(pod: Pod) -> list[str]:
    """A fixed UID above 0 (the image's USER may be root or a name admission cannot check)."""
    at_pod = (pod_context(pod).get("runAsUser") or 0) > 0
    return [
        c["name"] for c in containers(pod) if not at_pod and (context(c).get("runAsUser") or 0) <= 0
    ]


def no_service_account_token(pod: Pod) -> list[str]:
    """A model server never talks to the API server: no token mounted for it to leak."""
    return [] if pod["spec"].get("automountServiceAccountToken") is False else ["token mounted"]


Rule = Callable[[Pod], list[str]]
RULES: dict[str, Rule] = {rule.__name__: rule for rule in (
    host_process, host_namespaces, privileged, baseline_capabilities, host_path_volumes,
    host_ports, apparmor, selinux, proc_mount, baseline_seccomp, sysctls, volume_types,
    privilege_escalation, running_as_non_root, running_as_non_root_user, restricted_seccomp,
    restricted_capabilities, read_only_root_filesystem, writable_tmp, fixed_non_root_uid,
    no_service_account_token,
)}  # fmt: skip


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", CASES)
def test_every_pod_passes_the_rule(case: str, rule: str) -> None:
    # Given the objects of a serve made with these settings
    spec, settings = CASES[case]
    found = list(pods(manifests.manifests(spec, settings)))
    # Then there is a Pod to check, and it breaks no part of the rule
    assert found, "no Pod template among the objects"
    for pod in found:
        assert RULES[rule](pod) == [], RULES[rule].__doc__


def _break(pod: Pod, rule: str) -> None:
    """Make `pod` break `rule` the way a careless manifest would."""
    spec = pod["spec"]
    container = spec["containers"][0]
    ctx = container["securityContext"]
    edits: dict[str, Callable[[], Any]] = {
        "host_process": lambda: ctx.update(windowsOptions={"hostProcess": True}),
        "host_namespaces": lambda: spec.update(hostPID=True),
        "privileged": lambda: ctx.update(privileged=True),
        "baseline_capabilities": lambda: ctx["capabilities"].update(add=["SYS_ADMIN"]),
        "host_path_volumes": lambda: spec["volumes"].append(
            {"name": "h", "hostPath": {"path": "/"}}
        ),
        "host_ports": lambda: container["ports"][0].update(hostPort=8501),
        "apparmor": lambda: pod["metadata"]["annotations"].update(
            {APPARMOR_PREFIX + "tensorflow-serving": "unconfined"}
        ),
        "selinux": lambda: ctx.update(seLinuxOptions={"user": "system_u"}),
        "proc_mount": lambda: ctx.update(procMount="Unmasked"),
        "baseline_seccomp": lambda: ctx.update(seccompProfile={"type": "Unconfined"}),
        "sysctls": lambda: spec["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "1"}]
        ),
        "volume_types": lambda: spec["volumes"].append(
            {"name": "n", "nfs": {"server": "x", "path": "/"}}
        ),
        "privilege_escalation": lambda: ctx.pop("allowPrivilegeEscalation"),
        "running_as_non_root": lambda: ctx.update(runAsNonRoot=False),
        "running_as_non_root_user": lambda: ctx.update(runAsUser=0),
        "restricted_seccomp": lambda: (
            spec["securityContext"].pop("seccompProfile"),
            ctx.pop("seccompProfile"),
        ),
        "restricted_capabilities": lambda: ctx["capabilities"].update(drop=["NET_RAW"]),
        "read_only_root_filesystem": lambda: ctx.update(readOnlyRootFilesystem=False),
        "writable_tmp": lambda: spec.setdefault("initContainers", []).append(
            {"name": "init", "image": "busybox", "securityContext": dict(ctx)}
        ),
        "fixed_non_root_uid": lambda: spec["securityContext"].pop("runAsUser"),
        "no_service_account_token": lambda: spec.pop("automountServiceAccountToken"),
    }
    edits[rule]()


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_catches_a_pod_that_breaks_it(rule: str) -> None:
    # Given a Pod of ours that passes, changed to break just this rule
    spec, settings = CASES["s3-secret"]
    [pod] = pods(manifests.manifests(spec, settings))
    broken = copy.deepcopy(pod)
    _break(broken, rule)
    # Then the rule finds the fault, and no rule found one before the change
    assert RULES[rule](pod) == []
    assert RULES[rule](broken) != []
