"""Request and response models: one pydantic model per operation.

Requests are validated here so that every bad field becomes an `InvalidInput` whose message names
the field; responses use Submarine's camelCase field names.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import InvalidInput

# Submarine's model name rule, relaxed to also accept one-character names.
MODEL_NAME_PATTERN = r"^[0-9A-Za-z]([0-9A-Za-z_-]*[0-9A-Za-z])?$"
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
SUPPORTED_MODEL_TYPES = ("tensorflow",)
# Model sources TF Serving reads by itself: registered as they are, never copied.
REMOTE_SCHEMES = ("s3://", "gs://")


class ServeState(str, enum.Enum):
    """Life cycle of a serve (design §4)."""

    PENDING = "PENDING"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    DELETING = "DELETING"


class ModelStage(str, enum.Enum):
    NONE = "None"
    DEVELOPING = "Developing"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


def _model_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if not _MODEL_NAME_RE.match(value) or len(value) > 256:
        raise ValueError(
            f"{value!r} is not a valid model name: use letters, digits, '-' and '_', "
            "starting and ending with a letter or digit (at most 256 characters)"
        )
    return value


MAX_VERSION = 2**31 - 1  # the registry's INTEGER column


def _positive_int(value: Any) -> int:
    # bool is an int subclass; `true` is not a version number. isascii: '²'.isdigit() is True.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_VERSION:
        raise ValueError(f"must be a positive integer up to {MAX_VERSION}, got {value!r}")
    return value


def parse_positive_int(raw: str | None, field: str) -> int:
    """A positive integer from a path segment or query parameter; InvalidInput names `field`."""
    try:
        return _positive_int(raw)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None


def _model_type(value: Any) -> str:
    if value not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise ValueError(f"{value!r} is not a supported model type; supported: {supported}")
    return str(value)


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise ValueError("must be a list of non-empty strings")
    return list(dict.fromkeys(value))  # de-duplicate, keep order


ModelName = Annotated[str, BeforeValidator(_model_name)]
ModelVersionNumber = Annotated[int, BeforeValidator(_positive_int)]
ModelType = Annotated[str, BeforeValidator(_model_type)]
Tags = Annotated[list[str], BeforeValidator(_tags)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServeRequest(_Request):
    """Body of POST and DELETE /api/v1/serve (Submarine's `{modelName, modelVersion}`)."""

    model_name: ModelName = Field(alias="modelName")
    model_version: ModelVersionNumber = Field(alias="modelVersion")
    # Older Submarine docs send it; only TensorFlow is served.
    model_type: ModelType | None = Field(default=None, alias="modelType")


class RegisteredModelCreate(_Request):
    name: ModelName
    description: str | None = None
    tags: Tags = Field(default_factory=list)


class RegisteredModelUpdate(_Request):
    name: ModelName | None = None
    description: str | None = None


class ModelVersionCreate(_Request):
    name: ModelName
    source: str = Field(min_length=1)
    model_type: ModelType = Field(default="tensorflow", alias="modelType")
    description: str | None = None
    dataset: str | None = None
    tags: Tags = Field(default_factory=list)


class ModelVersionUpdate(_Request):
    """Only the fields sent change; a stage cannot be null (Submarine's stage "None" is a name)."""

    description: str | None = None
    dataset: str | None = None
    current_stage: ModelStage = Field(default=ModelStage.NONE, alias="currentStage")


class _View(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ServeView(_View):
    """How a serve reads everywhere: POST's result, GET one, each item of GET's list."""

    model_name: str = Field(alias="modelName")
    model_version: int = Field(alias="modelVersion")
    state: ServeState
    reason: str | None
    url: str | None
    backend: str
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    # The same TF Serving API through the Jupyter server, under Jupyter auth. Set by the REST
    # layer, which knows the server's address.
    proxy_url: str | None = Field(default=None, alias="proxyUrl")


class RegisteredModelView(_View):
    name: str
    description: str | None
    tags: list[str]
    creation_time: datetime = Field(alias="creationTime")
    last_updated_time: datetime = Field(alias="lastUpdatedTime")


class ModelVersionView(_View):
    name: str
    version: int
    id: str
    user_id: str = Field(alias="userId")
    experiment_id: str = Field(alias="experimentId")
    model_type: str = Field(alias="modelType")
    current_stage: str = Field(alias="currentStage")
    source: str
    dataset: str | None
    description: str | None
    tags: list[str]
    creation_time: datetime = Field(alias="creationTime")
    last_updated_time: datetime = Field(alias="lastUpdatedTime")


RequestT = TypeVar("RequestT", bound=_Request)


def parse_request(model: type[RequestT], data: Any) -> RequestT:
    """Validate `data` into `model`, turning the first problem into an `InvalidInput`."""
    if not isinstance(data, dict):
        raise InvalidInput(
            f"request body must be a JSON object with {_field_list(model)}, "
            f"got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_describe(model, exc)) from None


def _field_list(model: type[BaseModel]) -> str:
    names = [f.alias or name for name, f in model.model_fields.items() if f.is_required()]
    return ", ".join(names) or "its fields"


def _describe(model: type[BaseModel], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind == "missing":
            problems.append(f"{field}: is required")
        elif kind == "extra_forbidden":
            allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
            problems.append(f"{field}: is not a known field (expected {allowed})")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}: {message}")
    return "; ".join(problems)
