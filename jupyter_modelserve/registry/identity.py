"""Who this registry is: its stored id, and whether this very store just created the database.

The id defaults the Kubernetes backend's `instance` (object names and the ownership label), so
two Jupyter servers with their own registries never take each other's objects for orphans. The
"just created" fact keeps the reconciler from sweeping anything from a registry that was born in
this process's life: an empty registry next to labelled objects is a lost database far more
often than a set of real orphans.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ServerFault
from . import orm

# How much of the id the default instance uses: 32 bits keep registries apart in one namespace
# and leave most of a 63-character object name to the model's name.
SHORT_ID_LENGTH = 8


@dataclass(frozen=True)
class RegistryIdentity:
    id: str
    created_at: datetime
    created_here: bool  # this store created the database (its schema did not exist before)

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID_LENGTH]


def load_identity(
    session: Callable[[], AbstractContextManager[Session]], created_here: bool
) -> RegistryIdentity:
    with session() as open_session:
        rows = list(
            open_session.scalars(select(orm.RegistryIdentity).order_by(orm.RegistryIdentity.id))
        )
    if len(rows) != 1:  # edited by hand: guessing would risk taking others' objects for ours
        raise ServerFault(
            f"the registry's registry_identity table holds {len(rows)} rows instead of exactly 1; "
            "restore it, or set c.KubernetesBackend.instance explicitly"
        )
    return RegistryIdentity(rows[0].id, rows[0].created_at, created_here)
