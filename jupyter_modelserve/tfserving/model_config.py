"""TF Serving's `model_config_list` text-protobuf file, as the Jupyter side writes and reads it.

The local backend writes this file for both the built-in model server and the real
`tensorflow_model_server`, and the Kubernetes backend puts it in a ConfigMap, so it must stay
importable without TensorFlow or protobuf. Servers parse it with protobuf's `text_format` (the
built-in one in modelserver/config_proto.py); the Jupyter side only reads back its own rendering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

PolicyKind = Literal["latest", "all", "specific"]

__all__ = [
    "ModelConfig",
    "VersionPolicy",
    "parse_model_config_list",
    "render_model_config_list",
]


@dataclass(frozen=True)
class VersionPolicy:
    """Which numbered version folders under a base path are served."""

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            raise ValueError(f"version policy kind must be latest, all or specific: {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"latest num_versions must be at least 1, got {self.num_versions}")
        if any(v < 0 for v in self.versions):
            raise ValueError(f"versions must not be negative: {self.versions}")
        # A list given by a caller is normalised so equality and hashing behave.
        object.__setattr__(self, "versions", tuple(self.versions))

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all")

    @classmethod
    def specific(cls, versions: Sequence[int]) -> VersionPolicy:
        return cls("specific", versions=tuple(versions))


@dataclass(frozen=True)
class ModelConfig:
    """One `config { ... }` entry of a `model_config_list`."""

    name: str
    base_path: str
    model_platform: str = "tensorflow"
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    version_labels: dict[str, int] = field(default_factory=dict)

    def same_servables(self, other: ModelConfig) -> bool:
        """True when only labels differ, so a reload must keep the loaded versions as they are."""
        return (self.name, self.base_path, self.model_platform, self.version_policy) == (
            other.name,
            other.base_path,
            other.model_platform,
            other.version_policy,
        )


# ---------------------------------------------------------------------------------------------
# Rendering


def _quote(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    )
    return f"'{escaped}'"


def _render_policy(policy: VersionPolicy) -> str:
    if policy.kind == "latest":
        return f"latest {{ num_versions: {policy.num_versions} }}"
    if policy.kind == "all":
        return "all {}"
    versions = " ".join(f"versions: {v}" for v in policy.versions)
    return f"specific {{ {versions} }}" if versions else "specific {}"


def render_model_config_list(configs: Sequence[ModelConfig]) -> str:
    """Render `configs` as a ModelServerConfig text proto that TF Serving accepts."""
    lines = ["model_config_list {"]
    for config in configs:
        lines += [
            "  config {",
            f"    name: {_quote(config.name)}",
            f"    base_path: {_quote(config.base_path)}",
            f"    model_platform: {_quote(config.model_platform)}",
            f"    model_version_policy {{ {_render_policy(config.version_policy)} }}",
        ]
        for label, version in sorted(config.version_labels.items()):
            lines.append(f"    version_labels {{ key: {_quote(label)} value: {version} }}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading back: only the exact form rendered above


_STRING = r"'((?:[^'\\\n]|\\.)*)'"
_INTEGER = r"(-?\d+)"
_CONFIG = re.compile(
    rf"  config {{\n    name: {_STRING}\n    base_path: {_STRING}\n"
    rf"    model_platform: {_STRING}\n    model_version_policy {{ (.*) }}\n"
    rf"((?:    version_labels {{ key: '(?:[^'\\\n]|\\.)*' value: -?\d+ }}\n)*)  }}\n"
)
_LABEL = re.compile(rf"    version_labels {{ key: {_STRING} value: {_INTEGER} }}\n")
_LATEST = re.compile(r"latest \{ num_versions: (\d+) \}")
_SPECIFIC = re.compile(r"specific \{\}|specific \{ ((?:versions: \d+ )+)\}")
_UNESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r"}


def _unquote(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in _ESCAPES:
            raise ValueError(f"escape \\{match.group(1)} is not one the renderer writes")
        return _ESCAPES[match.group(1)]

    return _UNESCAPE.sub(replace, body)


def _read_policy(text: str) -> VersionPolicy:
    if text == "all {}":
        return VersionPolicy.all()
    if latest := _LATEST.fullmatch(text):
        return VersionPolicy.latest(int(latest.group(1)))
    if specific := _SPECIFIC.fullmatch(text):
        return VersionPolicy.specific([int(v) for v in re.findall(r"\d+", specific.group(1) or "")])
    raise ValueError(f"unknown model_version_policy {{ {text} }}")


def parse_model_config_list(text: str) -> list[ModelConfig]:
    """Read back a file written by `render_model_config_list`, without TensorFlow or protobuf.

    Only the Jupyter side's own rendering is read: anything else (even a valid text proto) raises
    ValueError naming the line, and the local backend then sets the file aside. The model server
    parses the file with protobuf's text_format, as TF Serving does (modelserver/config_proto.py).
    """
    head, tail = "model_config_list {\n", "}\n"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError("line 1: not a model_config_list as render_model_config_list writes it")
    configs: list[ModelConfig] = []
    names: set[str] = set()
    position, end, line = len(head), len(text) - len(tail), 2
    while position < end:
        match = _CONFIG.match(text, position, end)
        if match is None:
            raise ValueError(f"line {line}: not a config entry as render_model_config_list writes")
        name, base_path, platform, policy, labels = match.groups()
        try:
            config = ModelConfig(
                name=_unquote(name),
                base_path=_unquote(base_path),
                model_platform=_unquote(platform),
                version_policy=_read_policy(policy),
                version_labels={_unquote(key): int(value) for key, value in _LABEL.findall(labels)},
            )
        except ValueError as error:
            raise ValueError(f"line {line}: {error}") from None
        if config.name in names:
            raise ValueError(f"line {line}: model name {config.name!r} appears twice")
        names.add(config.name)
        configs.append(config)
        position = match.end()
        line += match.group().count("\n")
    return configs
