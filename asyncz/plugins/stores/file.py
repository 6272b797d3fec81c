"""The ``file`` store: one file per task in a directory, safe for several processes on one host.

Layout of ``directory``:

* ``<id><suffix>`` — one encoded record per task, always written whole: to a temporary file,
  flushed to disk, then renamed over the old one, so a reader (or a process that crashed while
  writing) never sees half a task.
* ``.asyncz-index`` — an append-only journal of one JSON line per change (``S`` set run time,
  ``D`` delete, ``L`` lease, ``C`` clear). Each process replays only the lines it has not seen
  yet, so a wake-up costs a ``stat`` and a short read instead of reading every task file. The
  journal is rewritten (compacted) once it holds mostly dead lines. It is a cache: a missing or
  damaged one is rebuilt from the task files, and at start the task files are reconciled with it.
* ``.asyncz-lock`` — ``flock``-ed by every operation (shared to read, exclusive to change), which
  is what makes leases safe between processes: a due task is leased by appending an ``L`` line
  under the exclusive lock, after replaying everyone else's.
* ``.tmp-*`` — temporary files of writes in progress; leftovers of a crash are removed at start.

The run time in the journal wins over the one in the task file: releasing a task after a run
appends one line instead of rewriting the task. Ids must be usable as file names (no leading
dot, no ``/ \\ : * ? " < > |``, no control characters, at most 200 bytes).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import AsynczException, ConflictIdError, TaskLookupError
from asyncz.core.hookspecs import hookimpl
from asyncz.core.records import from_timestamp_us, record_run_time
from asyncz.core.task import Task
from asyncz.plugins.stores.persistent import PersistentStore, order_key

try:
    import fcntl
except ImportError:  # Windows: leases are then only safe within one process
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileStore", "InvalidTaskIdError"]

INDEX_NAME = ".asyncz-index"
LOCK_NAME = ".asyncz-lock"
INDEX_VERSION = 1
_HEADER = json.dumps({"asyncz-file-index": INDEX_VERSION}).encode() + b"\n"
_FORBIDDEN = set('/\\:*?"<>|\0')
_COMPACT_MIN = 1000


class InvalidTaskIdError(TaskLookupError, ValueError, RuntimeError):
    """A task id the file store cannot use as a file name.

    A ``RuntimeError``, as Asyncz raises; a ``ValueError`` (a bad argument); and a
    :class:`TaskLookupError`, since no task of this store can have that id.
    """

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        AsynczException.__init__(self, message)


def check_task_id(task_id: str) -> None:
    """Refuse ids that are not safe as a file name on every platform."""
    bad = (
        not task_id
        or task_id.startswith(".")
        or any(c in _FORBIDDEN or ord(c) < 32 for c in task_id)
        or len(task_id.encode("utf-8")) > 200
    )
    if bad:
        raise InvalidTaskIdError(
            task_id,
            f"the file store cannot keep a task with the id {task_id!r}: ids become file "
            "names, so they may not start with '.', contain / \\ : * ? \" < > | or control "
            "characters, or be longer than 200 bytes; use e.g. letters, digits, '-' and '_'",
        )


class FileStore(PersistentStore):
    """Keeps each task in its own file in ``directory``.

    :param directory: where the files live (created if missing)
    :param suffix: file name suffix of task files
    :param mode: permissions of the directory when it is created (task files get the same
        without execute bits)
    :param cleanup_directory: delete the directory and everything in it at shutdown
    :param pickle_protocol: the pickle protocol, for the ``pickle`` serializer
    :param serializer, signing_key, encryption_key, accept_unprotected, poll_interval,
        cache_size: see
        :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        suffix: str = ".task",
        mode: int = 0o700,
        cleanup_directory: bool = False,
        *,
        pickle_protocol: int | None = None,
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
        self.directory = Path(directory)
        self.suffix = suffix
        self.mode = mode
        self.file_mode = (mode & 0o666) | 0o600
        self.cleanup_directory = cleanup_directory
        self._index_path = self.directory / INDEX_NAME
        self._lock = threading.RLock()
        self._lock_fd = -1
        self._reset()

    # -- in-memory view of the journal (call with self._lock held) ---------------------------

    def _reset(self) -> None:
        self._index_key: tuple[int, int] | None = None
        self._offset = 0
        self._lines = 0
        self._entries: dict[str, int | None] = {}
        self._leased: dict[str, tuple[str, int]] = {}
        self._heap: list[tuple[int, str]] = []

    def _apply(self, item: list[Any]) -> None:
        op = item[0]
        if op == "S":
            task_id, next_us = item[1], item[2]
            self._entries[task_id] = next_us
            self._leased.pop(task_id, None)
            if next_us is not None:
                heapq.heappush(self._heap, (next_us, task_id))
        elif op == "D":
            self._entries.pop(item[1], None)
            self._leased.pop(item[1], None)
        elif op == "L":
            self._leased[item[1]] = (item[2], item[3])
        elif op == "C":
            self._entries.clear()
            self._leased.clear()
            self._heap.clear()
        if len(self._heap) > 2 * len(self._entries) + _COMPACT_MIN:
            self._heap = [(n, i) for i, n in self._entries.items() if n is not None]
            heapq.heapify(self._heap)

    def _sync(self) -> bool:
        """Replay journal lines written since the last call; False if there is no journal."""
        try:
            fd = os.open(self._index_path, os.O_RDONLY)
        except FileNotFoundError:
            self._reset()
            return False
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            if key != self._index_key or st.st_size < self._offset:
                self._reset()  # compacted (a new file) by some process: start over
                self._index_key = key
            if st.st_size == self._offset:
                return True
            os.lseek(fd, self._offset, os.SEEK_SET)
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
        for line in data[:end].splitlines():
            self._lines += 1
            try:
                item = json.loads(line)
            except ValueError:
                self.logger.warning("Skipping a damaged line of %s", self._index_path)
                continue
            if isinstance(item, list) and item:
                self._apply(item)
        self._offset += end
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
                raise
            finally:
                if fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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
        fd = os.open(self._index_path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer died mid-line: cut the fragment so our lines start on a line.
                tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
                os.ftruncate(fd, size - len(tail) + tail.rfind(b"\n") + 1)
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sync()
        if self._lines > 2 * (len(self._entries) + len(self._leased)) + _COMPACT_MIN:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal as one line per live task and lease (exclusive lock held)."""
        items: list[list[Any]] = [["S", i, n] for i, n in self._entries.items()]
        items += [["L", i, owner, until] for i, (owner, until) in self._leased.items()]
        body = b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in items)
        self._write_atomically(self._index_path, _HEADER + body, self.file_mode)
        self._sync()

    def _write_atomically(self, path: Path, data: bytes, mode: int) -> None:
        # Short and unique (a long id plus the suffix must not exceed the file name limit).
        tmp = self.directory / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:16]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        # Makes the rename itself durable; not possible (nor needed) on Windows.
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _path(self, task_id: str) -> Path:
        return self.directory / f"{task_id}{self.suffix}"

    def _task_ids_on_disk(self) -> set[str]:
        n = len(self.suffix)
        return {
            name[:-n]
            for name in os.listdir(self.directory)
            if name.endswith(self.suffix) and not name.startswith(".")
        }

    def _read(self, task_id: str) -> bytes | None:
        try:
            return self._path(task_id).read_bytes()
        except FileNotFoundError:
            return None

    def _record_run_time(self, data: bytes) -> int | None:
        """The run time written in a task file, for rebuilding the journal without one."""
        try:
            serializer, protection = self._codec()
            value = record_run_time(serializer.loads(protection.open(data)))
        except Exception:
            return 0  # unreadable: make it due so that it is tried, and reported, at once
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _rebuild(self) -> None:
        """Write a journal from the task files (exclusive lock held)."""
        items: list[list[Any]] = []
        for task_id in sorted(self._task_ids_on_disk()):
            data = self._read(task_id)
            if data is not None:
                items.append(["S", task_id, self._record_run_time(data)])
        body = b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in items)
        self._write_atomically(self._index_path, _HEADER + body, self.file_mode)
        self._reset()
        self._sync()

    def _reconcile(self) -> None:
        """Repair what a crash between writing a task file and its journal line left behind."""
        on_disk = self._task_ids_on_disk()
        items: list[list[Any]] = [["D", i] for i in self._entries if i not in on_disk]
        for task_id in sorted(on_disk - self._entries.keys()):
            data = self._read(task_id)
            if data is not None:
                items.append(["S", task_id, self._record_run_time(data)])
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
            if self.cleanup_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    # -- the Store protocol ----------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        check_task_id(task.id)
        encoded = self.encode(task)
        with self._locked(exclusive=True):
            if task.id in self._entries or self._path(task.id).exists():
                raise ConflictIdError(task.id)
            self._write_atomically(self._path(task.id), encoded[0], self.file_mode)
            self._append([["S", task.id, _us(task.next_run_time)]])
        self.stored(task, encoded)

    def update_task(self, task: Task) -> None:
        check_task_id(task.id)
        encoded = self.encode(task)
        with self._locked(exclusive=True):
            if not self._path(task.id).exists():
                raise TaskLookupError(task.id, self.alias)
            self._write_atomically(self._path(task.id), encoded[0], self.file_mode)
            self._append([["S", task.id, _us(task.next_run_time)]])
        self.stored(task, encoded)

    def delete_task(self, task_id: str) -> None:
        check_task_id(task_id)  # "../x" never names a file of this store: refused, as in Asyncz
        self.forget([task_id])
        with self._locked(exclusive=True):
            try:
                os.unlink(self._path(task_id))
            except FileNotFoundError:
                raise TaskLookupError(task_id, self.alias) from None
            self._append([["D", task_id]])

    def remove_all_tasks(self) -> None:
        self.forget()
        with self._locked(exclusive=True):
            for task_id in self._task_ids_on_disk():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(task_id))
            self._append([["C"]])
            self._compact()

    def lookup_task(self, task_id: str) -> Task | None:
        check_task_id(task_id)
        with self._locked(exclusive=False):
            data = self._read(task_id)
            # The journal's run time wins; a file it does not know yet keeps its own.
            next_us: int | bool | None = self._entries.get(task_id, False)
        if data is None:
            return None
        tasks = self.restore_all([(task_id, data, next_us)])
        return tasks[0] if tasks else None

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
        return sorted(self.restore_all(rows), key=order_key)

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        with self._locked(exclusive=False):
            rows = self._load(sorted(self._entries))
        yield from rows

    def get_due_tasks(self, now: datetime) -> list[Task]:
        now_us = utc_timestamp_us(now)
        with self._locked(exclusive=False):
            due = sorted((n, i) for i, n in self._entries.items() if n is not None and n <= now_us)
            rows = self._load([i for _, i in due])
        return self.restore_all(rows)

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
                expiries = [u for i, (_, u) in self._leased.items() if i not in quarantined]
                if expiries:
                    candidates.append(min(expiries))
            else:
                top = self._top()
                candidates = [top[0]] if top else []
                if self._leased:
                    candidates.append(min(until for _, until in self._leased.values()))
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
        rows: list[tuple[str, bytes, int | bool | None]] = []
        with self._locked(exclusive=True):
            expired = [i for i, (_, u) in self._leased.items() if u <= now_us] if expire else []
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
                self._leased[task_id] = (owner, until)
                items.append(["L", task_id, owner, until])
                rows.append((task_id, data, top[0]))
            self._append(items)
        return len(rows), self.restore_all(rows)

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        released: list[str] = []
        with self._locked(exclusive=True):
            items: list[list[Any]] = []
            for task_id, next_time in next_run_times.items():
                held = self._leased.get(task_id)
                if held is None or held[0] != owner or task_id not in self._entries:
                    continue  # the lease was lost: the task was changed meanwhile
                released.append(task_id)
                if next_time is None:
                    self.forget([task_id])
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(task_id))
                    items.append(["D", task_id])
                else:
                    items.append(["S", task_id, utc_timestamp_us(next_time)])
            self._append(items)
        return released

    def __repr__(self) -> str:
        return f"<FileStore (directory={self.directory})>"  # Asyncz's repr


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _us(value: datetime | None) -> int | None:
    return None if value is None else utc_timestamp_us(value)


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("file", FileStore)
