"""Checks real responses against the OpenAPI document shipped in the package."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jupyter_modelserve.handlers.openapi import openapi_document

_BASE = "urn:modelserve-openapi"


class Contract:
    def __init__(self) -> None:
        self.document = openapi_document()
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(_BASE, resource)
        self._paths = [
            (template, re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"))
            for template in self.document["paths"]
        ]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Fail unless `body` is what the document promises for this route and status."""
        template = next((t for t, pattern in self._paths if pattern.match(path)), None)
        assert template is not None, f"{path} is not in the OpenAPI document"
        operation = self.document["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not in the OpenAPI document"
        responses = operation["responses"]
        # Errors any route may answer (403 from Jupyter's auth, ...) fall under `default`.
        key = str(status) if str(status) in responses or status < 400 else "default"
        response = responses.get(key)
        assert response is not None, f"{method} {template} does not document status {status}"
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{key}"
        if "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
        schema = {"$ref": f"{_BASE}#{pointer}/content/application~1json/schema"}
        Draft202012Validator(schema, registry=self.registry).validate(body)


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")
