"""Run records in the SQL store: the statements behind ``fire_tasks``, ``finish_runs``,
``get_runs``, ``take_reruns``, the resolution of dead schedulers' runs and the retention purge.

Each function runs inside a transaction the store opened (:meth:`SQLAlchemyStore._write`), so
the records of a fire commit with the release of its tasks, or not at all. Times are integer
microseconds since the epoch, like ``next_run_time``.

Encoding of a run waiting for a rerun: status ``started`` and ``instance`` the empty string
(no scheduler holds it); :func:`take_reruns` gives it an instance and attempt 2. A waiting run
counts as started for ``max_instances`` (it will run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.records import from_timestamp_us
from asyncz.core.runs import Fire, FireResult, RunOutcome, RunRecord, summarize_error
from asyncz.plugins.stores.sqlalchemy.schema import pg_array, pg_unnest

__all__ = [
    "WAITING",
    "abandon_reruns",
    "finish_runs",
    "give_reruns",
    "purge_runs",
    "record_fires",
    "resolve_runs_of",
    "select_runs",
    "take_reruns",
]

#: The ``instance`` of a run waiting for a scheduler to rerun it.
WAITING = ""
#: Keys per statement when looking records up by key (well under every server's limits).
_CHUNK = 500
#: MariaDB/MySQL: keys looked up together span at most this much time (microseconds).
_WINDOW_US = 60_000_000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_fires(
    conn: Connection,
    runs: sa.Table,
    owner: str,
    fires: Sequence[Fire],
    now: Any,
    kept: Mapping[str, bytes] | None = None,
) -> dict[str, FireResult]:
    """Insert a record per run time of ``fires`` (whose release this transaction made):
    ``started``, or ``skipped`` over ``max_instances``, or nothing for a key that exists.

    ``kept``: the stored records of tasks the fire deleted whose runs may be rerun
    (``on_crash="rerun"``); their started runs keep them."""
    c = runs.c
    keyed = [
        (fire, run_time, utc_timestamp_us(run_time))
        for fire in fires
        for run_time in fire.run_times
    ]
    if not keyed:
        return {fire.task_id: FireResult(task_id=fire.task_id) for fire in fires}
    pairs = sorted({(fire.task_id, us) for fire, _, us in keyed})
    existing = _existing_keys(conn, runs, pairs)
    ids = sorted({task_id for task_id, _ in pairs})
    running: dict[str, int] = {}
    pg = conn.dialect.name == "postgresql"
    # PostgreSQL: one array parameter (a long IN list of parameters costs more to plan).
    for chunk in [ids] if pg else _chunks(ids):
        running.update(
            (row[0], int(row[1]))
            for row in conn.execute(
                sa.select(c.task_id, sa.func.count())
                .where(
                    c.status == "started",
                    c.task_id == sa.func.any(pg_array(chunk, sa.Text))
                    if pg
                    else c.task_id.in_(chunk),
                )
                .group_by(c.task_id)
            )
        )
    started: dict[str, list[datetime]] = {}
    skipped: dict[str, list[datetime]] = {}
    duplicates: dict[str, list[datetime]] = {}
    rows: list[dict[str, Any]] = []
    # One fire is one submission (its run times run one after another in one slot): all of
    # them start, or all are skipped.
    allowed = {fire.task_id: running.get(fire.task_id, 0) < fire.max_instances for fire in fires}
    for fire, run_time, us in keyed:
        task_id = fire.task_id
        key = (task_id, us)
        if key in existing:
            duplicates.setdefault(task_id, []).append(run_time)
            continue
        existing.add(key)  # the same time twice in one fire: recorded once
        if not allowed[task_id]:
            status = "skipped"
            skipped.setdefault(task_id, []).append(run_time)
        else:
            status = "started"
            started.setdefault(task_id, []).append(run_time)
        rows.append(
            {
                "task_id": task_id,
                "scheduled_at": us,
                "status": status,
                "instance": owner,
                "attempt": 1,
                "on_crash": fire.on_crash,
            }
        )
    if rows and pg:
        # One statement whatever the batch: the rows as arrays, unnested by the server.
        keys = pg_unnest(
            ("k_task", [r["task_id"] for r in rows], sa.Text),
            ("k_at", [r["scheduled_at"] for r in rows], sa.BigInteger),
            ("k_status", [r["status"] for r in rows], sa.Text),
            ("k_crash", [r["on_crash"] for r in rows], sa.Text),
        )
        conn.execute(
            sa.insert(runs).from_select(
                [
                    "task_id",
                    "scheduled_at",
                    "status",
                    "instance",
                    "fired_at",
                    "attempt",
                    "on_crash",
                ],
                sa.select(
                    keys.c.k_task,
                    keys.c.k_at,
                    keys.c.k_status,
                    sa.literal(owner, sa.Text),
                    now,
                    sa.literal(1, sa.Integer),
                    keys.c.k_crash,
                ),
            )
        )
    elif rows:
        # One executemany for the batch (SQLite runs it in-process; PyMySQL rewrites it into
        # multi-row inserts, provided the VALUES hold only parameters: the time is read first).
        fired_at = conn.execute(sa.select(now)).scalar()
        for r in rows:
            r["fired_at"] = fired_at
        conn.execute(sa.insert(runs), rows)
    if kept:
        params = [
            {"b_task": r["task_id"], "b_at": r["scheduled_at"], "b_state": kept[r["task_id"]]}
            for r in rows
            if r["status"] == "started" and r["task_id"] in kept
        ]
        if params:
            conn.execute(
                sa.update(runs)
                .where(c.task_id == sa.bindparam("b_task"), c.scheduled_at == sa.bindparam("b_at"))
                .values(task_state=sa.bindparam("b_state")),
                params,
            )
    return {
        fire.task_id: FireResult(
            task_id=fire.task_id,
            started=tuple(started.get(fire.task_id, ())),
            skipped=tuple(skipped.get(fire.task_id, ())),
            duplicates=tuple(duplicates.get(fire.task_id, ())),
        )
        for fire in fires
    }


def _existing_keys(
    conn: Connection, runs: sa.Table, pairs: Sequence[tuple[str, int]]
) -> set[tuple[str, int]]:
    """Which of the keys ``pairs`` have a record (primary-key lookups)."""
    c = runs.c
    existing: set[tuple[str, int]] = set()
    if conn.dialect.name == "postgresql":
        # Two array parameters joined to the table: one index probe per key. (A list of row
        # values is planned as an OR of each, which costs far more at a thousand keys.)
        keys = pg_unnest(
            ("k_task", [p[0] for p in pairs], sa.Text),
            ("k_at", [p[1] for p in pairs], sa.BigInteger),
        )
        query = sa.select(c.task_id, c.scheduled_at).join(
            keys, sa.and_(c.task_id == keys.c.k_task, c.scheduled_at == keys.c.k_at)
        )
        existing.update((row[0], int(row[1])) for row in conn.execute(query))
        return existing
    if conn.dialect.name in ("mysql", "mariadb"):
        # MariaDB plans a list of row values in time quadratic in its length. Instead: keys
        # close in time together, each group read as one primary-key range per task (its
        # records in the group's time window: one, typically), the exact keys kept here.
        wanted = set(pairs)
        for group in _time_groups(pairs):
            times = [us for _, us in group]
            query = sa.select(c.task_id, c.scheduled_at).where(
                c.task_id.in_(sorted({t for t, _ in group})),
                c.scheduled_at.between(min(times), max(times)),
            )
            existing.update(
                key for key in ((r[0], int(r[1])) for r in conn.execute(query)) if key in wanted
            )
        return existing
    for chunk in _chunks(pairs):
        existing.update(
            (row[0], int(row[1]))
            for row in conn.execute(
                sa.select(c.task_id, c.scheduled_at).where(
                    sa.tuple_(c.task_id, c.scheduled_at).in_(list(chunk))
                )
            )
        )
    return existing


def _time_groups(pairs: Sequence[tuple[str, int]]) -> Iterable[list[tuple[str, int]]]:
    """``pairs`` by time, in groups of at most :data:`_CHUNK` within :data:`_WINDOW_US`."""
    group: list[tuple[str, int]] = []
    for pair in sorted(pairs, key=lambda p: p[1]):
        if group and (len(group) >= _CHUNK or pair[1] - group[0][1] > _WINDOW_US):
            yield group
            group = []
        group.append(pair)
    if group:
        yield group


def finish_runs(conn: Connection, runs: sa.Table, outcomes: Sequence[RunOutcome]) -> None:
    """Record how runs ended, each only where it is still ``started`` by its instance."""
    c = runs.c
    params = [
        {
            "b_task": o.task_id,
            "b_at": utc_timestamp_us(o.scheduled_at),
            "b_instance": o.instance,
            "b_status": o.status,
            "b_run_id": o.run_id,
            "b_started": _us(o.started_at),
            "b_finished": _us(o.finished_at),
            "b_duration": o.duration,
            "b_error": summarize_error(o.error),
        }
        for o in outcomes
    ]
    conn.execute(
        sa.update(runs)
        .where(
            c.task_id == sa.bindparam("b_task"),
            c.scheduled_at == sa.bindparam("b_at"),
            c.instance == sa.bindparam("b_instance"),
            c.status == "started",
        )
        .values(
            status=sa.bindparam("b_status"),
            run_id=sa.bindparam("b_run_id"),
            started_at=sa.bindparam("b_started"),
            finished_at=sa.bindparam("b_finished"),
            duration=sa.bindparam("b_duration"),
            error=sa.bindparam("b_error"),
            task_state=None,
        ),
        params,
    )


def select_runs(
    conn: Connection, runs: sa.Table, task_id: str | None, limit: int
) -> list[RunRecord]:
    """The newest records (by ``scheduled_at``, ties by task id), of one task or of all."""
    c = runs.c
    query = sa.select(runs)
    if task_id is not None:
        query = query.where(c.task_id == task_id)
    query = query.order_by(c.scheduled_at.desc(), c.task_id).limit(limit)
    return [_record(row) for row in conn.execute(query)]


def resolve_runs_of(
    conn: Connection,
    runs: sa.Table,
    instances: sa.Table,
    dead: Sequence[str],
    now: Any,
    orphans_before: Any,
) -> None:
    """Resolve the ``started`` runs of dead schedulers: ``abandoned``, or waiting for a rerun
    (``on_crash="rerun"``, first attempt). Also those of schedulers no longer registered at
    all (shut down, or removed earlier) fired before ``orphans_before``: nobody will finish
    them, and they would count against ``max_instances`` for ever.

    Two plain reads first (only runs in flight are ``started``: few rows), and updates only
    when something is to be resolved: a heartbeat with nothing to do writes nothing here."""
    c = runs.c
    running = {
        row[0]
        for row in conn.execute(
            sa.select(c.instance)
            .where(c.status == "started", c.instance != WAITING, c.fired_at < orphans_before)
            .distinct()
        )
    }
    orphans: list[str] = []
    if running - set(dead):
        registered = {row[0] for row in conn.execute(sa.select(instances.c.identity))}
        orphans = sorted(running - registered - set(dead))
    if not dead and not orphans:
        return
    which: list[Any] = []
    if dead:
        which.append(c.instance.in_(list(dead)))
    if orphans:
        which.append(sa.and_(c.instance.in_(orphans), c.fired_at < orphans_before))
    of_the_dead = sa.and_(c.status == "started", sa.or_(*which))
    rerun = sa.and_(c.on_crash == "rerun", c.attempt == 1)
    conn.execute(sa.update(runs).where(of_the_dead, rerun).values(instance=WAITING))
    conn.execute(
        sa.update(runs)
        .where(of_the_dead, c.instance != WAITING)
        .values(status="abandoned", finished_at=now, task_state=None)
    )


def take_reruns(
    conn: Connection, runs: sa.Table, owner: str, limit: int, lock: str | None
) -> list[tuple[str, int]]:
    """Lock up to ``limit`` runs waiting for a rerun, oldest first; their keys."""
    c = runs.c
    query = (
        sa.select(c.task_id, c.scheduled_at)
        .where(c.status == "started", c.instance == WAITING)
        .order_by(c.scheduled_at, c.task_id)
        .limit(limit)
    )
    if lock == "skip_locked":
        query = query.with_for_update(skip_locked=True)
    elif lock == "for_update":
        query = query.with_for_update()
    return [(row[0], int(row[1])) for row in conn.execute(query)]


def give_reruns(
    conn: Connection, runs: sa.Table, owner: str, keys: Sequence[tuple[str, int]], now: Any
) -> None:
    """Hand the waiting runs ``keys`` to ``owner`` as attempt 2."""
    c = runs.c
    if keys:
        conn.execute(
            sa.update(runs)
            .where(
                c.task_id == sa.bindparam("b_task"),
                c.scheduled_at == sa.bindparam("b_at"),
                c.instance == WAITING,
            )
            .values(instance=owner, attempt=2, fired_at=now, task_state=None),
            [{"b_task": task_id, "b_at": us} for task_id, us in keys],
        )


def abandon_reruns(
    conn: Connection,
    runs: sa.Table,
    keys: Sequence[tuple[str, int, str | None]],
    now: Any,
) -> None:
    """Give up the waiting runs ``keys`` (task gone, or cannot be restored: the reason)."""
    c = runs.c
    if keys:
        conn.execute(
            sa.update(runs)
            .where(
                c.task_id == sa.bindparam("b_task"),
                c.scheduled_at == sa.bindparam("b_at"),
                c.instance == WAITING,
            )
            .values(
                status="abandoned",
                finished_at=now,
                error=sa.bindparam("b_error"),
                task_state=None,
            ),
            [{"b_task": t, "b_at": us, "b_error": error} for t, us, error in keys],
        )


def purge_runs(conn: Connection, runs: sa.Table, before: Any) -> int:
    """Delete the finished records scheduled before ``before``; how many."""
    c = runs.c
    result = conn.execute(sa.delete(runs).where(c.scheduled_at < before, c.status != "started"))
    return int(result.rowcount or 0)


def _us(value: datetime | None) -> int | None:
    return None if value is None else utc_timestamp_us(value)


def _record(row: Any) -> RunRecord:
    return RunRecord(
        task_id=row.task_id,
        scheduled_at=from_timestamp_us(row.scheduled_at),  # type: ignore[arg-type]
        status=row.status,
        instance=row.instance,
        fired_at=from_timestamp_us(row.fired_at),
        run_id=row.run_id,
        started_at=from_timestamp_us(row.started_at),
        finished_at=from_timestamp_us(row.finished_at),
        duration=row.duration,
        error=row.error,
        attempt=int(row.attempt),
        on_crash=row.on_crash,
    )
