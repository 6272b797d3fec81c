"""The file store's journals besides the task journal: run records and scheduler instances.

``.asyncz-runs`` is an append-only journal of run records, one JSON object per line, each line
the whole record after an insert or a change (the last line of a key wins). Every process keeps
an index of it in memory and replays only the lines it has not seen, like the task journal. It
is rewritten (compacted) when it holds mostly superseded lines, and to drop finished records
older than the store's ``run_retention``; another process notices the new file (its inode) and
replays it from the start.

A record's keys: ``t`` task id, ``s`` scheduled fire time (UTC µs), ``st`` status, ``i``
instance, ``f`` fired at (µs), ``a`` attempt, ``c`` on_crash; once finished ``r`` run id,
``b``/``e`` started/finished (or abandoned) at (µs), ``d`` duration, ``x`` error summary.
A ``started`` record whose instance is ``""`` waits for a taker: its scheduler was declared
dead while it ran and its task's ``on_crash`` is ``"rerun"`` (see :meth:`RunLog.reap`); it
counts as started for ``max_instances`` (it will run). ``k``: the task's stored record
(base64), kept in the ``started`` runs of a ``"rerun"`` task that its fire deleted (its
trigger was done), so that a rerun still has a task to run; dropped when the run ends.

``.asyncz-instances`` holds every registered scheduler as JSON ``{identity: {"info": {...},
"heartbeat": seconds since the epoch}}``, rewritten whole (to a temporary file, then renamed)
under the store's exclusive lock. It is not synced to disk: after a power loss, instances are
simply registered again by their next heartbeat.

Nothing here locks: the :class:`~asyncz.plugins.stores.file.FileStore` calls it with its
``flock`` held (exclusive for every write).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.records import from_timestamp_us
from asyncz.core.runs import Fire, FireResult, RunOutcome, RunRecord, summarize_error

if TYPE_CHECKING:
    from asyncz.core.task import Task
    from asyncz.plugins.stores.file import FileStore

__all__ = [
    "INSTANCES_NAME",
    "journal_header",
    "read_new_lines",
    "PURGE_EVERY",
    "RUNS_NAME",
    "RunLog",
    "append_lines",
    "read_instances",
]

RUNS_NAME = ".asyncz-runs"
INSTANCES_NAME = ".asyncz-instances"
_COMPACT_MIN = 1000
#: Seconds between two purges of old run records by one process (during its heartbeats).
PURGE_EVERY = 300.0

Key = tuple[str, int]
Record = dict[str, Any]


def append_lines(path: Path, payload: bytes, mode: int) -> None:
    """Append whole lines to a journal (exclusive lock held), after cutting off a line a
    crashed writer left unfinished, and sync them to disk."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, mode)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
            os.ftruncate(fd, size - len(tail) + tail.rfind(b"\n") + 1)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_new_lines(
    path: Path, key: tuple[int, int] | None, offset: int, head: bytes
) -> tuple[tuple[int, int] | None, int, list[bytes], bool, bytes]:
    """``(file key, new offset, whole new lines, restarted, first line)`` of a journal read
    from ``offset``; ``restarted`` when it is another file than the one read so far (another
    inode or first line: rewritten by a compaction) or shorter, so the caller starts over. A
    missing file: ``(None, 0, [], True, b"")``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, 0, [], True, b""
    try:
        st = os.fstat(fd)
        new_key = (st.st_dev, st.st_ino)
        # The first line (with a random generation) as well as the inode: a file written by
        # two compactions since the last read may have the inode of the one read before.
        restarted = (
            new_key != key
            or st.st_size < offset
            or (offset > 0 and os.pread(fd, len(head), 0) != head)
        )
        if restarted:
            offset, head = 0, b""
        if st.st_size == offset:
            return new_key, offset, [], restarted, head
        os.lseek(fd, offset, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    # Only whole lines: the last one may be a write in progress (or cut short by a crash).
    end = data.rfind(b"\n") + 1
    if offset == 0 and end:
        head = data[: data.find(b"\n") + 1]
    return new_key, offset + end, data[:end].splitlines(), restarted, head


def journal_header(kind: str, version: int) -> bytes:
    """The first line of a journal written whole: its format and a random generation."""
    return json.dumps({kind: version, "generation": uuid.uuid4().hex}).encode() + b"\n"


def _us(value: datetime | None) -> int | None:
    return None if value is None else utc_timestamp_us(value)


def _dt(value: int | None) -> datetime | None:
    return from_timestamp_us(value)


def _line(record: Record) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


class RunLog:
    """The in-memory index of ``.asyncz-runs`` and the changes a store makes to it."""

    def __init__(
        self,
        path: Path,
        mode: int,
        write_atomically: Callable[[Path, bytes], None],
        logger: logging.Logger,
    ) -> None:
        self.path = path
        self.mode = mode
        self._write_atomically = write_atomically
        self.logger = logger
        self.reset()

    def reset(self) -> None:
        self._key: tuple[int, int] | None = None
        self._offset = 0
        self._head = b""
        self._lines = 0
        self.records: dict[Key, Record] = {}
        #: keys of the ``started`` records, oldest insert first
        self.started: dict[Key, None] = {}
        #: task id -> how many of its records are ``started``
        self.counts: dict[str, int] = {}

    def _put(self, record: Record) -> None:
        key = (record["t"], record["s"])
        old = self.records.get(key)
        if old is not None and old["st"] == "started":
            del self.started[key]
            left = self.counts[key[0]] - 1
            if left:
                self.counts[key[0]] = left
            else:
                del self.counts[key[0]]
        self.records[key] = record
        if record["st"] == "started":
            self.started[key] = None
            self.counts[key[0]] = self.counts.get(key[0], 0) + 1

    def sync(self) -> None:
        """Replay the lines written since the last call (any lock held)."""
        key, offset, lines, restarted, head = read_new_lines(
            self.path, self._key, self._offset, self._head
        )
        if restarted:
            self.reset()
        self._key, self._offset, self._head = key, offset, head
        for line in lines:
            self._lines += 1
            try:
                record = json.loads(line)
            except ValueError:
                self.logger.warning("Skipping a damaged line of %s", self.path)
                continue
            if isinstance(record, dict) and "t" in record and "s" in record and "st" in record:
                self._put(record)

    def write(self, records: Sequence[Record]) -> None:
        """Append records (exclusive lock held, after :meth:`sync`) and apply them."""
        if not records:
            return
        if self._key is None and not self.path.exists():
            self._write_atomically(self.path, journal_header("asyncz-file-runs", 1))
        append_lines(self.path, b"".join(_line(r) for r in records), self.mode)
        self.sync()
        if self._lines > 2 * len(self.records) + _COMPACT_MIN:
            self.compact()

    def compact(self, drop: Callable[[Record], bool] | None = None) -> int:
        """Rewrite the journal as one line per record, without those ``drop`` selects; how
        many were dropped (exclusive lock held, after :meth:`sync`)."""
        kept = [r for r in self.records.values() if drop is None or not drop(r)]
        dropped = len(self.records) - len(kept)
        self._write_atomically(
            self.path, journal_header("asyncz-file-runs", 1) + b"".join(_line(r) for r in kept)
        )
        self.reset()
        self.sync()
        return dropped

    def purge(self, before_us: int) -> int:
        """Drop finished records scheduled before ``before_us`` (exclusive lock held)."""
        if not any(r["s"] < before_us and r["st"] != "started" for r in self.records.values()):
            return 0
        return self.compact(lambda r: r["s"] < before_us and r["st"] != "started")

    # -- changes (each returns the records to write) -----------------------------------------

    @staticmethod
    def new(
        task_id: str, scheduled_us: int, status: str, instance: str, fired_us: int, on_crash: str
    ) -> Record:
        return {
            "t": task_id,
            "s": scheduled_us,
            "st": status,
            "i": instance,
            "f": fired_us,
            "a": 1,
            "c": on_crash,
        }

    def finish(self, outcomes: Iterable[RunOutcome]) -> list[Record]:
        """The records ``outcomes`` finish: only those still ``started`` by the instance."""
        changed: dict[Key, Record] = {}
        for outcome in outcomes:
            key = (outcome.task_id, utc_timestamp_us(outcome.scheduled_at))
            record = changed.get(key) or self.records.get(key)
            if record is None or record["st"] != "started" or record["i"] != outcome.instance:
                continue
            record = {**record, "st": outcome.status}
            record.pop("k", None)  # the task kept for a rerun: not needed any more
            for name, value in (
                ("r", outcome.run_id),
                ("b", _us(outcome.started_at)),
                ("e", _us(outcome.finished_at)),
                ("d", outcome.duration),
                ("x", summarize_error(outcome.error)),
            ):
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value
            changed[key] = record
        return list(changed.values())

    def reap(
        self, dead: set[str], registered: set[str], orphans_before: int, now_us: int
    ) -> list[Record]:
        """What the death of the instances ``dead`` does to their ``started`` records: a rerun
        waiting for a taker (instance ``""``) for ``on_crash="rerun"`` at attempt 1, otherwise
        ``abandoned``. Also the records of instances not registered at all (shut down, or
        removed earlier) fired before ``orphans_before``: nobody will finish them, and they
        would count against ``max_instances`` for ever."""
        changed: list[Record] = []
        for key in self.started:
            record = self.records[key]
            instance = record["i"]
            if instance == "":
                continue
            if instance not in dead and (
                instance in registered or record.get("f", 0) >= orphans_before
            ):
                continue
            if record.get("c") == "rerun" and record.get("a", 1) == 1:
                changed.append({**record, "i": ""})
            else:
                changed.append(abandoned(record, now_us))
        return changed

    def waiting(self) -> list[Record]:
        """The runs waiting for a taker, oldest fire first."""
        found = [self.records[k] for k in self.started if self.records[k]["i"] == ""]
        found.sort(key=lambda r: (r["s"], r["t"]))
        return found

    def newest(self, task_id: str | None, limit: int) -> list[RunRecord]:
        if task_id is None:
            records: Iterable[Record] = self.records.values()
        else:
            records = [r for r in self.records.values() if r["t"] == task_id]
        ordered = sorted(records, key=lambda r: (-r["s"], r["t"]))
        return [to_run_record(r) for r in ordered[: max(limit, 0)]]


def abandoned(record: Record, now_us: int, error: str | None = None) -> Record:
    """``record`` given up: nobody will run it (again)."""
    changed = {**record, "st": "abandoned", "e": now_us}
    changed.pop("k", None)
    if error is not None:
        changed["x"] = summarize_error(error)
    return changed


def to_run_record(record: Record) -> RunRecord:
    scheduled = from_timestamp_us(record["s"])
    assert scheduled is not None
    return RunRecord(
        task_id=record["t"],
        scheduled_at=scheduled,
        status=record["st"],
        instance=record["i"],
        fired_at=_dt(record.get("f")),
        run_id=record.get("r"),
        started_at=_dt(record.get("b")),
        finished_at=_dt(record.get("e")),
        duration=record.get("d"),
        error=record.get("x"),
        attempt=record.get("a", 1),
        on_crash=record.get("c", "skip"),
    )


def read_instances(path: Path, logger: logging.Logger) -> dict[str, dict[str, Any]]:
    """The registered instances (any lock held); a missing or damaged file holds none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        instances = json.loads(data)
    except ValueError:
        logger.warning("Ignoring the damaged %s: instances register again", path)
        return {}
    if not isinstance(instances, dict):
        return {}
    return {
        identity: entry
        for identity, entry in instances.items()
        if isinstance(entry, dict) and isinstance(entry.get("heartbeat"), (int, float))
    }


def dump_instances(instances: dict[str, dict[str, Any]]) -> bytes:
    return json.dumps(instances, sort_keys=True, default=str).encode("utf-8")


# -- the FileStore's instances and run records (its methods call these) ---------------------


def write_instances(store: FileStore, instances: dict[str, dict[str, Any]]) -> None:
    store._write_atomically(
        store._instances_path, dump_instances(instances), store.file_mode, durable=False
    )


def register_instance(store: FileStore, identity: str, info: Mapping[str, Any]) -> None:
    """Register (or refresh) the scheduler ``identity``, heartbeat now."""
    with store._locked(exclusive=True):
        instances = read_instances(store._instances_path, store.logger)
        instances[identity] = {"info": dict(info), "heartbeat": store._clock()}
        write_instances(store, instances)


def heartbeat(
    store: FileStore, identity: str, info: Mapping[str, Any], dead_after: float
) -> list[str]:
    """Refresh ``identity``'s heartbeat and declare dead the instances whose heartbeat is
    older than ``dead_after`` seconds: remove them, clear their leases and resolve their
    ``started`` runs (:meth:`RunLog.reap`). Returns the instances declared dead (each by
    exactly one caller: all under the exclusive lock)."""
    with store._locked(exclusive=True):
        now = store._clock()
        instances = read_instances(store._instances_path, store.logger)
        dead = sorted(
            other
            for other, entry in instances.items()
            if other != identity and now - entry["heartbeat"] > dead_after
        )
        for other in dead:
            del instances[other]
        # The leases and runs first: a crash before the registry is written then declares
        # them dead again, instead of leaving their leases behind.
        store._runs.sync()
        store._runs.write(
            store._runs.reap(
                set(dead),
                {*instances, identity},
                int((now - dead_after) * 1_000_000),
                int(now * 1_000_000),
            )
        )
        if dead:
            store._clear_leases_of(set(dead))
        instances[identity] = {"info": dict(info), "heartbeat": now}
        write_instances(store, instances)
        housekeeping(store, now)
    return dead


def housekeeping(store: FileStore, now: float) -> None:
    """Purge old finished run records, at most every :data:`PURGE_EVERY` seconds."""
    if store.run_retention is None or now - store._last_purge < PURGE_EVERY:
        return
    store._last_purge = now
    store._runs.sync()
    purged = store._runs.purge(int((now - store.run_retention) * 1_000_000))
    if purged:
        store.logger.debug("Removed %d run records older than the retention", purged)


def unregister_instance(store: FileStore, identity: str) -> None:
    """Remove ``identity`` and clear its leases (a clean shutdown)."""
    with store._locked(exclusive=True):
        store._clear_leases_of({identity})
        for key in [k for k in store._held if k[0] == identity]:
            del store._held[key]
        instances = read_instances(store._instances_path, store.logger)
        if instances.pop(identity, None) is not None:
            write_instances(store, instances)


def get_instances(store: FileStore) -> list[tuple[str, dict[str, Any], float]]:
    """``(identity, info, seconds since its last heartbeat)`` of every registered
    scheduler, by identity."""
    with store._locked(exclusive=False):
        instances = read_instances(store._instances_path, store.logger)
        now = store._clock()
    return [
        (identity, dict(entry.get("info") or {}), max(0.0, now - entry["heartbeat"]))
        for identity, entry in sorted(instances.items())
    ]


# -- run records -----------------------------------------------------------------------


def fire_tasks(store: FileStore, owner: str, fires: Sequence[Fire]) -> dict[str, FireResult]:
    """Release each task whose lease ``owner`` still holds (through this instance), and
    in the same exclusive section record a run per run time to start: ``started``, or
    ``skipped`` once ``max_instances`` runs of the task are ``started`` across every
    scheduler, or nothing for a run time that already has a record (a duplicate).

    The run records are written before the task journal: after a crash in between, the
    task is still at its old run time, and whoever fires it again finds the records."""
    results: dict[str, FireResult] = {}
    with store._locked(exclusive=True):
        runs = store._runs
        runs.sync()
        fired_us = int(store._clock() * 1_000_000)
        items: list[list[Any]] = []
        deletions: list[str] = []
        records: dict[tuple[str, int], Record] = {}
        for fire in fires:
            task_id = fire.task_id
            if not store._holds(owner, task_id):
                continue  # the lease was lost: nothing recorded, nothing run
            started: list[datetime] = []
            skipped: list[datetime] = []
            duplicates: list[datetime] = []
            # One fire is one submission (its run times run one after another in one slot):
            # all of them start, or all are skipped.
            allowed = runs.counts.get(task_id, 0) < fire.max_instances
            for run_time in fire.run_times:
                key = (task_id, utc_timestamp_us(run_time))
                if key in runs.records or key in records:
                    duplicates.append(run_time)
                    continue
                if not allowed:
                    status = "skipped"
                    skipped.append(run_time)
                else:
                    status = "started"
                    started.append(run_time)
                records[key] = RunLog.new(task_id, key[1], status, owner, fired_us, fire.on_crash)
            if fire.next_run_time is None and fire.on_crash == "rerun" and started:
                # The fire deletes the task: its runs keep its record, for a rerun.
                data = store._read(task_id)
                if data is not None:
                    kept = base64.b64encode(data).decode("ascii")
                    for run_time in started:
                        records[(task_id, utc_timestamp_us(run_time))]["k"] = kept
            items.append(store._release(task_id, fire.next_run_time, deletions))
            results[task_id] = FireResult(
                task_id=task_id,
                started=tuple(started),
                skipped=tuple(skipped),
                duplicates=tuple(duplicates),
            )
        runs.write(list(records.values()))
        store._delete_files(deletions)
        store._append(items)
    return results


def finish_runs(store: FileStore, outcomes: Sequence[RunOutcome]) -> None:
    """Record how runs ended; a record no longer ``started`` by the outcome's instance
    (declared dead meanwhile, and resolved by another scheduler) is left alone."""
    if not outcomes:
        return
    with store._locked(exclusive=True):
        store._runs.sync()
        store._runs.write(store._runs.finish(outcomes))


def get_runs(store: FileStore, task_id: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The newest run records (by scheduled time, ties by task id), of one task or all."""
    with store._locked(exclusive=False):
        store._runs.sync()
        return store._runs.newest(task_id, limit)


def take_reruns(store: FileStore, owner: str, limit: int) -> list[tuple[Task, datetime]]:
    """Hand ``owner`` up to ``limit`` runs of dead schedulers waiting for a rerun, each
    once: the task and the fire time to run again (attempt 2). The task is the stored one,
    or, for a task its fire deleted (its trigger was done), the record kept in the run. A
    rerun whose task is gone or cannot be restored is ``abandoned`` (with the reason)."""
    taken: list[tuple[Task, datetime]] = []
    reports: list[tuple[str, str]] = []
    with store._locked(exclusive=True):
        store._runs.sync()
        now_us = int(store._clock() * 1_000_000)
        changes: list[Record] = []
        for record in store._runs.waiting():
            if len(taken) >= limit:
                break
            task_id = record["t"]
            next_us: int | None = None
            data = None
            if task_id in store._entries:
                data = store._read(task_id)
                next_us = store._entries[task_id]
            elif "k" in record:
                with contextlib.suppress(ValueError):
                    data = base64.b64decode(record["k"])
            if data is None:
                changes.append(abandoned(record, now_us, "the task no longer exists"))
                continue
            task = store.restore(task_id, data, next_us, reports)
            if task is None:
                reason = reports[-1][1] if reports else "unknown"
                changes.append(abandoned(record, now_us, f"cannot be restored: {reason}"))
                continue
            object.__setattr__(task, "store_version", store._versions.get(task_id))
            changes.append({**record, "i": owner, "a": 2, "f": now_us})
            when = from_timestamp_us(record["s"])
            assert when is not None
            taken.append((task, when))
        store._runs.write(changes)
    store.report(reports)
    return taken
