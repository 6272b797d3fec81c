"""The ``file`` store: one file per task in a directory, safe for several processes on one host.

Layout of ``directory``:

* ``<name><suffix>`` — one encoded record per task, always written whole: to a temporary file,
  flushed to disk, then renamed over the old one, so a reader (or a process that crashed while
  writing) never sees half a task. ``<name>`` is the task id, escaped where it cannot be a file
  name and a hash when too long (:mod:`asyncz.plugins.stores.file_names`): every id the kernel
  accepts works, compared exactly.
* ``.asyncz-index`` — an append-only journal of one JSON line per change, the store's index of
  run times, versions and leases: ``["S", id, run time, version]`` (set the run time and the
  version, clear the lease), ``["V", id, version]`` (a new record; run time and lease
  untouched), ``["L", id, owner, until, token]`` (lease), ``["U", id]`` (clear the lease),
  ``["D", id]`` (delete), ``["C"]`` (clear). Each process replays only the lines it has not seen
  yet, so a wake-up costs a ``stat`` and a short read instead of reading every task file. The
  journal is rewritten (compacted) once it holds mostly dead lines. It is a cache: a missing or
  damaged one is rebuilt from the task files (with new versions), and at start the task files
  are reconciled with it.
* ``.asyncz-lock`` — ``flock``-ed by every operation (shared to read, exclusive to change), which
  is what makes leases and conditional writes safe between processes: every write is decided
  under the exclusive lock, after replaying everyone else's lines.
* ``.asyncz-runs``, ``.asyncz-instances`` — run records and registered schedulers
  (:mod:`asyncz.plugins.stores.file_runs`).
* ``.tmp-*`` — temporary files of writes in progress; leftovers of a crash are removed at start.

The run time in the journal wins over the one in the task file: releasing a task after a run
appends one line instead of rewriting the task, and ``update_task(task, keep_schedule=True)``
rewrites the file without touching the run time or the lease.

Versions (cluster mode): every task has an integer version in the journal, random when added
(:func:`~asyncz.core.records.new_store_version`) and one more after every write — an update or
a release (a release changes the run time, so an update that read the old one conflicts). A
lease carries a fresh token per ``acquire_due_tasks`` call, which the store instance remembers
per (owner, task) until it releases the task: a task re-leased, rescheduled or deleted
meanwhile is not released. The store's clock, for heartbeats and lease renewals, is
``time.time()`` (one host).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import (
    AsynczException,
    ConflictIdError,
    TaskConflictError,
    TaskLookupError,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.records import (
    TaskStateEnvelope,
    from_timestamp_us,
    new_store_version,
    record_run_time,
    to_timestamp_us,
)
from asyncz.core.runs import Fire, FireResult, RunOutcome, RunRecord
from asyncz.core.task import Task, TaskState, task_id_problem
from asyncz.plugins.stores import file_runs
from asyncz.plugins.stores.file_names import (
    decode_stem,
    file_stem,
    hashed_header,
    hashed_id,
    is_hashed,
)
from asyncz.plugins.stores.file_runs import (
    INSTANCES_NAME,
    RUNS_NAME,
    RunLog,
    append_lines,
    journal_header,
    read_new_lines,
)
from asyncz.plugins.stores.persistent import PersistentStore, order_key

try:
    import fcntl
except ImportError:  # Windows: leases are then only safe within one process
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileStore", "InvalidTaskIdError"]

INDEX_NAME = ".asyncz-index"
LOCK_NAME = ".asyncz-lock"
INDEX_VERSION = 2
_COMPACT_MIN = 1000


class InvalidTaskIdError(TaskLookupError, ValueError, RuntimeError):
    """A task id no task can have (the kernel's rule: 1-191 characters, no control characters
    or lone surrogates), given to a call of the file store.

    A ``RuntimeError``, as Asyncz raises; a ``ValueError`` (a bad argument); and a
    :class:`TaskLookupError`, since no task of this store can have that id.
    """

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        AsynczException.__init__(self, message)


def check_task_id(task_id: str) -> None:
    """Refuse ids the kernel refuses (every other id has a file name)."""
    problem = task_id_problem(task_id) if isinstance(task_id, str) else "id must be a string."
    if problem is not None:
        shown = task_id if len(task_id) <= 80 else f"{task_id[:40]}...{task_id[-20:]}"
        raise InvalidTaskIdError(task_id, f"no task can have the id {shown!r}: {problem}")


Lease = tuple[str, int, "str | None"]  # owner, until (µs), token


class FileStore(PersistentStore):
    """Keeps each task in its own file in ``directory``.

    :param directory: where the files live (created if missing)
    :param suffix: file name suffix of task files
    :param mode: permissions of the directory when it is created (task files get the same
        without execute bits)
    :param cleanup_directory: delete the directory and everything in it at shutdown
    :param pickle_protocol: the pickle protocol, for the ``pickle`` serializer
    :param run_retention: seconds after which finished run records are removed (by their
        scheduled time); ``None`` keeps them all
    :param serializer: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param signing_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param encryption_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param accept_unprotected: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param poll_interval: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param cache_size: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        suffix: str = ".task",
        mode: int = 0o700,
        cleanup_directory: bool = False,
        *,
        pickle_protocol: int | None = None,
        run_retention: float | None = 7 * 86400.0,
        serializer: Any = "pickle",
        signing_key: Any = None,
        encryption_key: Any = None,
        accept_unprotected: bool = False,
        poll_interval: float | None = 5.0,
        cache_size: int = 100_000,
    ) -> None:
        super().__init__(
            serializer=serializer,
            signing_key=signing_key,
            encryption_key=encryption_key,
            accept_unprotected=accept_unprotected,
            poll_interval=poll_interval,
            cache_size=cache_size,
            pickle_protocol=pickle_protocol,
        )
        if directory is None:
            raise TypeError("the file store needs directory=, the directory to keep tasks in")
        if not isinstance(suffix, str) or not suffix or "/" in suffix or "\\" in suffix:
            raise ValueError(f"suffix must be a non-empty file name suffix, got {suffix!r}")
        if run_retention is not None and (
            isinstance(run_retention, bool)
            or not isinstance(run_retention, (int, float))
            or run_retention <= 0
        ):
            raise ValueError(
                f"run_retention must be a number of seconds > 0 or None, got {run_retention!r}"
            )
        self.directory = Path(directory)
        self.suffix = suffix
        self.mode = mode
        self.file_mode = (mode & 0o666) | 0o600
        self.cleanup_directory = cleanup_directory
        self.run_retention = None if run_retention is None else float(run_retention)
        self._index_path = self.directory / INDEX_NAME
        self._instances_path = self.directory / INSTANCES_NAME
        self._lock = threading.RLock()
        self._lock_fd = -1
        # (owner, task id) -> the token of the lease this instance acquired and not released
        self._held: dict[tuple[str, str], str] = {}
        self._runs = RunLog(
            self.directory / RUNS_NAME,
            self.file_mode,
            lambda path, data: self._write_atomically(path, data, self.file_mode),
            logging.getLogger("asyncz.stores.file"),
        )
        self._last_purge = 0.0
        self._reset()

    # -- in-memory view of the journal (call with self._lock held) ---------------------------

    def _reset(self) -> None:
        self._index_key: tuple[int, int] | None = None
        self._index_head = b""
        self._offset = 0
        self._lines = 0
        self._entries: dict[str, int | None] = {}
        self._versions: dict[str, int] = {}
        self._leased: dict[str, Lease] = {}
        self._heap: list[tuple[int, str]] = []

    def _apply(self, item: list[Any]) -> None:
        op = item[0]
        if op == "S":
            task_id, next_us = item[1], item[2]
            self._entries[task_id] = next_us
            if len(item) > 3 and isinstance(item[3], int):
                self._versions[task_id] = item[3]
            else:  # a line of the first journal format: given one at the next start
                self._versions.pop(task_id, None)
            self._leased.pop(task_id, None)
            if next_us is not None:
                heapq.heappush(self._heap, (next_us, task_id))
        elif op == "V":
            if item[1] in self._entries:
                self._versions[item[1]] = item[2]
        elif op == "L":
            self._leased[item[1]] = (item[2], item[3], item[4] if len(item) > 4 else None)
        elif op == "U":
            if self._leased.pop(item[1], None) is not None:
                next_us = self._entries.get(item[1])
                if next_us is not None:
                    heapq.heappush(self._heap, (next_us, item[1]))
        elif op == "D":
            self._entries.pop(item[1], None)
            self._versions.pop(item[1], None)
            self._leased.pop(item[1], None)
        elif op == "C":
            self._entries.clear()
            self._versions.clear()
            self._leased.clear()
            self._heap.clear()
        if len(self._heap) > 2 * len(self._entries) + _COMPACT_MIN:
            self._heap = [(n, i) for i, n in self._entries.items() if n is not None]
            heapq.heapify(self._heap)

    def _sync(self) -> bool:
        """Replay journal lines written since the last call; False if there is no journal."""
        key, offset, lines, restarted, head = read_new_lines(
            self._index_path, self._index_key, self._offset, self._index_head
        )
        if key is None:
            self._reset()
            return False
        if restarted:
            self._reset()  # compacted (a new file) by some process: start over
        self._index_key, self._offset, self._index_head = key, offset, head
        for line in lines:
            self._lines += 1
            try:
                item = json.loads(line)
            except ValueError:
                self.logger.warning("Skipping a damaged line of %s", self._index_path)
                continue
            if isinstance(item, list) and item:
                try:
                    self._apply(item)
                except (IndexError, TypeError):
                    self.logger.warning("Skipping a damaged line of %s", self._index_path)
        return True

    # -- locking and writing -----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with self._lock:
            if self._lock_fd < 0:
                self._open()
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                if not self._sync():
                    if not exclusive and fcntl is not None:
                        # No journal yet: building one needs the exclusive lock.
                        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                    self._rebuild()
                yield
            except OSError:
                self._reset()  # memory may be ahead of the disk now: reload next time
                self._reset_runs()
                raise
            finally:
                if fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reset_runs(self) -> None:
        """Forget the run journal's index: read again from the start next time."""
        self._runs.reset()

    def _open(self) -> None:
        self.directory.mkdir(mode=self.mode, parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, self.file_mode)

    def _append(self, items: list[list[Any]]) -> None:
        """Append journal lines (exclusive lock held) and apply them."""
        if not items:
            return
        payload = b"".join(
            json.dumps(item, separators=(",", ":")).encode("utf-8") + b"\n" for item in items
        )
        # Cuts off first a line a writer that died left unfinished.
        append_lines(self._index_path, payload, self.file_mode)
        self._sync()
        if self._lines > 2 * (len(self._entries) + len(self._leased)) + _COMPACT_MIN:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal as one line per live task and lease (exclusive lock held)."""
        versions = self._versions
        items: list[list[Any]] = [
            ["S", i, n, versions[i]] if i in versions else ["S", i, n]
            for i, n in self._entries.items()
        ]
        items += [["L", i, *held] for i, held in self._leased.items()]
        body = b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in items)
        self._write_atomically(
            self._index_path,
            journal_header("asyncz-file-index", INDEX_VERSION) + body,
            self.file_mode,
        )
        self._sync()

    def _write_atomically(
        self, path: Path, data: bytes, mode: int, *, durable: bool = True, sync_dir: bool = True
    ) -> None:
        # Short and unique (a long name plus the suffix must not exceed the file name limit).
        tmp = self.directory / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:16]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable and sync_dir:
            self._fsync_directory()

    def _fsync_directory(self) -> None:
        # Makes the rename itself durable; not possible (nor needed) on Windows.
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- task files ------------------------------------------------------------------------

    def _path(self, task_id: str) -> Path:
        return self.directory / f"{file_stem(task_id)}{self.suffix}"

    def _write_task(self, task_id: str, data: bytes, *, sync_dir: bool = True) -> None:
        stem = file_stem(task_id)
        if is_hashed(stem):
            data = hashed_header(task_id) + data
        self._write_atomically(
            self.directory / f"{stem}{self.suffix}", data, self.file_mode, sync_dir=sync_dir
        )

    def _task_files(self) -> dict[str, str]:
        """Every task file in the directory: id -> file name (exclusive lock held). Files of
        the first naming scheme whose name is not the canonical one of their id are renamed."""
        n = len(self.suffix)
        found: dict[str, str] = {}
        for name in os.listdir(self.directory):
            if not name.endswith(self.suffix) or name.startswith(".") or len(name) == n:
                continue
            stem = name[:-n]
            task_id = decode_stem(stem)
            if task_id is None and is_hashed(stem):
                try:
                    with open(self.directory / name, "rb") as f:
                        head = f.read(4096)
                except FileNotFoundError:
                    continue
                parsed = hashed_id(head)
                if parsed is not None and file_stem(parsed[0]) == stem:
                    found[parsed[0]] = name
                    continue
            if task_id is None:
                # A name of the first scheme (an id such as "50%" or "a."): its id is the name.
                task_id = stem
                canonical = f"{file_stem(task_id)}{self.suffix}"
                if canonical != name and not os.path.exists(self.directory / canonical):
                    data = (self.directory / name).read_bytes()
                    self._write_task(task_id, data)
                    os.unlink(self.directory / name)
                    self.logger.info("Renamed the task file %r to %r", name, canonical)
                    name = canonical
            found[task_id] = name
        return found

    def _read(self, task_id: str) -> bytes | None:
        stem = file_stem(task_id)
        try:
            data = (self.directory / f"{stem}{self.suffix}").read_bytes()
        except FileNotFoundError:
            return None
        if is_hashed(stem):
            parsed = hashed_id(data)
            if parsed is None or parsed[0] != task_id:
                return None
            return parsed[1]
        return data

    def _record_run_time(self, data: bytes) -> int | None:
        """The run time written in a task file, for rebuilding the journal without one."""
        try:
            serializer, protection = self._codec()
            value = _run_time_of(serializer.loads(protection.open(data)))
        except Exception:
            return 0  # unreadable: make it due so that it is tried, and reported, at once
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _rebuild(self) -> None:
        """Write a journal from the task files (exclusive lock held); every task gets a new
        version (a writer that read an old one conflicts)."""
        items: list[list[Any]] = []
        for task_id in sorted(self._task_files()):
            data = self._read(task_id)
            if data is not None:
                items.append(["S", task_id, self._record_run_time(data), new_store_version()])
        body = b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in items)
        self._write_atomically(
            self._index_path,
            journal_header("asyncz-file-index", INDEX_VERSION) + body,
            self.file_mode,
        )
        self._reset()
        self._sync()

    def _reconcile(self) -> None:
        """Repair what a crash between writing a task file and its journal line left behind,
        and give a version to tasks of a journal of the first format."""
        on_disk = self._task_files()
        items: list[list[Any]] = [["D", i] for i in self._entries if i not in on_disk]
        for task_id in sorted(on_disk.keys() - self._entries.keys()):
            data = self._read(task_id)
            if data is not None:
                items.append(["S", task_id, self._record_run_time(data), new_store_version()])
        items += [
            ["V", i, new_store_version()]
            for i in self._entries
            if i in on_disk and i not in self._versions
        ]
        self._append(items)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        with self._locked(exclusive=True):
            # Nobody writes without the exclusive lock, so every temporary file is a leftover.
            for name in os.listdir(self.directory):
                if name.startswith(".tmp-"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.directory / name)
            self._reconcile()

    def shutdown(self) -> None:
        with self._lock:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
            self._reset()
            self._reset_runs()
            self._held.clear()
            if self.cleanup_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    # -- the Store protocol ----------------------------------------------------------------

    def _versioned(self, tasks: list[Task], versions: Mapping[str, int]) -> list[Task]:
        for task in tasks:
            object.__setattr__(task, "store_version", versions.get(task.id))
        return tasks

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add several tasks: all of them, or (``ConflictIdError``) none."""
        for task in tasks:
            check_task_id(task.id)
        encoded = [self.encode(task) for task in tasks]
        versions: list[int] = []
        with self._locked(exclusive=True):
            seen: set[str] = set()
            for task in tasks:
                # The file too: one left by a crash, or (on a file system that ignores case)
                # another id's.
                if task.id in self._entries or task.id in seen or self._path(task.id).exists():
                    raise ConflictIdError(task.id)
                seen.add(task.id)
            items: list[list[Any]] = []
            for task, (data, *_) in zip(tasks, encoded, strict=True):
                version = new_store_version()
                versions.append(version)
                self._write_task(task.id, data, sync_dir=False)
                items.append(["S", task.id, _us(task.next_run_time), version])
            if items:
                self._fsync_directory()
            self._append(items)
        for task, version, done in zip(tasks, versions, encoded, strict=True):
            object.__setattr__(task, "store_version", version)
            self.stored(task, done)

    def update_task(self, task: Task, *, keep_schedule: bool = False) -> None:
        """Replace a stored task; ``TaskLookupError`` if missing.

        Conditional when ``task.store_version`` is set: ``TaskConflictError`` if the stored
        version differs. ``keep_schedule``: the stored run time and lease stay as they are;
        otherwise the task's ``next_run_time`` is written and the lease cleared.
        """
        check_task_id(task.id)
        encoded = self.encode(task)
        expected = task.store_version
        with self._locked(exclusive=True):
            if task.id not in self._entries:
                raise TaskLookupError(task.id, self.alias)
            stored = self._versions.get(task.id)
            if expected is not None and stored != expected:
                raise TaskConflictError(task.id, self.alias, expected=expected, found=stored)
            version = new_store_version() if stored is None else stored + 1
            self._write_task(task.id, encoded[0])
            if keep_schedule:
                self._append([["V", task.id, version]])
            else:
                self._append([["S", task.id, _us(task.next_run_time), version]])
        object.__setattr__(task, "store_version", version)
        self.stored(task, encoded)

    def delete_task(self, task_id: str) -> None:
        check_task_id(task_id)
        self.forget([task_id])
        with self._locked(exclusive=True):
            if task_id not in self._entries:
                raise TaskLookupError(task_id, self.alias)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(task_id))
            self._append([["D", task_id]])

    def remove_all_tasks(self) -> None:
        self.forget()
        with self._locked(exclusive=True):
            for name in self._task_files().values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / name)
            self._append([["C"]])
            self._compact()

    def lookup_task(self, task_id: str) -> Task | None:
        if not isinstance(task_id, str) or task_id_problem(task_id) is not None:
            return None  # no task can have it
        with self._locked(exclusive=False):
            data = self._read(task_id)
            # The journal's run time wins; a file it does not know yet keeps its own.
            next_us: int | bool | None = self._entries.get(task_id, False)
            version = self._versions.get(task_id)
        if data is None:
            return None
        tasks = self.restore_all([(task_id, data, next_us)])
        if not tasks:
            return None
        object.__setattr__(tasks[0], "store_version", version)
        return tasks[0]

    def _load(self, ids: list[str]) -> list[tuple[str, bytes, int | bool | None]]:
        rows: list[tuple[str, bytes, int | bool | None]] = []
        for task_id in ids:
            data = self._read(task_id)
            if data is not None:
                rows.append((task_id, data, self._entries.get(task_id)))
        return rows

    def get_all_tasks(self) -> list[Task]:
        with self._locked(exclusive=False):
            rows = self._load(list(self._entries))
            versions = dict(self._versions)
        return sorted(self._versioned(self.restore_all(rows), versions), key=order_key)

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        with self._locked(exclusive=False):
            rows = self._load(sorted(self._entries))
        yield from rows

    def get_due_tasks(self, now: datetime) -> list[Task]:
        now_us = utc_timestamp_us(now)
        with self._locked(exclusive=False):
            due = sorted((n, i) for i, n in self._entries.items() if n is not None and n <= now_us)
            rows = self._load([i for _, i in due])
            versions = {i: self._versions[i] for _, i in due if i in self._versions}
        return self._versioned(self.restore_all(rows), versions)

    def _top(self) -> tuple[int, str] | None:
        """The earliest unleased run time in the heap, dropping stale entries."""
        heap = self._heap
        while heap:
            next_us, task_id = heap[0]
            if self._entries.get(task_id, -1) == next_us and task_id not in self._leased:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _first_not_in(self, quarantined: frozenset[str]) -> int | None:
        """The earliest unleased run time of a task not in ``quarantined``, the heap left as it
        is (its quarantined entries stay valid): a best-first walk down from the top, which
        meets only the entries earlier than the answer."""
        top = self._top()
        if top is None or top[1] not in quarantined:
            return top[0] if top else None
        heap, entries, leased = self._heap, self._entries, self._leased
        size = len(heap)
        frontier: list[tuple[tuple[int, str], int]] = [(heap[0], 0)]
        while frontier:
            (next_us, task_id), i = heapq.heappop(frontier)
            if (
                task_id not in quarantined
                and task_id not in leased
                and entries.get(task_id, -1) == next_us
            ):
                return next_us
            for child in (2 * i + 1, 2 * i + 2):
                if child < size:
                    heapq.heappush(frontier, (heap[child], child))
        return None

    def get_next_run_time(self) -> datetime | None:
        with self._locked(exclusive=False):
            if self._quarantined:
                # Quarantined tasks do not count: neither their run time nor their lease.
                quarantined = self._quarantined_ids()
                first = self._first_not_in(quarantined)
                candidates = [first] if first is not None else []
                expiries = [h[1] for i, h in self._leased.items() if i not in quarantined]
                if expiries:
                    candidates.append(min(expiries))
            else:
                top = self._top()
                candidates = [top[0]] if top else []
                if self._leased:
                    candidates.append(min(held[1] for held in self._leased.values()))
        return from_timestamp_us(min(candidates)) if candidates else None

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        acquired: list[Task] = []
        first = True
        while len(acquired) < limit:
            # Records that do not restore stay leased and do not count towards the limit:
            # lease more (one round in the common case, where every record restores).
            wanted = limit - len(acquired)
            leased, tasks = self._acquire(now, owner, wanted, lease, first)
            acquired += tasks
            if leased < wanted:
                break
            first = False
        return acquired

    def _acquire(
        self, now: datetime, owner: str, limit: int, lease: float, expire: bool
    ) -> tuple[int, list[Task]]:
        """Lease up to ``limit`` due tasks; how many were leased, and those that restore.

        ``expire``: first hand out again the tasks whose lease ran out (only in the first
        round: a task just leased for no time at all must not be leased again and again).
        """
        now_us = utc_timestamp_us(now)
        until = now_us + int(lease * 1_000_000)
        token = uuid.uuid4().hex
        rows: list[tuple[str, bytes, int | bool | None]] = []
        versions: dict[str, int] = {}
        with self._locked(exclusive=True):
            expired = [i for i, h in self._leased.items() if h[1] <= now_us] if expire else []
            for task_id in expired:  # the holder is gone or too slow: hand it out again
                del self._leased[task_id]
                next_us = self._entries.get(task_id)
                if next_us is not None:
                    heapq.heappush(self._heap, (next_us, task_id))
            items: list[list[Any]] = []
            while len(rows) < limit:
                top = self._top()
                if top is None or top[0] > now_us:
                    break
                heapq.heappop(self._heap)
                task_id = top[1]
                data = self._read(task_id)
                if data is None:  # its file was removed in a crash before its journal line
                    items.append(["D", task_id])
                    continue
                # Leased even if it turns out not to restore: it is then retried after the
                # lease, instead of blocking the tasks behind it.
                self._leased[task_id] = (owner, until, token)
                items.append(["L", task_id, owner, until, token])
                rows.append((task_id, data, top[0]))
                if task_id in self._versions:
                    versions[task_id] = self._versions[task_id]
            self._append(items)
            for task_id, _, _ in rows:
                self._held[(owner, task_id)] = token
        return len(rows), self._versioned(self.restore_all(rows), versions)

    def _holds(self, owner: str, task_id: str) -> bool:
        """Whether ``owner``'s lease on ``task_id``, as acquired through this instance, still
        stands; the remembered token is forgotten either way (lock held)."""
        token = self._held.pop((owner, task_id), None)
        held = self._leased.get(task_id)
        return (
            token is not None
            and held is not None
            and held[0] == owner
            and held[2] == token
            and task_id in self._entries
        )

    def _release(self, task_id: str, next_time: datetime | None, deletions: list[str]) -> list[Any]:
        """The journal line releasing a held task (lock held); a task to delete is added to
        ``deletions`` (its file is removed before the line is written)."""
        if next_time is None:
            self.forget([task_id])
            deletions.append(task_id)
            return ["D", task_id]
        stored = self._versions.get(task_id)
        version = new_store_version() if stored is None else stored + 1
        return ["S", task_id, utc_timestamp_us(next_time), version]

    def _delete_files(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(task_id))

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        released: list[str] = []
        with self._locked(exclusive=True):
            items: list[list[Any]] = []
            deletions: list[str] = []
            for task_id, next_time in next_run_times.items():
                if not self._holds(owner, task_id):
                    continue  # the lease was lost: the task was changed or re-leased meanwhile
                released.append(task_id)
                items.append(self._release(task_id, next_time, deletions))
            self._delete_files(deletions)
            self._append(items)
        return released

    def renew_leases(self, owner: str, lease: float) -> int:
        """Push the end of ``owner``'s leases still held through this instance to now (the
        store's clock) + ``lease`` seconds; how many were renewed. Safe from any thread."""
        with self._locked(exclusive=True):
            until = int(self._clock() * 1_000_000) + int(lease * 1_000_000)
            items: list[list[Any]] = []
            for (holder, task_id), token in list(self._held.items()):
                if holder != owner:
                    continue
                held = self._leased.get(task_id)
                if held is None or held[0] != owner or held[2] != token:
                    del self._held[(holder, task_id)]  # lost: nothing to renew, ever
                    continue
                if held[1] < until:
                    items.append(["L", task_id, owner, until, token])
            self._append(items)
        return len(items)

    def _clock(self) -> float:
        """The store's clock: seconds since the epoch (every process is on this host)."""
        return time.time()

    def _clear_leases_of(self, owners: set[str]) -> None:
        """Clear every lease held by one of ``owners`` (exclusive lock held): due at once."""
        self._append([["U", i] for i, held in self._leased.items() if held[0] in owners])

    # -- scheduler instances and run records (in file_runs) ---------------------------------

    def register_instance(self, identity: str, info: Mapping[str, Any]) -> None:
        """Register (or refresh) the scheduler ``identity``, heartbeat now."""
        file_runs.register_instance(self, identity, info)

    def heartbeat(self, identity: str, info: Mapping[str, Any], dead_after: float) -> list[str]:
        """Refresh ``identity``'s heartbeat; declare dead (once) the instances silent for more
        than ``dead_after`` seconds, end their leases and resolve their started runs."""
        return file_runs.heartbeat(self, identity, info, dead_after)

    def unregister_instance(self, identity: str) -> None:
        """Remove ``identity`` and clear its leases (a clean shutdown)."""
        file_runs.unregister_instance(self, identity)

    def get_instances(self) -> list[tuple[str, dict[str, Any], float]]:
        """``(identity, info, seconds since its heartbeat)`` of every instance, by identity."""
        return file_runs.get_instances(self)

    def fire_tasks(self, owner: str, fires: Sequence[Fire]) -> dict[str, FireResult]:
        """Release the tasks ``owner`` still holds and record their runs, at once."""
        return file_runs.fire_tasks(self, owner, fires)

    def finish_runs(self, outcomes: Sequence[RunOutcome]) -> None:
        """Record how runs ended (only records still ``started`` by the outcome's instance)."""
        file_runs.finish_runs(self, outcomes)

    def get_runs(self, task_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest run records (by scheduled time, ties by task id), of one task or all."""
        return file_runs.get_runs(self, task_id, limit)

    def take_reruns(self, owner: str, limit: int) -> list[tuple[Task, datetime]]:
        """Hand ``owner`` up to ``limit`` runs of dead schedulers waiting for a rerun, once."""
        return file_runs.take_reruns(self, owner, limit)

    def __repr__(self) -> str:
        return f"<FileStore (directory={self.directory})>"  # Asyncz's repr


def _header() -> bytes:
    return journal_header("asyncz-file-index", INDEX_VERSION)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _us(value: datetime | None) -> int | None:
    return None if value is None else utc_timestamp_us(value)


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("file", FileStore)


def _run_time_of(loaded: Any) -> Any:
    """The run time (µs) in a decoded task file: a record, or Asyncz's forms (a TaskState, or
    an envelope around one or around a record), which an Asyncz directory holds."""
    if isinstance(loaded, TaskStateEnvelope):
        loaded = loaded.payload
    if isinstance(loaded, TaskState):
        return to_timestamp_us(loaded.next_run_time) if loaded.next_run_time else None
    return record_run_time(loaded)
