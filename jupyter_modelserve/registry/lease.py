"""Leases in the registry database: a role (the reconciler) held by one process at a time.

A holder renews its lease while it lives; another process takes the role over once the lease
has lapsed; a process that is not the holder can ask it to act now (`request`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import orm


class Leases:
    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew lease `name` for `holder`; True while `holder` holds it.

        One conditional UPDATE (or the first INSERT): two processes can never both win.
        """
        now = orm.utcnow()
        expires = now + timedelta(seconds=ttl)
        try:
            with self._session() as session:
                renewed = session.execute(
                    update(orm.Lease)
                    .where(
                        orm.Lease.name == name,
                        or_(orm.Lease.holder == holder, orm.Lease.expires_at < now),
                    )
                    .values(holder=holder, expires_at=expires)
                )
                if renewed.rowcount:  # type: ignore[attr-defined]
                    return True
                if session.get(orm.Lease, name) is not None:
                    return False  # somebody else holds it and it has not lapsed
                session.add(orm.Lease(name=name, holder=holder, expires_at=expires))
            return True
        except IntegrityError:  # another process inserted the first row at the same moment
            return False

    def release(self, name: str, holder: str) -> None:
        with self._session() as session:
            session.execute(
                update(orm.Lease)
                .where(orm.Lease.name == name, orm.Lease.holder == holder)
                .values(expires_at=orm.utcnow() - timedelta(seconds=1))
            )

    def request(self, name: str) -> None:
        """Ask whoever holds lease `name` to act now (its next renewal sees the request)."""
        with self._session() as session:
            session.execute(
                update(orm.Lease).where(orm.Lease.name == name).values(requested_at=orm.utcnow())
            )

    def requested_at(self, name: str) -> datetime | None:
        with self._session() as session:
            return session.scalar(select(orm.Lease.requested_at).where(orm.Lease.name == name))
