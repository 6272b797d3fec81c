"""The ``memory`` store: tasks in this process only, indexed by a binary heap.

Add, update and remove cost O(log n); the next run time is read off the top of the heap. Updates
and removals mark the old heap entry dead instead of searching for it, and the heap is rebuilt
once dead entries outnumber the live ones, so memory stays proportional to the task count.

Tasks survive a shutdown and restart of the scheduler (unlike in Asyncz); they go with the
process.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import ConflictIdError, TaskConflictError, TaskLookupError
from asyncz.core.hookspecs import hookimpl
from asyncz.core.protocols import BaseStore
from asyncz.core.task import Task

__all__ = ["MemoryStore"]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# Heap entries are lists so that they can be marked dead in place: [run time in µs, id, alive].
_US, _ID, _ALIVE = 0, 1, 2
_COMPACT_MIN = 1024


class MemoryStore(BaseStore):
    """Keeps tasks in memory. Takes no options."""

    blocking: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"the memory store takes no options, got {', '.join(sorted(options))}")
        super().__init__()
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._heap: list[list[Any]] = []
        self._entries: dict[str, list[Any]] = {}
        self._dead = 0
        # id -> (owner, lease expiry in µs, run time in µs when leased, that run time); leased
        # tasks are out of the heap until released.
        self._leased: dict[str, tuple[str, int, int, datetime | None]] = {}

    # -- index maintenance (call with the lock held) ----------------------------------------

    def _index(self, task: Task) -> None:
        if task.next_run_time is None:
            return
        entry = [utc_timestamp_us(task.next_run_time), task.id, True]
        self._entries[task.id] = entry
        heapq.heappush(self._heap, entry)

    def _unindex(self, task_id: str) -> None:
        entry = self._entries.pop(task_id, None)
        if entry is not None:
            entry[_ALIVE] = False
            self._dead += 1
            if self._dead > _COMPACT_MIN and self._dead * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[_ALIVE]]
                heapq.heapify(self._heap)
                self._dead = 0

    def _top(self) -> list[Any] | None:
        heap = self._heap
        while heap and not heap[0][_ALIVE]:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0] if heap else None

    def _reclaim_expired_leases(self, now_us: int) -> None:
        expired = [task_id for task_id, held in self._leased.items() if held[1] <= now_us]
        for task_id in expired:
            del self._leased[task_id]
            task = self._tasks.get(task_id)
            if task is not None:
                self._index(task)

    # -- the Store protocol -----------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        with self._lock:
            if task.id in self._tasks:
                raise ConflictIdError(task.id)
            self.fix_task(task)
            self._tasks[task.id] = task
            self._index(task)

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add several tasks: all of them, or (``ConflictIdError``) none."""
        with self._lock:
            known = self._tasks
            ids = [task.id for task in tasks]
            if len(set(ids)) != len(ids) or not known.keys().isdisjoint(ids):
                seen: set[str] = set()
                for task_id in ids:
                    if task_id in known or task_id in seen:
                        raise ConflictIdError(task_id)
                    seen.add(task_id)
            fix = self.fix_task
            entries, heap = self._entries, self._heap
            # Into an empty heap (the tasks added before start): one O(n) build, not n pushes.
            build = not heap
            for task in tasks:
                fix(task)
                task_id = task.id
                known[task_id] = task
                run_time = task.next_run_time
                if run_time is None:
                    continue
                entry = [(run_time - _EPOCH) // _ONE_US, task_id, True]
                entries[task_id] = entry
                if build:
                    heap.append(entry)
                else:
                    heapq.heappush(heap, entry)
            if build:
                heapq.heapify(heap)

    def update_task(self, task: Task, *, keep_schedule: bool = False) -> None:
        """Replace the stored task. With ``keep_schedule`` the change does not touch when it
        runs: the stored run time and any lease on it stay (a scheduler running it releases
        it as usual); otherwise the lease ends, so its holder does not overwrite the change.

        The tasks here are the objects the scheduler holds, so two writers cannot have read
        different versions of one; a task object made elsewhere with a ``store_version``
        other than the stored one is refused (:class:`TaskConflictError`)."""
        with self._lock:
            stored = self._tasks.get(task.id)
            if stored is None:
                raise TaskLookupError(task.id, self.alias)
            if (
                stored is not task
                and task.store_version is not None
                and task.store_version != stored.store_version
            ):
                raise TaskConflictError(
                    task.id, self.alias, task.store_version, stored.store_version
                )
            version = (stored.store_version or 0) + 1
            if keep_schedule:
                held = self._leased.get(task.id)
                if stored is not task:
                    object.__setattr__(task, "next_run_time", stored.next_run_time)
                    if held is not None:  # the release compares run times by identity first
                        self._leased[task.id] = (*held[:3], task.next_run_time)
                self.fix_task(task)
                self._tasks[task.id] = task
                entry = self._entries.get(task.id)
                if entry is None and held is None:
                    self._index(task)
            else:
                self._unindex(task.id)
                self._leased.pop(task.id, None)  # whoever held it must not overwrite this
                self.fix_task(task)
                self._tasks[task.id] = task
                self._index(task)
            object.__setattr__(task, "store_version", version)

    def delete_task(self, task_id: str) -> None:
        with self._lock:
            if self._tasks.pop(task_id, None) is None:
                raise TaskLookupError(task_id, self.alias)
            self._unindex(task_id)
            self._leased.pop(task_id, None)

    def remove_all_tasks(self) -> None:
        with self._lock:
            self._tasks.clear()
            self._heap.clear()
            self._entries.clear()
            self._leased.clear()
            self._dead = 0

    def lookup_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def get_all_tasks(self) -> list[Task]:
        with self._lock:
            tasks = list(self._tasks.values())
        return sorted(tasks, key=_order)

    def get_due_tasks(self, now: datetime) -> list[Task]:
        now_us = utc_timestamp_us(now)  # not `<=`: datetimes of one zone ignore fold
        with self._lock:
            due = [
                t
                for t in self._tasks.values()
                if t.next_run_time is not None and utc_timestamp_us(t.next_run_time) <= now_us
            ]
        return sorted(due, key=_order)

    def get_next_run_time(self) -> datetime | None:
        with self._lock:
            top = self._top()
            next_time = self._tasks[top[_ID]].next_run_time if top is not None else None
            if self._leased:
                # A lease nobody releases must come back when it expires.
                expiry = _EPOCH + timedelta(
                    microseconds=min(held[1] for held in self._leased.values())
                )
                if next_time is None or expiry < next_time:
                    next_time = expiry
            return next_time

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        now_us = utc_timestamp_us(now)
        until = now_us + int(lease * 1_000_000)
        acquired: list[Task] = []
        with self._lock:
            if self._leased:
                self._reclaim_expired_leases(now_us)
            heap = self._heap
            while len(acquired) < limit and heap:
                entry = heap[0]
                if not entry[_ALIVE]:
                    heapq.heappop(heap)
                    self._dead -= 1
                    continue
                if entry[_US] > now_us:
                    break
                heapq.heappop(heap)
                task_id = entry[_ID]
                del self._entries[task_id]
                # The run time it was handed out with: see release_tasks.
                task = self._tasks[task_id]
                self._leased[task_id] = (owner, until, entry[_US], task.next_run_time)
                acquired.append(task)
        return acquired

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        released: list[str] = []
        with self._lock:
            for task_id, next_time in next_run_times.items():
                held = self._leased.get(task_id)
                if held is None or held[0] != owner:
                    continue  # the lease was lost: the task changed meanwhile
                del self._leased[task_id]
                task = self._tasks[task_id]
                current = task.next_run_time
                # The same object as when leased (the usual case) needs no conversion.
                if current is not held[3] and (
                    current is None or utc_timestamp_us(current) != held[2]
                ):
                    # The object was changed in place (a pause or a reschedule on its way to
                    # update_task): that change wins over this release.
                    self._index(task)
                    continue
                released.append(task_id)
                if next_time is None:
                    self._tasks.pop(task_id, None)
                    continue
                # Already aware and validated by the trigger: skip the field converters.
                object.__setattr__(task, "next_run_time", next_time)
                self._index(task)
        return released

    def __repr__(self) -> str:
        return "<MemoryStore>"  # Asyncz's repr; len(store.get_all_tasks()) counts the tasks


def _order(task: Task) -> tuple[bool, int, str]:
    """Paused last, then by next run time, ties by id."""
    next_time = task.next_run_time
    return (next_time is None, utc_timestamp_us(next_time) if next_time else 0, task.id)


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("memory", MemoryStore)
