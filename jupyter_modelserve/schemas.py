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

# Submarine's model name rule, relaxed to also accept one-character names. Checked with
# `re.fullmatch`, never `$` alone, which also matches before a final "\n".
MODEL_NAME_PATTERN = r"[0-9A-Za-z](?:[0-9A-Za-z_-]*[0-9A-Za-z])?"
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
# ASCII only, so characters are bytes: a name is always a valid file name (artifact folders).
MAX_NAME_LENGTH = 255
MAX_TAG_LENGTH = 256  # the registry's tag and dataset columns are VARCHAR(256)
MAX_DESCRIPTION_LENGTH = 64 * 1024
MAX_SOURCE_LENGTH = 4096  # PATH_MAX on Linux; URIs are no longer in practice
MAX_EXPERIMENT_ID_LENGTH = 64  # the registry's experiment_id column is VARCHAR(64)
# Every control character (C0, DEL, C1 with NEL \x85), the Unicode line and paragraph
# separators, and lone surrogates (UTF-8 cannot store them: a database would fail on write).
# str.splitlines() breaks on each of \n \r \x0b \x0c \x1c-\x1e \x85 \u2028 \u2029.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Free text (a description) may span lines; it may still not carry other control characters.
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SHOWN = 64  # characters of a bad value that an error message repeats
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


def shown(value: Any) -> str:
    """A bad value as an error message repeats it: repr (control characters escaped), short."""
    text = repr(value[: _SHOWN + 1] if isinstance(value, str) else value)
    if len(text) > _SHOWN + 2:
        return text[:_SHOWN] + "…"
    return text


def _control_character(value: str, pattern: re.Pattern[str] = _CONTROL_RE) -> str | None:
    """'U+000A' for the first control character or line separator of `value`, else None."""
    found = pattern.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def _model_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    rule = (
        "use letters, digits, '-' and '_', starting and ending with a letter or digit "
        f"(at most {MAX_NAME_LENGTH} characters)"
    )
    bad = _control_character(value)
    if bad is not None:
        raise ValueError(
            f"{shown(value)} is not a valid model name: it contains a control character or "
            f"line break ({bad}); {rule}"
        )
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{shown(value)} is not a valid model name: it has {len(value)} characters; {rule}"
        )
    if _MODEL_NAME_RE.fullmatch(value) is None:
        raise ValueError(f"{shown(value)} is not a valid model name: {rule}")
    return value


MAX_VERSION = 2**31 - 1  # the registry's INTEGER column
_DIGITS_RE = re.compile(r"[0-9]{1,10}")  # ASCII digits only: '²'.isdigit() is True


def _positive_int(value: Any) -> int:
    # Strings are full-matched: no sign, no blanks, no trailing "\n", and never more digits
    # than a version can have (int() of 5,000 digits raises, and costs time).
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        value = int(value)
    # bool is an int subclass; `true` is not a version number.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_VERSION:
        raise ValueError(f"must be a positive integer up to {MAX_VERSION}, got {shown(value)}")
    return value


def _single_line(limit: int) -> Any:
    """A validator of one-line strings (tags, a dataset): bounded, no control characters."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {type(value).__name__}")
        if not value:
            raise ValueError("must not be empty")
        bad = _control_character(value)
        if bad is not None:
            raise ValueError(f"{shown(value)} contains a control character or line break ({bad})")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters, got {len(value)}")
        return value

    return check


_tag = _single_line(MAX_TAG_LENGTH)
_dataset = _single_line(MAX_TAG_LENGTH)
_source_text = _single_line(MAX_SOURCE_LENGTH)
_experiment_id = _single_line(MAX_EXPERIMENT_ID_LENGTH)


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a string or null, got {type(value).__name__}")
    bad = _control_character(value, _TEXT_CONTROL_RE)
    if bad is not None:
        raise ValueError(f"contains a control character ({bad}); tabs and line breaks are fine")
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"must be at most {MAX_DESCRIPTION_LENGTH} characters, got {len(value)}")
    return value


def _optional_dataset(value: Any) -> str | None:
    return None if value is None else _dataset(value)


def _optional_experiment_id(value: Any) -> str | None:
    # Submarine sends "" (or nothing) for a version no experiment produced.
    if value is None or value == "":
        return None
    result: str = _experiment_id(value)
    return result


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"must be a list of non-empty strings, got {type(value).__name__}")
    for index, tag in enumerate(value):
        try:
            _tag(tag)
        except ValueError as exc:
            raise ValueError(f"tag {index}: {exc}") from None
    return list(dict.fromkeys(value))  # de-duplicate, keep order


def _invalid(field: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None


# The one set of checks every front door (REST bodies, paths and queries, the Python API, the
# CLI, the magic) calls: each raises InvalidInput naming `field`.


def validate_model_name(value: Any, field: str = "name") -> str:
    """A registered model name, full-matched; InvalidInput names `field` and the problem."""
    result: str = _invalid(field, _model_name, value)
    return result


def validate_version(value: Any, field: str = "version") -> int:
    """A model version (an int, or a string of ASCII digits); InvalidInput names `field`."""
    result: int = _invalid(field, _positive_int, value)
    return result


MAX_WAIT_SECONDS = 3600.0  # the longest a front door waits for a serve: an hour
MAX_LOG_TAIL = 10_000  # log lines one logs read may ask for (a larger ask is a 400 naming it)


def _wait_seconds(value: Any) -> float:
    # bool is an int subclass; NaN fails every comparison, so it fails this one too.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, got {shown(value)}")
    if not 0 <= value <= MAX_WAIT_SECONDS:
        raise ValueError(f"must be from 0 to {MAX_WAIT_SECONDS:.0f} seconds, got {value}")
    return float(value)


def validate_wait_seconds(value: Any, field: str = "timeout") -> float:
    """How long to wait for a serve: finite, from 0 to an hour; InvalidInput names `field`."""
    result: float = _invalid(field, _wait_seconds, value)
    return result


def validate_tag(value: Any, field: str = "tag") -> str:
    result: str = _invalid(field, _tag, value)
    return result


def validate_tags(value: Any, field: str = "tags") -> list[str]:
    result: list[str] = _invalid(field, _tags, value)
    return result


def validate_description(value: Any, field: str = "description") -> str | None:
    result: str | None = _invalid(field, _description, value)
    return result


def validate_dataset(value: Any, field: str = "dataset") -> str | None:
    result: str | None = _invalid(field, _optional_dataset, value)
    return result


def validate_source(value: Any, field: str = "source") -> str:
    """A SavedModel folder or an s3:// / gs:// URI: one line, bounded."""
    result: str = _invalid(field, _source_text, value)
    return result


def check_remote_uri(uri: str) -> None:
    """InvalidInput unless `uri` is a bucket URI without userinfo (`s3://KEY:SECRET@bucket`), a
    query or a fragment: a secret in a source would be stored in the registry and shown to
    every reader of the model. The message never repeats the URI, which may hold the secret."""
    scheme, _, rest = uri.partition("://")
    authority = rest.split("/", 1)[0]
    if "@" in authority or "?" in uri or "#" in uri:
        raise InvalidInput(
            f"source: a {scheme}:// URI must be scheme://bucket/path only, without credentials "
            "(user:secret@), a query (?) or a fragment (#); give credentials to the cluster "
            "through c.KubernetesBackend.storage_secret or service_account instead"
        )


def parse_positive_int(raw: str | None, field: str) -> int:
    """A positive integer from a path segment or query parameter; InvalidInput names `field`."""
    return validate_version(raw, field)


def _model_type(value: Any) -> str:
    if value not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise ValueError(f"{shown(value)} is not a supported model type; supported: {supported}")
    return str(value)


ModelName = Annotated[str, BeforeValidator(_model_name)]
ModelVersionNumber = Annotated[int, BeforeValidator(_positive_int)]
ModelType = Annotated[str, BeforeValidator(_model_type)]
Tags = Annotated[list[str], BeforeValidator(_tags)]
Description = Annotated[str | None, BeforeValidator(_description)]
Dataset = Annotated[str | None, BeforeValidator(_optional_dataset)]
Source = Annotated[str, BeforeValidator(_source_text)]
ExperimentId = Annotated[str | None, BeforeValidator(_optional_experiment_id)]


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
    description: Description = None
    tags: Tags = Field(default_factory=list)


class RegisteredModelUpdate(_Request):
    name: ModelName | None = None
    description: Description = None


class ModelVersionCreate(_Request):
    name: ModelName
    source: Source
    model_type: ModelType = Field(default="tensorflow", alias="modelType")
    description: Description = None
    dataset: Dataset = None
    tags: Tags = Field(default_factory=list)


class ModelVersionCreateFromBaseDir(_Request):
    """Body of POST /api/v1/model-version?baseDir=<folder>, the form Submarine's SDK sends.

    Submarine's `ModelVersionEntity` has no `source`: the folder is the `baseDir` query
    parameter. `experimentId` is the Submarine experiment that produced the model, if any.
    """

    name: ModelName
    model_type: ModelType = Field(default="tensorflow", alias="modelType")
    description: Description = None
    dataset: Dataset = None
    tags: Tags = Field(default_factory=list)
    experiment_id: ExperimentId = Field(default=None, alias="experimentId")


class ModelVersionUpdate(_Request):
    """Only the fields sent change; a stage cannot be null (Submarine's stage "None" is a name)."""

    description: Description = None
    dataset: Dataset = None
    current_stage: ModelStage = Field(default=ModelStage.NONE, alias="currentStage")


class ModelVersionUpdateInBody(ModelVersionUpdate):
    """Body of PATCH /api/v1/model-version, the form Submarine's SDK sends: the version it
    changes is named in the body instead of the path."""

    name: ModelName
    version: ModelVersionNumber


class _View(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class TensorSpecView(_View):
    """One input or output of a signature, as TF Serving's `/metadata` describes it."""

    name: str
    # TF's DataType name without "DT_", lower case: "float", "int64", "string", "bool"...
    dtype: str
    # -1 is a dimension of any size; None is an unknown rank (any shape at all).
    shape: list[int] | None


class SignatureView(_View):
    """A serving signature: its key, its method and its tensors."""

    name: str  # the signature key, e.g. "serving_default"
    method: str  # e.g. "tensorflow/serving/predict"
    inputs: list[TensorSpecView]
    outputs: list[TensorSpecView]


class ServeMetrics(_View):
    """A serve's traffic as its model server counts it (TF Serving's Prometheus metrics)."""

    # Inference requests (predict, classify, regress), any status; with TF Serving's own
    # model server, which cannot tell them apart, its status and metadata reads too.
    request_count: int = Field(alias="requestCount")
    error_count: int = Field(alias="errorCount")  # status != OK
    latency_p50_ms: float | None = Field(alias="latencyP50Ms")  # None: no requests yet
    latency_p99_ms: float | None = Field(alias="latencyP99Ms")


class ServeView(_View):
    """How a serve reads everywhere: POST's result, GET one, each item of GET's list."""

    model_name: str = Field(alias="modelName")
    model_version: int = Field(alias="modelVersion")
    state: ServeState
    reason: str | None
    url: str | None
    # `host:port` of TF Serving's gRPC API serving it (local: the model server's --port on
    # 127.0.0.1; kubernetes: the Service's in-cluster address); None until it is applied.
    grpc_url: str | None = Field(default=None, alias="grpcUrl")
    backend: str
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    # The same TF Serving API through the Jupyter server, under Jupyter auth. Set by the REST
    # layer, which knows the server's address.
    proxy_url: str | None = Field(default=None, alias="proxyUrl")
    # Filled only by ServeService.describe (GET one), never by lists: each costs a read of the
    # artifact or of the model server.
    signature: SignatureView | None = None
    # A TF Serving predict body, {"instances": [...]}: one row of zeros of the right shape/dtype.
    example_request: dict[str, Any] | None = Field(default=None, alias="exampleRequest")
    metrics: ServeMetrics | None = None


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
    except RecursionError:  # a value nested deeper than any field could want
        raise InvalidInput("request body is nested too deeply") from None


def _field_list(model: type[BaseModel]) -> str:
    names = [f.alias or name for name, f in model.model_fields.items() if f.is_required()]
    return ", ".join(names) or "its fields"


def _describe(model: type[BaseModel], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(_field_label(part) for part in error["loc"]) or "body"
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


def _field_label(part: str | int) -> str:
    # An unknown key is the client's text: show it escaped and short, so a message (and the
    # log line that repeats it) never carries its line breaks or its bulk.
    text = str(part)
    if len(text) > _SHOWN or _CONTROL_RE.search(text) or not text.isprintable():
        return shown(text)
    return text
