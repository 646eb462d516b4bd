"""Schemathesis over the shipped OpenAPI document, against a real `jupyter modelserve` process.

Every operation the document describes gets generated requests, valid ones (positive) and ones
that break the document (negative): no answer is a 5xx, every answer is what the document says
(status, content type, body schema), and a request the document forbids is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from jupyter_modelserve.handlers.openapi import OPENAPI_PATH

from ..servers import TOKEN
from . import tally
from .conftest import Jupyter, register, stop_everything

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_MODE = 25  # 26 operations, most in 2 modes: ~1,000 cases in about a minute
MINIMUM_CASES = 500
RUN = settings(
    max_examples=EXAMPLES_PER_MODE,
    derandomize=True,  # the same cases on every run, in CI too
    database=None,
    deadline=None,  # a shared 2-core machine: timing is the ping tests' business
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def server(tmp_path: Path, half_plus_two: Path) -> Iterator[Jupyter]:
    """A real `jupyter modelserve` with `simple` version 1 registered and served."""
    jupyter = Jupyter(tmp_path / "jupyter", {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    try:
        jupyter.start()
        register(jupyter, "simple", half_plus_two)
        code, envelope = jupyter.request("POST", "/api/v1/serve", SERVE, wait=120)
        assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
        yield jupyter
    finally:
        stop_everything(jupyter)


SERVE = {"modelName": "simple", "modelVersion": 1}


def fuzz(
    operation: Any, mode: GenerationMode, url: str, session: requests.Session
) -> tuple[int, str | None]:
    """Run one operation's generated cases; (cases sent, the failure schemathesis reports)."""
    sent = 0

    @RUN
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        nonlocal sent
        response = case.call(base_url=url, session=session, timeout=60)
        sent += 1
        tally.requests()
        tally.bad_input(1 if mode is GenerationMode.NEGATIVE else 0)
        if response.status_code >= 500:
            tally.server_error()
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    except (Exception, FailureGroup) as failure:  # a group of what the checks found
        return sent, str(failure)
    return sent, None


def test_generated_requests_get_documented_answers_and_never_a_5xx(server: Jupyter) -> None:
    # Given the OpenAPI document the package ships, and a server with a live serve behind it
    schema = schemathesis.openapi.from_path(OPENAPI_PATH)
    # The token is the session's: auth has tests of its own (test_auth_routes.py), and a
    # "missing Authorization" negative case would otherwise still carry it.
    schema.config.generation.update(with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # every route and method of the document
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    cases = 0
    failures: list[str] = []

    # When schemathesis generates requests for every operation, valid and invalid ones
    for operation in operations:
        # (the ping and the document take no input: nothing of theirs can be made invalid)
        inputs = (operation.path_parameters, operation.query, operation.body)
        modes = [GenerationMode.POSITIVE]
        if any(len(container) for container in inputs):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            sent, failure = fuzz(operation, mode, server.url, session)
            cases += sent
            if failure is not None:
                failures.append(f"{operation.label} ({mode.value}):\n{failure}"[:3000])

    # Then every answer matched the document, none was a 5xx, and the run was not trivial
    assert not failures, "\n\n".join(failures)
    assert cases >= MINIMUM_CASES, f"only {cases} generated cases ran"
    # And the serve it started with is still there: generated deletes hit only what they named
    code, envelope = server.request("GET", "/api/v1/serve/simple/1")
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
