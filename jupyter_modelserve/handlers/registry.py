"""Submarine's registry routes: /api/v1/registered-model and /api/v1/model-version."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas import (
    ModelVersionCreate,
    ModelVersionUpdate,
    RegisteredModelCreate,
    RegisteredModelUpdate,
    parse_request,
)
from .base import ModelServeHandler
from .serve import _name, _version


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
        models = await self.run(
            lambda: self.registry.list_registered_models(limit=limit, offset=offset)
        )
        self.answer(
            "List registered models",
            [m.to_json() for m in models],
            attributes={"limit": limit, "offset": offset},
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


class ModelVersionsHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = parse_request(ModelVersionCreate, await self.json_body("name, source and modelType"))
        version = await self.run_copy(
            lambda: self.registry.register(
                body.source, body.name, body.description, body.tags, body.dataset
            )
        )
        self.answer("Create a model version", version.to_json())


class ModelVersionListHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        name = _name(name, "name")
        limit, offset = self.page()
        versions = await self.run(
            lambda: self.registry.list_model_versions(name, limit=limit, offset=offset)
        )
        self.answer(
            "List model versions",
            [v.to_json() for v in versions],
            attributes={"limit": limit, "offset": offset},
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
        body = parse_request(
            ModelVersionUpdate, await self.json_body("description or currentStage")
        )
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
