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
