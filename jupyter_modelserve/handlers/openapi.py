"""Serves the packaged OpenAPI document, so clients can discover every route."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import ModelServeHandler

OPENAPI_PATH = Path(__file__).parent.parent / "openapi.yaml"


@cache
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text())
    return document


class OpenAPIHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(openapi_document())
