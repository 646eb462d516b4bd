"""Checks real responses against the OpenAPI document shipped in the package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tornado import web

from jupyter_modelserve.handlers import ROUTES
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
        # The most specific template: ".../versions/{version}:predict" over ".../{version}".
        matches = [t for t, pattern in self._paths if pattern.match(path)]
        assert matches, f"{path} is not in the OpenAPI document"
        template = max(matches, key=lambda t: len(re.sub(r"\{[^/]+\}", "", t)))
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


# -- the route table, as calls ---------------------------------------------------------------------

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class RouteCall:
    """One method of one route of `handlers.ROUTES`, with its path groups filled in."""

    handler: type[Any]
    method: str
    path: str  # URL-escaped, without the server's base URL
    pattern: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def route_calls(**values: str) -> list[RouteCall]:
    """Every method of every route the extension registers, its groups filled from `values`.

    Derived from the route table itself, not a hand-written list, so a new route or method is
    covered (or makes a test that checks coverage fail) without anyone remembering it. The
    proxy's optional `suffix` is ":predict" for POST and none for GET.
    """
    calls = []
    for pattern, handler in ROUTES:
        for method in _METHODS:
            if getattr(handler, method) is getattr(web.RequestHandler, method):
                continue  # tornado's 405 stub: the route does not serve this method
            fills = {**values, "suffix": ":predict" if method == "post" else ""}
            path = _fill(pattern, fills)
            assert re.fullmatch(pattern, path), (pattern, path)
            calls.append(RouteCall(handler, method.upper(), path, pattern))
    return calls


def _fill(pattern: str, values: dict[str, str]) -> str:
    """`pattern` with each named group `(?P<x>...)` (and its optional `?`) replaced by
    `values[x]`, URL-escaped."""
    out, index = [], 0
    while (start := pattern.find("(?P<", index)) != -1:
        name = pattern[start + 4 : pattern.index(">", start)]
        depth, end = 0, start
        while True:  # the group's closing parenthesis (groups here hold no escaped parens)
            depth += {"(": 1, ")": -1}.get(pattern[end], 0)
            end += 1
            if depth == 0:
                break
        if pattern[end : end + 1] == "?":
            end += 1
        out.append(pattern[index:start])
        out.append(quote(values[name], safe=":"))
        index = end
    out.append(pattern[index:])
    return "".join(out)
