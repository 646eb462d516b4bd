"""Which orphans are older than the registry: never swept, whoever this process is.

A registry database lost and created anew gets a new identity with a new `created_at`. Every
object deployed before that moment was deployed by another registry (the lost one), so even a
process that did not create the new database (a restart, a second server) must not sweep it.
Only backends whose objects carry a creation time (`deployed_since`, filled by `deployed()`)
are braked this way; the others keep the `created_here` and `max_orphan_sweep` brakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from .errors import ModelServeError
from .registry.store import RegistryStore

Key = tuple[str, int]


def older_than_registry(
    orphans: list[Key], since: Mapping[Key, datetime], store: RegistryStore
) -> list[Key]:
    """The orphans created before this registry was (all of them if that cannot be known)."""
    if not orphans or not since:
        return []
    try:
        born = store.identity().created_at
    except ModelServeError:  # no identity to compare with: keep everything, sweep nothing
        return list(orphans)
    # creationTimestamp has whole seconds: an object of the registry's own second is not older.
    born_second = _utc(born).replace(microsecond=0)
    return [key for key in orphans if key in since and _utc(since[key]) < born_second]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
