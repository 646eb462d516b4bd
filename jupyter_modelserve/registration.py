"""Registry rules: what may be registered, where artifacts go, and when they may be deleted.

`ServeService` inherits these, so front doors keep calling one service; they live apart from
the serve rules to keep each module readable in one sitting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .errors import InvalidInput, NotFound
from .registry import artifacts
from .registry.store import RegistryStore
from .schemas import REMOTE_SCHEMES, ModelVersionView, RegisteredModelView

DEMO_MODEL = "simple"


class RegistryRules:
    store: RegistryStore
    artifact_root: Path

    def _serialized(self, name: str, version: int) -> AbstractContextManager[None]:
        raise NotImplementedError  # ServeService's per-(name, version) lock

    def register_saved_model(
        self,
        source: str | Path,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        dataset: str | None = None,
    ) -> ModelVersionView:
        """Copy a SavedModel folder into the registry as the next version of `name`."""
        info = artifacts.inspect_saved_model(source)
        staging = artifacts.stage_saved_model(info.path, self._staging_root)
        return self._adopt_staged(staging, name, description, tags, dataset)

    def register_keras_model(
        self,
        model: Any,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        dataset: str | None = None,
    ) -> ModelVersionView:
        """Export an in-memory Keras model and register it as the next version of `name`."""
        staging = artifacts.export_keras_model(model, self._staging_root)
        try:
            artifacts.inspect_saved_model(staging)
        except InvalidInput:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self._adopt_staged(staging, name, description, tags, dataset)

    def register_remote_model(
        self,
        uri: str,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        dataset: str | None = None,
    ) -> ModelVersionView:
        """Record an s3:// or gs:// version folder as the next version of `name`, uncopied."""
        if not uri.startswith(REMOTE_SCHEMES):
            raise InvalidInput(f"source: {uri!r} is not an s3:// or gs:// URI")
        if not uri.rstrip("/").rsplit("/", 1)[-1].isdigit():
            raise InvalidInput(
                f"source: {uri!r} must name a numbered version folder (…/{name}/1), the layout "
                "TensorFlow Serving reads"
            )
        return self.store.add_model_version(
            name,
            source_for=lambda _version: uri.rstrip("/"),
            model_type="tensorflow",
            description=description,
            dataset=dataset,
            tags=tags,
        )

    def register(
        self,
        source: str,
        name: str,
        description: str | None = None,
        tags: list[str] | None = None,
        dataset: str | None = None,
    ) -> ModelVersionView:
        """Register a local SavedModel folder (copied) or a remote URI (recorded)."""
        if source.startswith(REMOTE_SCHEMES):
            return self.register_remote_model(source, name, description, tags, dataset)
        return self.register_saved_model(source, name, description, tags, dataset)

    def create_registered_model(
        self, name: str, description: str | None, tags: list[str]
    ) -> RegisteredModelView:
        return self.store.create_registered_model(name, description, tags)

    def delete_registered_model(self, name: str) -> None:
        for version in self.store.delete_registered_model(name):
            self._remove_artifact(version.source)

    def delete_model_version(self, name: str, version: int) -> None:
        with self._serialized(name, version):
            removed = self.store.delete_model_version(name, version)
        self._remove_artifact(removed.source)

    @property
    def _staging_root(self) -> Path:
        return self.artifact_root / ".staging"

    def _adopt_staged(
        self,
        staging: Path,
        name: str,
        description: str | None,
        tags: list[str] | None,
        dataset: str | None,
    ) -> ModelVersionView:
        try:
            model_version = self.store.add_model_version(
                name,
                source_for=lambda v: str(self.artifact_root / name / str(v)),
                model_type="tensorflow",
                description=description,
                dataset=dataset,
                tags=tags,
            )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            artifacts.place_version(staging, Path(model_version.source))
        except OSError as exc:
            self.store.delete_model_version(name, model_version.version)
            shutil.rmtree(staging, ignore_errors=True)
            raise InvalidInput(f"source: could not store the model artifact: {exc}") from None
        return model_version

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
        return self.register_saved_model(folder, DEMO_MODEL, "half_plus_two: y = 0.5 * x + 2")
