"""Tornado routes of the extension; each handler is a thin door onto `ServeService`."""

from __future__ import annotations

from typing import Any

from .base import PROXY_PREFIX
from .openapi import OpenAPIHandler
from .proxy import ModelProxyHandler
from .registry import (
    ModelVersionHandler,
    ModelVersionListHandler,
    ModelVersionsHandler,
    ModelVersionTagHandler,
    RegisteredModelHandler,
    RegisteredModelsHandler,
    RegisteredModelTagHandler,
    RegistryPingHandler,
)
from .serve import PingHandler, ServeHandler, ServeItemHandler, ServeLogsHandler

_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?P<version>[^/]+)"

# Fixed paths come before patterns that would swallow them ("tag", "ping").
ROUTES: list[tuple[str, Any]] = [
    ("/api/v1/serve", ServeHandler),
    ("/api/v1/serve/ping", PingHandler),
    (f"/api/v1/serve/{_NAME}/{_VERSION}", ServeItemHandler),
    (f"/api/v1/serve/{_NAME}/{_VERSION}/logs", ServeLogsHandler),
    ("/api/v1/registered-model", RegisteredModelsHandler),
    ("/api/v1/registered-model/tag", RegisteredModelTagHandler),
    ("/api/v1/registered-model/ping", RegistryPingHandler),
    (f"/api/v1/registered-model/{_NAME}", RegisteredModelHandler),
    ("/api/v1/model-version", ModelVersionsHandler),
    ("/api/v1/model-version/tag", ModelVersionTagHandler),
    ("/api/v1/model-version/ping", RegistryPingHandler),
    (f"/api/v1/model-version/{_NAME}", ModelVersionListHandler),
    (f"/api/v1/model-version/{_NAME}/{_VERSION}", ModelVersionHandler),
    ("/api/v1/modelserve/openapi.json", OpenAPIHandler),
    (
        # Any version segment (up to a ':' suffix) reaches the handler, so a bad one gets a 400
        # in TF Serving's error form rather than Jupyter's HTML 404 page.
        rf"/{PROXY_PREFIX}/{_NAME}/versions/(?P<version>[^/:]+)(?P<suffix>:predict|:classify|:regress|/metadata)?",
        ModelProxyHandler,
    ),
]
