"""ModelRegistry: the registry's rules, the one door to registered models and their versions.

What may be registered and how it is copied (never through a link out of its folder, within a
size and time bound), where artifacts go, when a model or version may be deleted, and every
read and change of the registry that a front door makes. `ServeService` holds one as
`service.registry`; front doors never reach the store behind it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Conflict, InvalidInput, NotFound, ServerFault
from ..locks import KeyedLocks
from ..schemas import (
    MAX_TAG_LENGTH,
    REMOTE_SCHEMES,
    ModelVersionView,
    RegisteredModelView,
    check_remote_uri,
)
from . import artifacts, keras_file, mlflow_source, safe_copy
from .paths import local_source, name_max
from .store import RegistryStore

DEMO_MODEL = "simple"
DEFAULT_MAX_ARTIFACT_BYTES = 4 * 1024**3  # c.ModelServeApp.max_artifact_bytes's default
ARTIFACT_ROOT_SETTING = "c.ModelServeApp.artifact_root"
MLFLOW_TAG_PREFIX = "mlflow:"  # a version registered from MLflow keeps its URI as a tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionDetails:
    """What a user says about a version when registering it; the registry adds the rest."""

    description: str | None = None
    tags: tuple[str, ...] = ()
    dataset: str | None = None
    experiment_id: str = ""  # Submarine's experiment that produced the model, if any


NO_DETAILS = VersionDetails()


class ModelRegistry:
    def __init__(
        self,
        store: RegistryStore,
        artifact_root: str | Path,
        lock_timeout: float = 90.0,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        artifact_copy_seconds: float = 1800.0,
    ) -> None:
        self.store = store
        self.artifact_root = Path(artifact_root)
        self.max_artifact_bytes = max_artifact_bytes
        # One registration's copy gives up after this long: no read is unbounded, and a
        # staging folder older than artifacts.STALE_STAGING_SECONDS is then surely a dead
        # process's.
        self.artifact_copy_seconds = artifact_copy_seconds
        # One registration or delete per registered model at a time in this process, so a
        # delete never removes the folder a registration is placing.
        self._model_locks: KeyedLocks[str] = KeyedLocks(
            lock_timeout, lambda name: f"registered model {name!r}"
        )

    # -- reads and plain changes ---------------------------------------------------------------

    def list_registered_models(
        self, limit: int | None = None, offset: int = 0
    ) -> list[RegisteredModelView]:
        return self.store.list_registered_models(limit=limit, offset=offset)

    def get_registered_model(self, name: str) -> RegisteredModelView:
        return self.store.get_registered_model(name)

    def update_registered_model(
        self,
        name: str,
        new_name: str | None = None,
        description: str | None = None,
        *,
        description_given: bool = False,
    ) -> RegisteredModelView:
        """Change a model's description; a rename is refused (Submarine's PATCH sends `name`)."""
        if new_name is not None and new_name != name:
            raise InvalidInput(
                "name: renaming a registered model is not supported; register it under the "
                "new name instead"
            )
        if not description_given:  # nothing else can change
            return self.store.get_registered_model(name)
        return self.store.update_registered_model(name, description)

    def add_registered_model_tag(self, name: str, tag: str) -> None:
        self.store.add_registered_model_tag(name, tag)

    def delete_registered_model_tag(self, name: str, tag: str) -> None:
        self.store.delete_registered_model_tag(name, tag)

    def list_model_versions(
        self, name: str, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersionView]:
        return self.store.list_model_versions(name, limit=limit, offset=offset)

    def get_model_version(self, name: str, version: int) -> ModelVersionView:
        return self.store.get_model_version(name, version)

    def update_model_version(
        self, name: str, version: int, changes: dict[str, str | None]
    ) -> ModelVersionView:
        return self.store.update_model_version(name, version, changes)

    def add_model_version_tag(self, name: str, version: int, tag: str) -> None:
        self.store.add_model_version_tag(name, version, tag)

    def delete_model_version_tag(self, name: str, version: int, tag: str) -> None:
        self.store.delete_model_version_tag(name, version, tag)

    # -- registering -----------------------------------------------------------------------------

    def register_saved_model(
        self,
        source: str | Path,
        name: str,
        details: VersionDetails = NO_DETAILS,
    ) -> ModelVersionView:
        """Copy a SavedModel folder into the registry as the next version of `name`.

        Links out of the folder, devices, FIFOs and sockets are refused (InvalidInput), a folder
        over `max_artifact_bytes` is refused (PayloadTooLarge); a failure leaves nothing behind.
        """
        self._check_name_fits(name)
        staging = self._new_staging()
        with self._faults_of_ours(staging):
            artifacts.stage_saved_model(source, staging, self._limits())
        return self._adopt_staged(staging, name, details)

    def register_keras_model(
        self,
        model: Any,
        name: str,
        details: VersionDetails = NO_DETAILS,
    ) -> ModelVersionView:
        """Export an in-memory Keras model and register it as the next version of `name`."""
        self._check_name_fits(name)
        staging = self._new_staging()
        with self._faults_of_ours(staging):
            artifacts.export_keras_model(model, staging, self.max_artifact_bytes)
        return self._adopt_staged(staging, name, details)

    def register_keras_file(
        self,
        source: str,
        name: str,
        details: VersionDetails = NO_DETAILS,
        base_dir: Path | None = None,
    ) -> ModelVersionView:
        """Load a `.keras` / `.h5` file (in a child process) and register its SavedModel export.

        A relative `source` is read from `base_dir` (never through a link out of it).
        """
        self._check_name_fits(name)
        staging, work = self._new_staging(), self._new_staging()
        try:
            with self._faults_of_ours(staging):
                keras_file.stage_keras_file(source, base_dir, staging, work, self._limits())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self._adopt_staged(staging, name, details)

    def register_mlflow_model(
        self, uri: str, name: str, details: VersionDetails = NO_DETAILS
    ) -> ModelVersionView:
        """Register an MLflow model URI (runs:/, models:/) logged with a TensorFlow or Keras
        flavour; MLflow resolves it against the user's tracking URI (mlflow_source.py).

        The URI is kept as the version's tag `mlflow:<uri>`: `source` is the registry's copy,
        which is what gets served.
        """
        self._check_name_fits(name)
        staging, work = self._new_staging(), self._new_staging()
        try:
            with self._faults_of_ours(staging):
                mlflow_source.stage_mlflow_model(uri, staging, work, self._limits())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        origin = f"{MLFLOW_TAG_PREFIX}{uri}"
        if len(origin) <= MAX_TAG_LENGTH and origin not in details.tags:
            details = dataclasses.replace(details, tags=(*details.tags, origin))
        return self._adopt_staged(staging, name, details)

    def clean_staging(self) -> list[Path]:
        """Remove what killed registrations left in `<artifact_root>/.staging`; returns it.

        Safe while other processes register: a folder of a live process of this host stays
        (see artifacts.clean_staging). Meant to run once when a server starts.
        """
        return artifacts.clean_staging(self._staging_root)

    def register_remote_model(
        self,
        uri: str,
        name: str,
        details: VersionDetails = NO_DETAILS,
    ) -> ModelVersionView:
        """Record an s3:// or gs:// version folder as the next version of `name`, uncopied."""
        if not uri.startswith(REMOTE_SCHEMES):
            raise InvalidInput(f"source: {uri!r} is not an s3:// or gs:// URI")
        check_remote_uri(uri)  # before any message that repeats the uri
        if not re.fullmatch(r"[0-9]+", uri.rstrip("/").rsplit("/", 1)[-1]):
            raise InvalidInput(
                f"source: {uri!r} must name a numbered version folder (…/{name}/1), the layout "
                "TensorFlow Serving reads"
            )
        return self._add_version(name, lambda _version: uri.rstrip("/"), details)

    def register(
        self,
        source: str,
        name: str,
        details: VersionDetails = NO_DETAILS,
        base_dir: Path | None = None,
    ) -> ModelVersionView:
        """Register a local SavedModel folder (copied), a `.keras` / `.h5` file (exported), an
        MLflow model URI (downloaded, then copied or exported), or a remote URI (recorded).

        A relative folder is read from `base_dir` when given (the REST API passes the Jupyter
        server's root_dir, where the file browser's paths live), else from the working folder.
        """
        if source.startswith(REMOTE_SCHEMES):
            return self.register_remote_model(source, name, details)
        if mlflow_source.is_mlflow_uri(source):
            return self.register_mlflow_model(source, name, details)
        if keras_file.is_keras_file(source):
            return self.register_keras_file(source, name, details, base_dir)
        folder = local_source(source, base_dir)
        return self.register_saved_model(folder, name, details)

    def create_registered_model(
        self, name: str, description: str | None, tags: list[str]
    ) -> RegisteredModelView:
        return self.store.create_registered_model(name, description, tags)

    def delete_registered_model(self, name: str) -> None:
        with self._model_locks.hold(name):
            for version in self.store.delete_registered_model(name):
                self._remove_artifact(version.source)

    def delete_model_version(self, name: str, version: int) -> None:
        with self._model_locks.hold(name):
            removed = self.store.delete_model_version(name, version)
            self._remove_artifact(removed.source)

    def _add_version(
        self, name: str, source_for: Callable[[int], str], details: VersionDetails
    ) -> ModelVersionView:
        return self.store.add_model_version(
            name,
            source_for=source_for,
            model_type="tensorflow",
            description=details.description,
            dataset=details.dataset,
            experiment_id=details.experiment_id,
            tags=list(details.tags),
        )

    @property
    def _staging_root(self) -> Path:
        return self.artifact_root / ".staging"

    def _adopt_staged(
        self,
        staging: Path,
        name: str,
        details: VersionDetails,
    ) -> ModelVersionView:
        """Add the version row, then move the staged copy to its folder; undo both on failure.

        The registered model is dropped again only if this registration created it implicitly
        (and no concurrent registration has added a version to it meanwhile).
        """
        with self._model_locks.hold(name):
            existed = self._model_exists(name)
            try:
                model_version = self._add_version(
                    name, lambda v: str(self.artifact_root / name / str(v)), details
                )
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                if not existed:
                    self._undo(self.store.delete_registered_model_if_empty, name)
                raise
            destination = Path(model_version.source)
            try:
                artifacts.place_version(staging, destination)
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                artifacts.remove_version(destination)
                self._undo(self.store.delete_model_version, name, model_version.version)
                if not existed:
                    self._undo(self.store.delete_registered_model_if_empty, name)
                if isinstance(exc, OSError):
                    raise self._artifact_root_fault(exc) from None
                raise
            if not self._version_exists(name, model_version.version):
                # Deleted by another process while its files were being placed: keep no orphan.
                artifacts.remove_version(destination)
                raise Conflict(
                    f"registered model {name!r} was deleted while version {model_version.version} "
                    "was being registered; register it again"
                )
            return model_version

    def _version_exists(self, name: str, version: int) -> bool:
        try:
            self.store.get_model_version(name, version)
        except NotFound:
            return False
        return True

    def _model_exists(self, name: str) -> bool:
        try:
            self.store.get_registered_model(name)
        except NotFound:
            return False
        return True

    @staticmethod
    def _undo(step: Callable[..., object], *args: Any) -> None:
        """Run one step of undoing a failed registration; its own failure must not hide the
        error the user needs to see, so it is logged instead."""
        try:
            step(*args)
        except Exception:
            log.warning(
                "undoing a failed registration: %s%r failed", step.__name__, args, exc_info=True
            )

    def _limits(self) -> safe_copy.CopyLimits:
        """One registration's bounds: its bytes, and a deadline for all its steps together."""
        return safe_copy.CopyLimits(
            max_bytes=self.max_artifact_bytes,
            deadline=time.monotonic() + self.artifact_copy_seconds,
        )

    def _new_staging(self) -> Path:
        try:
            return artifacts.new_staging_folder(self._staging_root)
        except OSError as exc:
            raise self._artifact_root_fault(exc) from None

    @contextmanager
    def _faults_of_ours(self, staging: Path) -> Iterator[None]:
        """Turn failures on our side of a copy into ServerFault; the staging folder is gone."""
        try:
            yield
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, safe_copy.DestinationError):
                raise self._artifact_root_fault(exc.error) from None
            if isinstance(exc, safe_copy.CopyTimeout):
                raise ServerFault(
                    f"source: copying the model took longer than {self.artifact_copy_seconds:g} "
                    "s; the folder is too large or its file system too slow"
                ) from None
            raise

    def _artifact_root_fault(self, error: OSError) -> ServerFault:
        reason = error.strerror or str(error)
        where = f" ({error.filename})" if error.filename else ""
        return ServerFault(
            f"cannot store the model artifact under {str(self.artifact_root)!r}: {reason}{where}; "
            f"{ARTIFACT_ROOT_SETTING} must name a folder this server can write"
        )

    def _check_name_fits(self, name: str) -> None:
        """A copied model lives in a folder named after it: refuse a name no folder can have,
        before anything is copied or created."""
        limit = name_max(self.artifact_root)
        size = len(os.fsencode(name))
        if size > limit:
            raise InvalidInput(
                f"name: {name[:24]!r}... is {size} bytes long; a registered model is stored in a "
                f"folder of that name, and a folder name under {str(self.artifact_root)!r} has at "
                f"most {limit} bytes"
            )

    def _remove_artifact(self, source: str) -> None:
        folder = Path(source)
        # Only what we copied is ours to delete; a source elsewhere belongs to the user.
        if folder.is_relative_to(self.artifact_root):
            artifacts.remove_version(folder)

    def ensure_demo_model(self) -> ModelVersionView | None:
        """Register half_plus_two as `simple` version 1 when missing (built once); None if there."""
        try:
            self.store.get_model_version(DEMO_MODEL, 1)
            return None
        except NotFound:
            pass
        folder = self.artifact_root.parent / "demo" / "half_plus_two" / "1"
        if not (folder / "saved_model.pb").is_file():
            # A child process, so the Jupyter server never imports TensorFlow itself.
            subprocess.run(
                [sys.executable, "-m", "jupyter_modelserve.demo", str(folder)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        return self.register_saved_model(
            folder, DEMO_MODEL, VersionDetails(description="half_plus_two: y = 0.5 * x + 2")
        )
