"""The local model server's `model_config_list` file: what it serves, read and written safely.

Both the built-in server and `tensorflow_model_server` read this one file; the local backend
edits it under its file lock and signals (or lets the server poll) a reload.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from ..errors import Conflict
from ..tfserving.model_config import (
    ModelConfig,
    VersionPolicy,
    parse_model_config_list,
    render_model_config_list,
)
from .base import ServeSpec


class ModelsConfigFile:
    def __init__(self, path: Path, log: logging.Logger | logging.LoggerAdapter[logging.Logger]):
        self.path = path
        self.log = log
        # Every status read parses the file; with 1,000 models that parse outweighs the read,
        # so the last parse is kept for as long as the text is unchanged.
        self._parsed: tuple[str, tuple[ModelConfig, ...]] | None = None

    def read(self) -> list[ModelConfig]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        parsed = self._parsed
        if parsed is not None and text == parsed[0]:
            return list(parsed[1])
        try:
            configs = parse_model_config_list(text)
        except ValueError as error:
            # Never let one unreadable file break every serve: set it aside (for a look) and
            # start from nothing; the reconciler writes back what the rows want.
            aside = self.path.with_suffix(f".unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            self.log.error("The model server config was unreadable (%s); moved to %s", error, aside)
            return []
        self._parsed = (text, tuple(configs))
        return configs

    def write(self, configs: list[ModelConfig]) -> bool:
        """Write the config atomically; returns whether it changed."""
        text = render_model_config_list(configs)
        try:
            if self.path.read_text() == text:
                return False
        except FileNotFoundError:
            pass
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.path)  # the server never reads a half-written file
        return True


def with_version(configs: list[ModelConfig], spec: ServeSpec) -> list[ModelConfig]:
    base_path = str(Path(spec.source).parent)
    result = []
    found = False
    for config in configs:
        if config.name != spec.name:
            result.append(config)
            continue
        found = True
        if config.base_path != base_path:
            raise Conflict(
                f"model {spec.name!r} is already served from {config.base_path!r}, not "
                f"{base_path!r}; the local server reads all versions of a model from one folder"
            )
        versions = tuple(sorted({*config.version_policy.versions, spec.version}))
        result.append(_entry(spec.name, base_path, versions))
    if not found:
        result.append(_entry(spec.name, base_path, (spec.version,)))
    return result


def without_version(configs: list[ModelConfig], spec: ServeSpec) -> list[ModelConfig]:
    result = []
    for config in configs:
        if config.name == spec.name:
            versions = tuple(v for v in config.version_policy.versions if v != spec.version)
            if not versions:
                continue
            config = _entry(config.name, config.base_path, versions)
        result.append(config)
    return result


def _entry(name: str, base_path: str, versions: tuple[int, ...]) -> ModelConfig:
    return ModelConfig(
        name=name,
        base_path=base_path,
        version_policy=VersionPolicy(kind="specific", versions=versions),
    )
