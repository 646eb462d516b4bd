"""Kernels and the CLI read the server's settings from the same Jupyter config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_modelserve.settings import load_settings


def test_settings_come_from_the_servers_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given settings spread over jupyter_config.json and jupyter_server_config.json
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    (tmp_path / "jupyter_config.json").write_text(
        json.dumps({"ModelServeApp": {"db_url": "sqlite:///a.db", "load_timeout": 7}})
    )
    (tmp_path / "jupyter_server_config.json").write_text(
        json.dumps({"ModelServeApp": {"db_url": "sqlite:///b.db"}})
    )

    # When a non-server process loads them
    settings = load_settings()

    # Then the server's file wins where both speak, and c.ModelServeApp reaches the settings
    assert settings.db_url == "sqlite:///b.db"
    assert settings.load_timeout == 7
    # And a command line's config wins over both
    extra = Config({"ModelServeApp": {"db_url": "sqlite:///c.db"}})
    assert load_settings(extra).db_url == "sqlite:///c.db"


@pytest.mark.parametrize(("delete_timeout", "warned"), [(20.0, True), (30.0, True), (90.0, False)])
def test_a_delete_wait_shorter_than_the_pods_grace_period_is_warned_about(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    delete_timeout: float,
    warned: bool,
) -> None:
    # Given the Kubernetes backend (Pods get 30 s to stop) and a DELETE wait of delete_timeout
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    backend = "jupyter_modelserve.backends.kubernetes.KubernetesBackend"
    extra = Config(
        {
            "ModelServeApp": {
                "backend": backend,
                "delete_timeout": delete_timeout,
                "db_url": f"sqlite:///{tmp_path / 'r.db'}",
            },
            "KubernetesBackend": {"termination_grace_period_seconds": 30},
        }
    )

    # When a service is built from those settings
    service = load_settings(extra).build_service()
    service.close()

    # Then a wait that cannot outlast the grace period is named in a warning, and only then
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    said = any("termination grace period (30 s)" in m for m in messages)
    assert said == warned, messages
