"""The instance registry in the SQL store: the statements behind ``register_instance``,
``heartbeat``, ``unregister_instance`` and ``get_instances``.

Table ``<tablename>_instances``: ``identity`` (primary key), ``info`` (JSON text), ``heartbeat``
(integer microseconds by the store's clock: the database's on servers, this host's on SQLite).
Each function runs inside a transaction the store opened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["claim_dead", "list_instances", "upsert_instance"]


def upsert_instance(
    conn: Connection, table: sa.Table, identity: str, info: Mapping[str, Any], now: Any
) -> None:
    """Insert or refresh ``identity`` with a heartbeat of ``now`` (one statement)."""
    values = {
        "identity": identity,
        "info": json.dumps(dict(info), default=str, sort_keys=True),
        "heartbeat": now,
    }
    name = conn.dialect.name
    statement: Any
    if name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        statement = pg.on_conflict_do_update(
            index_elements=[table.c.identity],
            set_={"info": pg.excluded.info, "heartbeat": pg.excluded.heartbeat},
        )
    elif name == "sqlite":
        lite = sqlite.insert(table).values(**values)
        statement = lite.on_conflict_do_update(
            index_elements=[table.c.identity],
            set_={"info": lite.excluded.info, "heartbeat": lite.excluded.heartbeat},
        )
    else:
        my = mysql.insert(table).values(**values)
        statement = my.on_duplicate_key_update(
            info=my.inserted.info, heartbeat=my.inserted.heartbeat
        )
    conn.execute(statement)


def claim_dead(
    conn: Connection, table: sa.Table, identity: str, cutoff: Any, lock: str | None
) -> list[str]:
    """Remove the instances other than ``identity`` whose heartbeat is before ``cutoff``; the
    identities removed. Rows are locked first, skipping rows another caller holds (``lock``
    ``"skip_locked"``; ``"for_update"`` waits for them; ``None`` on SQLite, where the
    transaction is the only writer), so each is removed — declared dead — by one caller."""
    c = table.c
    query = (
        sa.select(c.identity)
        .where(c.heartbeat < cutoff, c.identity != identity)
        .order_by(c.identity)
    )
    if lock == "skip_locked":
        query = query.with_for_update(skip_locked=True)
    elif lock == "for_update":
        query = query.with_for_update()
    dead = [row[0] for row in conn.execute(query)]
    if dead:
        conn.execute(sa.delete(table).where(c.identity.in_(dead)))
    return dead


def list_instances(
    conn: Connection, table: sa.Table, now: Any
) -> list[tuple[str, dict[str, Any], float]]:
    """(identity, info, seconds since the heartbeat), by identity."""
    c = table.c
    rows = conn.execute(sa.select(c.identity, c.info, now - c.heartbeat).order_by(c.identity)).all()
    found: list[tuple[str, dict[str, Any], float]] = []
    for identity, text, age_us in rows:
        try:
            info = json.loads(text)
        except ValueError:
            info = {}
        found.append((identity, info if isinstance(info, dict) else {}, int(age_us) / 1e6))
    return found
