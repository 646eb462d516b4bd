"""A kubeconfig for a stand-in API server on loopback (scripted, hanging or 410 servers)."""

from __future__ import annotations

from pathlib import Path

import yaml


def loopback_kubeconfig(path: Path, port: int) -> Path:
    """Write a kubeconfig at `path` that talks plain HTTP to 127.0.0.1:`port` with a token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path
