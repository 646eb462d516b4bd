"""Version discovery: numbered folders under a model's base path, chosen by version policy."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..tfserving.model_config import ModelConfig

Fingerprint = tuple[int, ...]


@dataclass(frozen=True)
class Discovery:
    wanted: dict[int, str]  # version -> folder that should be loaded
    missing: dict[int, str]  # `specific` versions whose folder does not exist
    problem: str | None  # a model-level problem worth one log line, e.g. no base path


def numbered_folders(base_path: str) -> dict[int, str]:
    """{version: path} for each subfolder whose name is digits only."""
    found: dict[int, str] = {}
    with os.scandir(base_path) as entries:
        for entry in entries:
            if entry.name.isascii() and entry.name.isdigit() and entry.is_dir():
                found[int(entry.name)] = entry.path
    return found


def discover(config: ModelConfig) -> Discovery:
    base = config.base_path
    problem: str | None
    try:
        found = numbered_folders(base)
    except OSError as error:
        found, problem = {}, f"Could not read base path {base}: {error.strerror or error}"
    else:
        problem = None if found else f"No versions found under base path {base}"
    policy = config.version_policy
    if policy.kind == "specific":
        wanted = {v: found[v] for v in policy.versions if v in found}
        missing = {v: os.path.join(base, str(v)) for v in policy.versions if v not in found}
        return Discovery(wanted, missing, problem if not policy.versions else None)
    if policy.kind == "latest":
        wanted = {v: found[v] for v in sorted(found)[-policy.num_versions :]}
    else:
        wanted = found
    return Discovery(wanted, {}, problem)


def fingerprint(path: str) -> Fingerprint | None:
    """Changes when a version folder is (re)written: lets a failed load be retried then."""
    try:
        folder = os.stat(path)
    except OSError:
        return None
    stamp: tuple[int, ...] = (folder.st_mtime_ns,)
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            continue
        stamp += (st.st_mtime_ns, st.st_size)
    return stamp
