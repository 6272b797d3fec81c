"""The file store's journals besides the task journal: run records and scheduler instances.

``.asyncz-runs`` is an append-only journal of run records, one JSON object per line, each line
the whole record after an insert or a change (the last line of a key wins). Every process keeps
an index of it in memory and replays only the lines it has not seen, like the task journal. It
is rewritten (compacted) when it holds mostly superseded lines, and to drop finished records
older than the store's ``run_retention``; another process notices the new file (its inode) and
replays it from the start.

A record's keys: ``t`` task id, ``s`` scheduled fire time (UTC µs), ``st`` status, ``i``
instance, ``f`` fired at (µs), ``a`` attempt, ``c`` on_crash; once finished ``r`` run id,
``b``/``e`` started/finished at (µs), ``d`` duration, ``x`` error summary. A ``started`` record
whose instance is ``""`` waits for a taker: its scheduler was declared dead while it ran and
its task's ``on_crash`` is ``"rerun"`` (see :meth:`RunLog.reap`).

``.asyncz-instances`` holds every registered scheduler as JSON ``{identity: {"info": {...},
"heartbeat": seconds since the epoch}}``, rewritten whole (to a temporary file, then renamed)
under the store's exclusive lock. It is not synced to disk: after a power loss, instances are
simply registered again by their next heartbeat.

Nothing here locks: the :class:`~asyncz.plugins.stores.file.FileStore` calls it with its
``flock`` held (exclusive for every write).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.records import from_timestamp_us
from asyncz.core.runs import RunOutcome, RunRecord, summarize_error

__all__ = ["INSTANCES_NAME", "RUNS_NAME", "RunLog", "append_lines", "read_instances"]

RUNS_NAME = ".asyncz-runs"
INSTANCES_NAME = ".asyncz-instances"
_RUNS_HEADER = json.dumps({"asyncz-file-runs": 1}).encode() + b"\n"
_COMPACT_MIN = 1000

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
    path: Path, key: tuple[int, int] | None, offset: int
) -> tuple[tuple[int, int] | None, int, list[bytes], bool]:
    """``(file key, new offset, whole new lines, restarted)`` of a journal read from
    ``offset``; ``restarted`` when it is another file than ``key`` (compacted) or shorter, so
    the caller starts over. A missing file: ``(None, 0, [], True)``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, 0, [], key is not None or offset != 0
    try:
        st = os.fstat(fd)
        new_key = (st.st_dev, st.st_ino)
        restarted = new_key != key or st.st_size < offset
        if restarted:
            offset = 0
        if st.st_size == offset:
            return new_key, offset, [], restarted
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
    return new_key, offset + end, data[:end].splitlines(), restarted


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
        key, offset, lines, restarted = read_new_lines(self.path, self._key, self._offset)
        if restarted:
            self.reset()
        self._key, self._offset = key, offset
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
            self._write_atomically(self.path, _RUNS_HEADER)
        append_lines(self.path, b"".join(_line(r) for r in records), self.mode)
        self.sync()
        if self._lines > 2 * len(self.records) + _COMPACT_MIN:
            self.compact()

    def compact(self, drop: Callable[[Record], bool] | None = None) -> int:
        """Rewrite the journal as one line per record, without those ``drop`` selects; how
        many were dropped (exclusive lock held, after :meth:`sync`)."""
        kept = [r for r in self.records.values() if drop is None or not drop(r)]
        dropped = len(self.records) - len(kept)
        self._write_atomically(self.path, _RUNS_HEADER + b"".join(_line(r) for r in kept))
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

    def reap(self, dead: set[str]) -> list[Record]:
        """What the death of the instances ``dead`` does to their ``started`` records: a rerun
        waiting for a taker (instance ``""``) for ``on_crash="rerun"`` at attempt 1, otherwise
        ``abandoned``."""
        changed: list[Record] = []
        for key in self.started:
            record = self.records[key]
            if record["i"] not in dead:
                continue
            if record.get("c") == "rerun" and record.get("a", 1) == 1:
                changed.append({**record, "i": ""})
            else:
                changed.append({**record, "st": "abandoned"})
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
