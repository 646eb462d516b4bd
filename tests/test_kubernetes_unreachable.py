"""A Jupyter server whose cluster cannot be reached starts, and answers a clear 503."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from .conftest import SEED_BODY, Api, server_config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": f"https://127.0.0.1:{_closed_port()}", "insecure-skip-tls-verify": True}
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return server_config(
        ModelServeApp={"backend": "kubernetes"},
        KubernetesBackend={"kubeconfig": str(kubeconfig), "model_volume": "models"},
    )


async def test_an_unreachable_cluster_is_a_clear_503_on_the_first_call(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # The server started (this test runs), and the first call that needs the cluster says why
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 503 and envelope["status"] == "SERVICE_UNAVAILABLE"
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:" in envelope["message"]
    # Nothing was half-made, and the registry still answers
    code, listed = await api("GET", "/api/v1/model-version/simple")
    assert code == 200 and [v["version"] for v in listed["result"]] == [1]
