"""Registry rows as the rest of the package sees them: detached values, never ORM objects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..schemas import ModelVersionView, RegisteredModelView, ServeState
from . import orm


@dataclass(frozen=True)
class ServeRecord:
    model_name: str
    model_version: int
    backend: str
    state: ServeState
    reason: str | None
    url: str | None
    created_at: datetime
    updated_at: datetime
    state_since: datetime
    source: str


def tags_by_key(rows: Iterable[Sequence[Any]]) -> dict[tuple[Any, ...], list[str]]:
    """{key columns: [tags]} from rows of (key columns..., tag)."""
    tags: dict[tuple[Any, ...], list[str]] = {}
    for *key, tag in rows:
        tags.setdefault(tuple(key), []).append(tag)
    return tags


def model_view(model: orm.RegisteredModel, tags: list[str]) -> RegisteredModelView:
    return RegisteredModelView(
        name=model.name,
        description=model.description,
        tags=tags,
        creation_time=model.creation_time,
        last_updated_time=model.last_updated_time,
    )


def version_view(row: orm.ModelVersion, tags: list[str]) -> ModelVersionView:
    return ModelVersionView(
        name=row.name,
        version=row.version,
        id=row.id,
        user_id=row.user_id,
        experiment_id=row.experiment_id,
        model_type=row.model_type,
        current_stage=row.current_stage,
        source=row.source,
        dataset=row.dataset,
        description=row.description,
        tags=tags,
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
    )


def phase(state: str) -> str:
    # PENDING and LOADING are one phase, so a load deadline counts from the request, not from
    # the moment the model server started loading.
    return "starting" if state in (ServeState.PENDING.value, ServeState.LOADING.value) else state


def serve_record(row: orm.Serve, source: str | None) -> ServeRecord:
    return ServeRecord(
        model_name=row.model_name,
        model_version=row.model_version,
        backend=row.backend,
        state=ServeState(row.state),
        reason=row.reason,
        url=row.url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_since=row.state_since,
        source=source or "",
    )
