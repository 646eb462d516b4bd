"""TF Serving's `--model_config_file`, parsed by the library TF Serving itself uses.

The text is parsed with protobuf's `text_format` into `tensorflow-serving-api`'s
`ModelServerConfig`, so exactly the configs `tensorflow_model_server` accepts are accepted here,
then checked as TF Serving's `ServerCore::ReloadConfig` checks them (same error wording) and turned
into the small `ModelConfig` dataclasses the manager works with. The protos import in ~50 ms
without TensorFlow, so start-up is not held up.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ..tfserving.model_config import ModelConfig, VersionPolicy
from .logs import log

# Bounds what one file may make us parse; 1,000 rendered models take ~200 KB.
MAX_CONFIG_BYTES = 8 * 1024 * 1024
# The only platform the built-in server loads (TF Serving's kTensorFlowModelPlatform).
TENSORFLOW_PLATFORM = "tensorflow"

__all__ = ["MAX_CONFIG_BYTES", "parse_model_server_config", "read_model_server_config"]


def read_model_server_config(path: str) -> list[ModelConfig]:
    """The models listed in the config file at `path`; OSError or ValueError if unusable."""
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"Invalid protobuf file: '{path}': larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"Invalid protobuf file: '{path}': not UTF-8 ({error})") from None
    return parse_model_server_config(text, source=path)


def parse_model_server_config(text: str, source: str = "<string>") -> list[ModelConfig]:
    """Parse a `ModelServerConfig` text proto; ValueError worded as TF Serving words it."""
    return list(_parse(text, source))


# The watcher re-reads the file every poll period, as TF Serving does, and the file rarely
# changes: protobuf's text parser takes ~0.1 s for 1,000 models, so the last parse is kept.
@functools.lru_cache(maxsize=1)
def _parse(text: str, source: str) -> tuple[ModelConfig, ...]:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        # TF Serving's ParseProtoTextFile says this; protobuf's message gives line:column.
        raise ValueError(f"Invalid protobuf file: '{source}': {error}") from None
    kind = config.WhichOneof("config")
    if kind is None:
        # TF Serving "takes no action for empty config"; refusing keeps the served models on a
        # reload here too (the watcher keeps the old config when reading fails).
        raise ValueError(f"'{source}' sets no model_config_list: taking no action for empty config")
    if kind == "custom_model_config":
        raise ValueError("Missing custom_model_config_loader in ServerCore Options")
    entries = list(config.model_config_list.config)
    _validate_model_config_list(entries)
    return tuple(_to_model_config(entry) for entry in entries)


def _validate_model_config_list(entries: list[Any]) -> None:
    """TF Serving's ValidateModelConfigList, then the per-model platform checks."""
    names: set[str] = set()
    for entry in entries:
        if entry.name in names:
            raise ValueError(f"Illegal to list model {entry.name} multiple times in config list")
        names.add(entry.name)
    for entry in entries:
        # Our own rule: the name is part of every URL, so an empty one serves nothing.
        if not entry.name:
            raise ValueError(f"Model with base_path()={entry.base_path} has an empty name")
        if _is_relative_path(entry.base_path):
            raise ValueError(
                f"Expected model {entry.name} to have an absolute path or URI; "
                f"got base_path()={entry.base_path}"
            )
    for entry in entries:
        platform = _platform(entry)
        if platform != TENSORFLOW_PLATFORM:
            raise ValueError(f"Model {entry.name} requests unsupported platform {platform}")


def _is_relative_path(uri: str) -> bool:
    """TF Serving's UriIsRelativePath: no `scheme://` and not starting with `/`."""
    scheme, separator, _ = uri.partition("://")
    if separator and scheme[:1].isalpha() and all(c.isalnum() or c in "+.-" for c in scheme):
        return False
    return not uri.startswith("/")


def _platform(entry: Any) -> str:
    """TF Serving's GetPlatform: `model_platform`, or the deprecated `model_type`."""
    unspecified = model_server_config_pb2.MODEL_TYPE_UNSPECIFIED
    if entry.model_type != unspecified:
        if entry.model_platform:
            raise ValueError(
                "Illegal setting both ModelServerConfig::model_type (deprecated) "
                "and ModelServerConfig::model_platform."
            )
        if entry.model_type != model_server_config_pb2.TENSORFLOW:
            raise ValueError(
                f"ModelServerConfig::model_type choice {entry.model_type} not supported."
            )
        return TENSORFLOW_PLATFORM
    if not entry.model_platform:
        raise ValueError(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) "
            "nor ModelServerConfig::model_platform."
        )
    return str(entry.model_platform)


def _version_policy(entry: Any) -> VersionPolicy:
    policy = entry.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return VersionPolicy.all()
    if choice == "specific":
        versions = tuple(int(v) for v in policy.specific.versions)
        if any(v < 0 for v in versions):
            raise ValueError(f"Model {entry.name}: specific versions must not be negative")
        return VersionPolicy.specific(versions)
    # Unset or `latest`: TF Serving serves max(num_versions, 1) latest versions.
    return VersionPolicy.latest(max(int(policy.latest.num_versions), 1))


def _to_model_config(entry: Any) -> ModelConfig:
    if entry.HasField("logging_config"):
        _warn_logging_ignored(entry.name)
    return ModelConfig(
        name=str(entry.name),
        base_path=str(entry.base_path),
        model_platform=_platform(entry),
        version_policy=_version_policy(entry),
        version_labels={str(k): int(v) for k, v in entry.version_labels.items()},
    )


@functools.cache
def _warn_logging_ignored(name: str) -> None:
    # Once per model: the watcher re-reads the file every poll period.
    log.warning("Model %s: logging_config (request logging) is not supported; ignored", name)
