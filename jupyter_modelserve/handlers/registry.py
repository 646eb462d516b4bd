"""Submarine's registry routes: /api/v1/registered-model and /api/v1/model-version."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidInput, ModelServeError
from ..registry.model_registry import VersionDetails
from ..schemas import (
    ModelVersionCreate,
    ModelVersionCreateFromBaseDir,
    ModelVersionUpdate,
    ModelVersionUpdateInBody,
    ModelVersionView,
    RegisteredModelCreate,
    RegisteredModelUpdate,
    parse_request,
    validate_source,
)
from .base import ModelServeHandler
from .serve import _name, _version

CREATE_BODY = "name, source and modelType"
UPDATE_BODY = "description or currentStage"


class RegisteredModelsHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = parse_request(RegisteredModelCreate, await self.json_body("name"))
        model = await self.run(
            self.registry.create_registered_model, body.name, body.description, body.tags
        )
        self.answer("Create a registered model", model.to_json())

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit, offset = self.page()
        await self.answer_page(
            "List registered models",
            lambda: [
                m.to_json()
                for m in self.registry.list_registered_models(limit=limit, offset=offset)
            ],
            limit,
            offset,
        )


class RegisteredModelHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        model = await self.run(self.registry.get_registered_model, _name(name, "name"))
        self.answer("Get the registered model", model.to_json())

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        name = _name(name, "name")
        body = parse_request(RegisteredModelUpdate, await self.json_body("description"))
        model = await self.run(
            lambda: self.registry.update_registered_model(
                name,
                body.name,
                body.description,
                description_given="description" in body.model_fields_set,
            )
        )
        self.answer("Update the registered model", model.to_json())

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.run(self.registry.delete_registered_model, _name(name, "name"))
        self.answer("Delete the registered model")


class RegisteredModelTagHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        name, tag = self.name_argument(), self.tag_argument()
        await self.run(self.registry.add_registered_model_tag, name, tag)
        self.answer("Create a registered model tag")

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        name, tag = self.name_argument(), self.tag_argument()
        await self.run(self.registry.delete_registered_model_tag, name, tag)
        self.answer("Delete a registered model tag")


class RegistryPingHandler(ModelServeHandler):
    """GET /api/v1/registered-model/ping and /api/v1/model-version/ping, as Submarine has them.

    Routed before the name patterns, so a registered model called "ping" is not readable by
    GET through these paths (Submarine's own server reads them the same way).
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        api = "registered model" if "/registered-model/" in self.request.path else "model version"
        self.answer(f"Ping the {api} API", "Pong")


class ModelVersionsHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Register a version: the folder is `source` in the body, or Submarine's SDK way, the
        `baseDir` query parameter beside a body without one."""
        data = await self.json_body(CREATE_BODY)
        base_dir = self.query("baseDir")
        if base_dir is None:
            body = _parse_create(data)
            version = await self._register(body.source, body, "source")
        else:
            if isinstance(data, dict) and "source" in data:
                raise InvalidInput(
                    "source: the folder is already the baseDir query parameter; send only one"
                )
            sdk_body = parse_request(ModelVersionCreateFromBaseDir, data)
            version = await self._register(
                validate_source(base_dir, "baseDir"), sdk_body, "baseDir"
            )
        self.answer("Create a model version", version.to_json())

    @web.authenticated
    @authorized
    async def patch(self) -> None:
        """Update a version named in the body, as Submarine's SDK sends it."""
        body = parse_request(
            ModelVersionUpdateInBody, await self.json_body(f"name, version, {UPDATE_BODY}")
        )
        changes = body.model_dump(exclude_unset=True, exclude={"name", "version"}, mode="json")
        updated = await self.run(
            self.registry.update_model_version, body.name, body.version, changes
        )
        self.answer("Update the model version", updated.to_json())

    async def _register(
        self,
        source: str,
        body: ModelVersionCreate | ModelVersionCreateFromBaseDir,
        field: str,
    ) -> ModelVersionView:
        # Relative folders are read from the Jupyter server's root_dir, where the file
        # browser's paths live, never from the folder the server happened to start in.
        root_dir = Path(self.settings["server_root_dir"])
        try:
            return await self.run_copy(
                lambda: self.registry.register(
                    source,
                    body.name,
                    VersionDetails(
                        description=body.description,
                        tags=tuple(body.tags or ()),
                        dataset=body.dataset,
                        experiment_id=getattr(body, "experiment_id", None) or "",
                    ),
                    base_dir=root_dir,
                )
            )
        except ModelServeError as error:
            raise _renamed(error, "source", field) from None


class ModelVersionListHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        name = _name(name, "name")
        limit, offset = self.page()
        await self.answer_page(
            "List model versions",
            lambda: [
                v.to_json()
                for v in self.registry.list_model_versions(name, limit=limit, offset=offset)
            ],
            limit,
            offset,
        )


class ModelVersionHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        found = await self.run(
            self.registry.get_model_version, _name(name, "name"), _version(version)
        )
        self.answer("Get the model version", found.to_json())

    @web.authenticated
    @authorized
    async def patch(self, name: str, version: str) -> None:
        name, number = _name(name, "name"), _version(version)
        body = parse_request(ModelVersionUpdate, await self.json_body(UPDATE_BODY))
        changes = body.model_dump(exclude_unset=True, mode="json")
        updated = await self.run(self.registry.update_model_version, name, number, changes)
        self.answer("Update the model version", updated.to_json())

    @web.authenticated
    @authorized
    async def delete(self, name: str, version: str) -> None:
        await self.run(self.registry.delete_model_version, _name(name, "name"), _version(version))
        self.answer("Delete the model version")


class ModelVersionTagHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        name, version, tag = self._tag_arguments()
        await self.run(self.registry.add_model_version_tag, name, version, tag)
        self.answer("Create a model version tag")

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        name, version, tag = self._tag_arguments()
        await self.run(self.registry.delete_model_version_tag, name, version, tag)
        self.answer("Delete a model version tag")

    def _tag_arguments(self) -> tuple[str, int, str]:
        return self.name_argument(), self.version_argument(), self.tag_argument()


def _renamed(error: ModelServeError, field: str, sent_as: str) -> ModelServeError:
    """`error` naming the field the client sent: the registry says "source" for the folder,
    which Submarine's SDK sends as `baseDir`."""
    prefix = f"{field}: "
    if sent_as == field or not error.message.startswith(prefix):
        return error
    return type(error)(f"{sent_as}: " + error.message.removeprefix(prefix))


def _parse_create(data: object) -> ModelVersionCreate:
    """Today's form, `source` in the body; a body without one is told of the other way."""
    try:
        return parse_request(ModelVersionCreate, data)
    except InvalidInput as error:
        if isinstance(data, dict) and "source" not in data:
            raise InvalidInput(
                f"{error.message} (or send the SavedModel folder as the baseDir query parameter, "
                "as Submarine's SDK does)"
            ) from None
        raise
