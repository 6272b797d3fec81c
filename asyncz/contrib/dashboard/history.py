"""Run history: one record per run of a task, built from the scheduler's events.

Here: :class:`RunHistoryRecord`; :class:`MemoryRunHistoryStorage`, which follows each run from
its submission (``TASK_SUBMITTED``, or ``TASK_MAX_INSTANCES`` when it was turned away) through
``TASK_STARTED`` to ``TASK_EXECUTED`` / ``TASK_ERROR`` / ``TASK_MISSED``, and writes a log entry
for each outcome; :func:`attach_run_history`, the scheduler listener that feeds it; and
:class:`StoreRunHistory`, the same records read from the run records a persistent store keeps
(so runs by every scheduler sharing the store show, and survive restarts). Not here: the pages.

How a submission meets its run. A submission event carries the task, the scheduler identity and
the run times, but no run id; each run's events carry the run id the core made and the run's
scheduled time. So a submission opens one record per run time, under an id of its own, and the
first event of that run (same scheduler, task and scheduled time) takes the record over and
gives it the core's run id — the id the store's run records and the run's logs use too. A
submission that no run follows (turned away, or recorded by hand) keeps the id it was given.
Events that come before their submission (an executor that reports early) open the record, and
the submission fills in what only it knows: the source and the coalesced count.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import attrs

from asyncz.contrib.dashboard.events import SchedulerRef, add_listener_once, remove_listener_once
from asyncz.contrib.dashboard.logs.storage import LogEntry, LogStorage
from asyncz.contrib.dashboard.records import newest_matching, positive
from asyncz.core import events
from asyncz.core.execution import new_run_id

__all__ = [
    "HISTORY_EVENTS",
    "RUN_SOURCES",
    "RUN_STATUSES",
    "MemoryRunHistoryStorage",
    "RunHistoryListener",
    "RunHistoryRecord",
    "StoreRunHistory",
    "attach_run_history",
    "detach_run_history",
]

UTC = timezone.utc
logger = logging.getLogger("asyncz.dashboard.history")

#: Every status a record can have. ``submitted``: handed to the executor, not started yet;
#: ``skipped``: not run because ``max_instances`` was reached across the schedulers sharing a
#: store; ``max_instances``: turned away by this scheduler's executor for the same reason;
#: ``abandoned``: its scheduler died while it ran (store records only).
RUN_STATUSES: Final = (
    "submitted",
    "running",
    "succeeded",
    "failed",
    "missed",
    "skipped",
    "max_instances",
    "abandoned",
)
FINAL_STATUSES: Final = frozenset(RUN_STATUSES) - {"submitted", "running"}
#: ``rerun``: run again by another scheduler because the one running it died.
RUN_SOURCES: Final = ("scheduled", "manual", "rerun", "unknown")
#: The events the history listens to.
HISTORY_EVENTS: Final = (
    events.TASK_SUBMITTED
    | events.TASK_MAX_INSTANCES
    | events.TASK_STARTED
    | events.TASK_EXECUTED
    | events.TASK_ERROR
    | events.TASK_MISSED
)
_SUBMISSIONS = events.TASK_SUBMITTED | events.TASK_MAX_INSTANCES
_EXECUTIONS = events.TASK_STARTED | events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED
#: The logger name of the entries the history writes.
HISTORY_LOGGER = "asyncz.dashboard.history"
#: How long a task's name, callable and trigger are reused before they are read again.
TASK_META_SECONDS = 30.0


def _label(value: str) -> str:
    return value.replace("_", " ").title()


@attrs.frozen(kw_only=True)
class RunHistoryRecord:
    """One run of a task (or one run time turned away), as plain data.

    :var run_id: the core's run id once the run started; before (or for a run that never
        started) an id of the same form made for the record
    :var task_id: the task
    :var task_name: its name when the run was recorded
    :var callable: its callable reference (``"module:qualname"``), if it has one
    :var trigger: its trigger, described
    :var store: the store alias the task is kept in
    :var executor: the executor alias
    :var source: ``"scheduled"``, ``"manual"``, ``"rerun"`` or ``"unknown"`` (no submission seen)
    :var status: one of :data:`RUN_STATUSES`
    :var scheduled_run_time: the run time it was due
    :var submitted_at: when it was handed to the executor
    :var started_at: when the callable started
    :var finished_at: when it ended (or was found missed / turned away)
    :var duration: seconds from start to end
    :var exception_type: the exception's class name, for a failed run
    :var exception_message: the exception's message
    :var exception: the formatted traceback (text only; no exception object is kept)
    :var coalesced_run_count: how many due run times coalescing folded into this run
    :var scheduler_identity: the scheduler that ran it
    :var attempt: 1, or 2 for the rerun of a run whose scheduler died (store records)
    """

    run_id: str
    task_id: str
    task_name: str | None = None
    callable: str | None = None
    trigger: str | None = None
    store: str | None = None
    executor: str | None = None
    source: str = "unknown"
    status: str = "submitted"
    scheduled_run_time: datetime | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    exception: str | None = None
    coalesced_run_count: int = 0
    scheduler_identity: str | None = None
    attempt: int = 1

    @property
    def finished(self) -> bool:
        """Whether the record will not change any more."""
        return self.status in FINAL_STATUSES

    @property
    def traceback(self) -> str | None:
        """Another name for :attr:`exception`."""
        return self.exception

    @property
    def status_label(self) -> str:
        """``"Succeeded"``, ``"Max Instances"``, ..."""
        return _label(self.status)

    @property
    def source_label(self) -> str:
        """``"Manual"``, ``"Scheduled"``, ..."""
        return _label(self.source)

    @property
    def display_name(self) -> str:
        return self.task_name or self.task_id

    def to_dict(self) -> dict[str, Any]:
        """Plain data (times as ISO 8601 strings), for JSON output."""
        data = attrs.asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


# -- task metadata -----------------------------------------------------------------------------


@attrs.frozen
class _TaskMeta:
    name: str | None = None
    callable: str | None = None
    trigger: str | None = None
    store: str | None = None
    executor: str | None = None


_NO_META = _TaskMeta()


class _MetaCache:
    """Task names, callables and triggers by (scheduler, task id), read at most every
    :data:`TASK_META_SECONDS` (a persistent store would be read on every run otherwise)."""

    def __init__(self, maxlen: int = 1024) -> None:
        self._items: collections.OrderedDict[tuple[int, str], tuple[float, _TaskMeta]] = (
            collections.OrderedDict()
        )
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def get(self, scheduler: Any, task_id: str, store: str | None) -> _TaskMeta:
        key = (id(scheduler), task_id)
        now = time.monotonic()
        with self._lock:
            cached = self._items.get(key)
            if cached is not None and now - cached[0] < TASK_META_SECONDS:
                return cached[1]
        # Never call the scheduler while holding a lock of ours: it may be dispatching an
        # event to us from a thread that holds its own.
        meta = _read_meta(scheduler, task_id, store)
        with self._lock:
            self._items[key] = (now, meta)
            self._items.move_to_end(key)
            while len(self._items) > self._maxlen:
                self._items.popitem(last=False)
        return meta

    def forget(self, task_id: str | None = None) -> None:
        with self._lock:
            if task_id is None:
                self._items.clear()
            else:
                for key in [k for k in self._items if k[1] == task_id]:
                    del self._items[key]


def _read_meta(scheduler: Any, task_id: str, store: str | None) -> _TaskMeta:
    get_info = getattr(scheduler, "get_task_info", None)
    if get_info is None:
        return _NO_META
    try:
        info = get_info(task_id, store) if store else get_info(task_id)
    except Exception:  # a store that cannot be read must not lose the run
        logger.debug("Cannot read task %r for the run history", task_id, exc_info=True)
        return _NO_META
    if info is None:
        return _NO_META
    return _TaskMeta(
        name=getattr(info, "name", None),
        callable=getattr(info, "callable_reference", None) or getattr(info, "callable_name", None),
        trigger=getattr(info, "trigger_description", None) or getattr(info, "trigger", None),
        store=getattr(info, "store_alias", None) or getattr(info, "store", None),
        executor=getattr(info, "executor", None),
    )


# -- the memory storage ------------------------------------------------------------------------


_Key = tuple[str | None, str, Any]


def _time_key(value: datetime | None) -> Any:
    if value is None:
        return None
    return value.timestamp() if value.tzinfo is not None else value.isoformat()


def _identity(event: Any, scheduler: Any) -> str | None:
    identity = getattr(event, "scheduler_identity", None) or getattr(scheduler, "identity", None)
    return str(identity) if identity is not None else None


def _check_status(status: str | None) -> str | None:
    if status is None or status == "":
        return None
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    return status


def _matches(record: RunHistoryRecord, needle: str) -> bool:
    for text in (
        record.run_id,
        record.task_id,
        record.task_name,
        record.callable,
        record.trigger,
        record.store,
        record.executor,
        record.source,
        record.status,
        record.scheduler_identity,
        record.exception_type,
        record.exception_message,
    ):
        if text and needle in text.lower():
            return True
    return False


def _filter(
    records: Iterable[RunHistoryRecord],
    task_id: str | None,
    status: str | None,
    q: str | None,
    source: str | None,
    limit: int,
) -> list[RunHistoryRecord]:
    return newest_matching(
        records,
        equal={"task_id": task_id, "status": status, "source": source},
        q=q,
        matches=_matches,
        limit=limit,
    )


class MemoryRunHistoryStorage:
    """The newest ``maxlen`` run records in memory, for this process only; thread-safe.

    Fed by :func:`attach_run_history` (or by calling :meth:`record_submission` and
    :meth:`record_execution` with the events). When full, the oldest record is dropped.
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self.maxlen = positive("maxlen", maxlen)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._next_seq = 0
        # By arrival (the order of the first event of each run): oldest first.
        self._records: collections.OrderedDict[int, RunHistoryRecord] = collections.OrderedDict()
        self._by_run_id: dict[str, int] = {}
        # Records of submitted runs whose run has not reported yet, and records of runs whose
        # submission has not been seen yet, by (scheduler, task, scheduled time).
        self._awaiting_run: dict[_Key, collections.deque[int]] = {}
        self._awaiting_submission: dict[_Key, collections.deque[int]] = {}
        self._meta = _MetaCache()

    def __len__(self) -> int:
        return len(self._records)

    # -- recording -------------------------------------------------------------------------

    def record_submission(
        self,
        event: Any,
        *,
        scheduler: Any = None,
        log_storage: LogStorage | None = None,
    ) -> list[RunHistoryRecord]:
        """Record a ``TASK_SUBMITTED`` (or ``TASK_MAX_INSTANCES``) event: one record per run
        time. Returns the records made or completed."""
        code = getattr(event, "code", None)
        if not isinstance(code, int) or not code & _SUBMISSIONS:
            raise ValueError(
                f"record_submission takes TASK_SUBMITTED or TASK_MAX_INSTANCES events, "
                f"got {event!r}"
            )
        task_id = str(event.task_id)
        identity = _identity(event, scheduler)
        store = getattr(event, "store", None) or getattr(event, "alias", None)
        source = getattr(event, "source", None) or "unknown"
        coalesced = int(getattr(event, "coalesced_run_count", 0) or 0)
        run_times: list[datetime | None] = list(getattr(event, "scheduled_run_times", None) or [])
        if not run_times:
            run_times = [None]
        turned_away = bool(code & events.TASK_MAX_INSTANCES)
        meta = self._meta.get(scheduler, task_id, store)
        now = datetime.now(UTC)
        done: list[RunHistoryRecord] = []
        with self._lock:
            for index, run_time in enumerate(run_times):
                # Coalescing folds the dropped run times into the run that is left (the last).
                folded = coalesced if index == len(run_times) - 1 else 0
                key = (identity, task_id, _time_key(run_time))
                seq = None if turned_away else self._take(self._awaiting_submission, key)
                if seq is not None:
                    record = attrs.evolve(
                        self._records[seq],
                        source=source,
                        coalesced_run_count=folded,
                        submitted_at=now,
                    )
                    self._records[seq] = record
                    done.append(record)
                    continue
                record = RunHistoryRecord(
                    run_id=new_run_id(),
                    task_id=task_id,
                    task_name=meta.name,
                    callable=meta.callable,
                    trigger=meta.trigger,
                    store=store or meta.store,
                    executor=meta.executor,
                    source=source,
                    status="max_instances" if turned_away else "submitted",
                    scheduled_run_time=run_time,
                    submitted_at=now,
                    finished_at=now if turned_away else None,
                    coalesced_run_count=folded,
                    scheduler_identity=identity,
                )
                seq = self._insert(record)
                if not turned_away:
                    self._awaiting_run.setdefault(key, collections.deque()).append(seq)
                done.append(record)
            self._changed.notify_all()
        if turned_away and log_storage is not None:
            for record in done:
                _log_outcome(log_storage, record)
        return done

    def record_execution(
        self,
        event: Any,
        *,
        scheduler: Any = None,
        log_storage: LogStorage | None = None,
    ) -> RunHistoryRecord:
        """Record a ``TASK_STARTED``/``EXECUTED``/``ERROR``/``MISSED`` event; returns the
        record as it is now. An outcome also writes a log entry to ``log_storage``."""
        code = getattr(event, "code", None)
        if not isinstance(code, int) or not code & _EXECUTIONS:
            raise ValueError(
                "record_execution takes TASK_STARTED, TASK_EXECUTED, TASK_ERROR or "
                f"TASK_MISSED events, got {event!r}"
            )
        task_id = str(event.task_id)
        identity = _identity(event, scheduler)
        run_id = getattr(event, "run_id", None) or None
        run_time = getattr(event, "scheduled_run_time", None)
        key = (identity, task_id, _time_key(run_time))
        meta: _TaskMeta | None = None
        while True:
            with self._lock:
                seq = self._find_run(key, run_id)
                if seq is not None or meta is not None:
                    if seq is None:
                        assert meta is not None
                        store = getattr(event, "store", None) or getattr(event, "alias", None)
                        seq = self._insert(
                            RunHistoryRecord(
                                run_id=run_id or new_run_id(),
                                task_id=task_id,
                                task_name=meta.name,
                                callable=meta.callable,
                                trigger=meta.trigger,
                                store=store or meta.store,
                                executor=meta.executor,
                                scheduled_run_time=run_time,
                                scheduler_identity=identity,
                            )
                        )
                        self._awaiting_submission.setdefault(key, collections.deque()).append(seq)
                    record = _apply(self._records[seq], code, event)
                    self._records[seq] = record
                    self._changed.notify_all()
                    break
            # A run without a record: read the task outside the lock, then look again.
            meta = self._meta.get(
                scheduler, task_id, getattr(event, "store", None) or getattr(event, "alias", None)
            )
        if log_storage is not None and code & (
            events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED
        ):
            _log_outcome(log_storage, record)
        return record

    # -- waiting for runs ------------------------------------------------------------------

    def watermark(self) -> int:
        """A mark to pass as ``since`` to :meth:`wait_for_runs`: records made after it count."""
        with self._lock:
            return self._next_seq

    def _runs_since(self, task_id: str, since: int) -> list[RunHistoryRecord]:
        """Oldest first; only the records after the mark are looked at (they are the last)."""
        runs = []
        for seq in reversed(self._records):
            if seq < since:
                break
            record = self._records[seq]
            if record.task_id == task_id:
                runs.append(record)
        runs.reverse()
        return runs

    def wait_for_runs(
        self, task_id: str, *, since: int, timeout: float = 5.0
    ) -> list[RunHistoryRecord]:
        """Block until the records of ``task_id`` made after the mark ``since`` (see
        :meth:`watermark`) exist and are all finished, or ``timeout`` seconds passed; returns
        them (newest first) as they are then.

        For a view that runs a task now and shows the outcome. From a thread only: in a
        coroutine use :meth:`wait_for_runs_async`, which does not block the event loop.
        """

        def settled() -> bool:
            runs = self._runs_since(task_id, since)
            return bool(runs) and all(r.finished for r in runs)

        with self._changed:
            self._changed.wait_for(settled, timeout)
            runs = self._runs_since(task_id, since)
        runs.reverse()
        return runs

    async def wait_for_runs_async(
        self, task_id: str, *, since: int, timeout: float = 5.0, interval: float = 0.01
    ) -> list[RunHistoryRecord]:
        """:meth:`wait_for_runs` for a coroutine: polls every ``interval`` seconds, so a
        scheduler running on the same event loop keeps running meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                runs = self._runs_since(task_id, since)
            if (runs and all(r.finished for r in runs)) or time.monotonic() >= deadline:
                runs.reverse()
                return runs
            await asyncio.sleep(interval)

    def forget_task_metadata(self, task_id: str | None = None) -> None:
        """Read the task's (or every task's) name, callable and trigger again next time."""
        self._meta.forget(task_id)

    # -- internals (under the lock) --------------------------------------------------------

    def _insert(self, record: RunHistoryRecord) -> int:
        seq = self._next_seq
        self._next_seq += 1
        self._records[seq] = record
        self._by_run_id[record.run_id] = seq
        while len(self._records) > self.maxlen:
            old_seq, old = self._records.popitem(last=False)
            if self._by_run_id.get(old.run_id) == old_seq:
                del self._by_run_id[old.run_id]
            old_key = (old.scheduler_identity, old.task_id, _time_key(old.scheduled_run_time))
            for waiting in (self._awaiting_run, self._awaiting_submission):
                queue = waiting.get(old_key)
                if queue is not None and old_seq in queue:
                    queue.remove(old_seq)
                    if not queue:
                        del waiting[old_key]
        return seq

    def _take(self, waiting: dict[_Key, collections.deque[int]], key: _Key) -> int | None:
        queue = waiting.get(key)
        while queue:
            seq = queue.popleft()
            if not queue:
                del waiting[key]
            if seq in self._records:
                return seq
        return None

    def _find_run(self, key: _Key, run_id: str | None) -> int | None:
        if run_id is not None:
            seq = self._by_run_id.get(run_id)
            if seq is not None and seq in self._records:
                return seq
        seq = self._take(self._awaiting_run, key)
        if seq is not None and run_id is not None:
            # The run takes its submission's record over, under the core's run id.
            record = self._records[seq]
            if self._by_run_id.get(record.run_id) == seq:
                del self._by_run_id[record.run_id]
            self._records[seq] = attrs.evolve(record, run_id=run_id)
            self._by_run_id[run_id] = seq
        return seq

    # -- reading ---------------------------------------------------------------------------

    def get(self, run_id: str) -> RunHistoryRecord | None:
        """The record with ``run_id``, or ``None``."""
        with self._lock:
            seq = self._by_run_id.get(run_id)
            return self._records.get(seq) if seq is not None else None

    def latest_for_tasks(self, task_ids: Iterable[str]) -> dict[str, RunHistoryRecord]:
        """The newest record of each of ``task_ids`` that has one, in one pass."""
        wanted = set(task_ids)
        found: dict[str, RunHistoryRecord] = {}
        with self._lock:
            for record in reversed(self._records.values()):
                if record.task_id in wanted and record.task_id not in found:
                    found[record.task_id] = record
                    if len(found) == len(wanted):
                        break
        return found

    def latest_for_task(self, task_id: str) -> RunHistoryRecord | None:
        """The newest record of ``task_id``, or ``None``."""
        found = self.query(task_id=task_id, limit=1)
        return found[0] if found else None

    def query(
        self,
        task_id: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 200,
        *,
        source: str | None = None,
    ) -> list[RunHistoryRecord]:
        """The newest records first, at most ``limit``, matching every filter given.

        ``status`` is one of :data:`RUN_STATUSES`; ``q`` is searched, ignoring case, in the
        ids, names, callable, trigger, aliases, source, status, scheduler identity and
        exception.
        """
        positive("limit", limit)
        status = _check_status(status)
        with self._lock:
            records = list(self._records.values())
        records.reverse()
        return _filter(records, task_id, status, q, source, limit)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._by_run_id.clear()
            self._awaiting_run.clear()
            self._awaiting_submission.clear()
        self._meta.forget()


def _apply(record: RunHistoryRecord, code: int, event: Any) -> RunHistoryRecord:
    """``record`` after the execution event ``event`` (a final status is never undone)."""
    now = datetime.now(UTC)
    started_at = getattr(event, "started_at", None) or record.started_at
    if code & events.TASK_STARTED:
        if record.finished:
            return record
        return attrs.evolve(record, status="running", started_at=started_at)
    if code & events.TASK_MISSED:
        return attrs.evolve(record, status="missed", finished_at=now)
    duration = getattr(event, "duration", None)
    finished_at = now
    if started_at is not None and duration is not None:
        finished_at = started_at + timedelta(seconds=duration)
    if code & events.TASK_EXECUTED:
        # The return value is not kept: it may be anything, of any size.
        return attrs.evolve(
            record,
            status="succeeded",
            started_at=started_at,
            finished_at=finished_at,
            duration=duration,
        )
    exc = getattr(event, "exception", None)
    formatted = getattr(event, "traceback", None)
    exc_type = type(exc).__name__ if exc is not None else None
    exc_message = str(exc) if exc is not None else None
    if exc is None and formatted:
        exc_type, exc_message = _parse_error(formatted)
    if formatted is None and exc is not None:
        formatted = f"{exc_type}: {exc_message}"
    return attrs.evolve(
        record,
        status="failed",
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        exception_type=exc_type,
        exception_message=exc_message,
        exception=formatted,
    )


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


def _parse_error(text: str | None) -> tuple[str | None, str | None]:
    """The exception type and message from the last line of a traceback."""
    if not text:
        return None, None
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if not line:
            continue
        match = _ERROR_LINE.match(line)
        if match is None:
            return None, line
        return match.group(1).rsplit(".", 1)[-1], match.group(2) or ""
    return None, None


def _log_outcome(log_storage: LogStorage, record: RunHistoryRecord) -> None:
    if record.status == "succeeded":
        level, message = logging.INFO, "Task run succeeded"
    elif record.status == "failed":
        level = logging.ERROR
        message = f"Task run failed: {record.exception_type}: {record.exception_message}"
    elif record.status == "missed":
        level, message = logging.WARNING, "Task run missed"
    elif record.status == "max_instances":
        level, message = logging.WARNING, "Task run skipped: maximum running instances reached"
    else:
        return
    extra: dict[str, Any] = {"status": record.status, "source": record.source}
    if record.duration is not None:
        extra["duration"] = record.duration
    if record.coalesced_run_count:
        extra["coalesced_run_count"] = record.coalesced_run_count
    try:
        log_storage.append(
            LogEntry(
                level=logging.getLevelName(level),
                levelno=level,
                message=message,
                logger=HISTORY_LOGGER,
                task_id=record.task_id,
                run_id=record.run_id,
                scheduler_identity=record.scheduler_identity,
                extra=extra,
            )
        )
    except Exception:
        logger.exception("Cannot write the log entry of run %s", record.run_id)


# -- the listener ------------------------------------------------------------------------------


class RunHistoryListener:
    """The scheduler listener :func:`attach_run_history` registers. Equal to another listener
    of the same storages, so it is registered once per scheduler.

    It also forgets what it read of a task when the task is modified or removed."""

    def __init__(self, scheduler: Any, storage: Any, log_storage: LogStorage | None) -> None:
        self._scheduler = SchedulerRef(scheduler)
        self.storage = storage
        self.log_storage = log_storage

    @property
    def scheduler(self) -> Any:
        return self._scheduler()

    def __call__(self, event: Any) -> None:
        code = getattr(event, "code", 0)
        if code & _SUBMISSIONS:
            self.storage.record_submission(
                event, scheduler=self.scheduler, log_storage=self.log_storage
            )
        elif code & _EXECUTIONS:
            self.storage.record_execution(
                event, scheduler=self.scheduler, log_storage=self.log_storage
            )
        else:
            forget = getattr(self.storage, "forget_task_metadata", None)
            if forget is not None:
                forget(getattr(event, "task_id", None))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RunHistoryListener)
            and other.storage is self.storage
            and other.log_storage is self.log_storage
        )

    def __hash__(self) -> int:
        return hash((id(self.storage), id(self.log_storage)))


def attach_run_history(
    scheduler: Any, storage: Any, log_storage: LogStorage | None = None
) -> RunHistoryListener:
    """Feed ``storage`` from ``scheduler``'s events (once per scheduler and storages, however
    often it is called); outcomes are also written to ``log_storage``. Returns the listener."""
    if not callable(getattr(storage, "record_submission", None)) or not callable(
        getattr(storage, "record_execution", None)
    ):
        raise TypeError(
            f"a run history storage needs record_submission and record_execution, got {storage!r}"
        )
    listener: RunHistoryListener = add_listener_once(
        scheduler,
        RunHistoryListener(scheduler, storage, log_storage),
        HISTORY_EVENTS | events.TASK_MODIFIED | events.TASK_REMOVED,
    )
    return listener


def detach_run_history(scheduler: Any, storage: Any, log_storage: LogStorage | None = None) -> bool:
    """Undo :func:`attach_run_history`; False if it was not attached."""
    return remove_listener_once(scheduler, RunHistoryListener(scheduler, storage, log_storage))


# -- store-backed history ----------------------------------------------------------------------

_STORE_STATUS = {"started": "running"}


def _store_run_id(alias: str | None, record: Any) -> str:
    """The record's run id; for a run that never started (no run id), one derived from its
    key, so the same record always gets the same id."""
    if record.run_id:
        return str(record.run_id)
    key = f"{alias}\0{record.task_id}\0{record.scheduled_at.isoformat()}"
    return "fire-" + hashlib.sha256(key.encode()).hexdigest()[:20]


class StoreRunHistory:
    """Run history read from the run records of the scheduler's persistent stores
    (``scheduler.get_task_runs``): the runs of every scheduler sharing a store, kept across
    restarts. Stores without run records (the memory store) contribute nothing.

    ``local``: a :class:`MemoryRunHistoryStorage` fed by this process (manual runs, tasks in
    memory stores, tracebacks in full); its records are shown too, and win over the store's
    record of the same run. Recording goes to ``local`` (nothing otherwise), so this object can
    be given to :func:`attach_run_history`. ``window`` is how many store records a filtered
    query or a lookup by run id reads (per store).
    """

    def __init__(
        self,
        scheduler: Any,
        *,
        local: MemoryRunHistoryStorage | None = None,
        window: int = 500,
    ) -> None:
        if not callable(getattr(scheduler, "get_task_runs", None)):
            raise TypeError(f"{scheduler!r} has no get_task_runs(task_id, store, limit)")
        self.scheduler = scheduler
        self.local = local
        self.window = positive("window", window)
        self._meta = _MetaCache()

    # -- recording (to the local storage) --------------------------------------------------

    def record_submission(self, event: Any, **kwargs: Any) -> list[RunHistoryRecord]:
        return self.local.record_submission(event, **kwargs) if self.local is not None else []

    def record_execution(self, event: Any, **kwargs: Any) -> RunHistoryRecord | None:
        return self.local.record_execution(event, **kwargs) if self.local is not None else None

    def watermark(self) -> int:
        return self.local.watermark() if self.local is not None else 0

    def wait_for_runs(
        self, task_id: str, *, since: int, timeout: float = 5.0
    ) -> list[RunHistoryRecord]:
        """The local storage's :meth:`~MemoryRunHistoryStorage.wait_for_runs` (nothing to
        wait for without one)."""
        if self.local is None:
            return []
        return self.local.wait_for_runs(task_id, since=since, timeout=timeout)

    async def wait_for_runs_async(
        self, task_id: str, *, since: int, timeout: float = 5.0, interval: float = 0.01
    ) -> list[RunHistoryRecord]:
        if self.local is None:
            return []
        return await self.local.wait_for_runs_async(
            task_id, since=since, timeout=timeout, interval=interval
        )

    # -- reading ---------------------------------------------------------------------------

    def _store_records(self, task_id: str | None, limit: int) -> list[RunHistoryRecord]:
        aliases: Iterable[str | None]
        stores = getattr(self.scheduler, "stores", None)
        if isinstance(stores, Mapping):
            # The aliases without get_scheduler_info(), which counts every task.
            aliases = tuple(stores)
        else:
            try:
                aliases = tuple(self.scheduler.get_scheduler_info().store_aliases)
            except Exception:
                aliases = (None,)
        found: list[RunHistoryRecord] = []
        for alias in aliases:
            try:
                runs = self.scheduler.get_task_runs(task_id=task_id, store=alias, limit=limit)
            except Exception:
                logger.exception("Cannot read the run records of store %r", alias)
                continue
            found.extend(self._convert(alias, run) for run in runs)
        found.sort(key=_newest_key, reverse=True)
        return found

    def _convert(self, alias: str | None, run: Any) -> RunHistoryRecord:
        meta = self._meta.get(self.scheduler, run.task_id, alias)
        exc_type, exc_message = _parse_error(run.error) if run.error else (None, None)
        attempt = int(getattr(run, "attempt", 1) or 1)
        return RunHistoryRecord(
            run_id=_store_run_id(alias, run),
            task_id=run.task_id,
            task_name=meta.name,
            callable=meta.callable,
            trigger=meta.trigger,
            store=alias or meta.store,
            executor=meta.executor,
            source="rerun" if attempt > 1 else "scheduled",
            status=_STORE_STATUS.get(run.status, run.status),
            scheduled_run_time=run.scheduled_at,
            submitted_at=run.fired_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration=run.duration,
            exception_type=exc_type,
            exception_message=exc_message,
            exception=run.error,
            scheduler_identity=run.instance,
            attempt=attempt,
        )

    def query(
        self,
        task_id: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 200,
        *,
        source: str | None = None,
    ) -> list[RunHistoryRecord]:
        """The newest runs first (by scheduled time), as :meth:`MemoryRunHistoryStorage.query`."""
        positive("limit", limit)
        status = _check_status(status)
        filtered = bool(status or q or source)
        records = self._store_records(task_id, self.window if filtered else limit)
        if self.local is not None:
            local = self.local.query(task_id=task_id, limit=self.local.maxlen)
            # The same run, in memory and in the store: by run id, or (before the store's
            # record learnt the run id) by scheduler, task and fire time.
            own = {record.run_id for record in local}
            own_keys = {_record_key(record) for record in local}
            records = [
                r for r in records if r.run_id not in own and _record_key(r) not in own_keys
            ] + local
            records.sort(key=_newest_key, reverse=True)
        return _filter(records, task_id, status, q, source, limit)

    def get(self, run_id: str) -> RunHistoryRecord | None:
        """The run with ``run_id`` among the newest :attr:`window` records, or ``None``."""
        if self.local is not None:
            record = self.local.get(run_id)
            if record is not None:
                return record
        for record in self._store_records(None, self.window):
            if record.run_id == run_id:
                return record
        return None

    def latest_for_task(self, task_id: str) -> RunHistoryRecord | None:
        found = self.query(task_id=task_id, limit=1)
        return found[0] if found else None

    def latest_for_tasks(self, task_ids: Iterable[str]) -> dict[str, RunHistoryRecord]:
        """The newest run of each task, for a table of tasks: the local records and one read of
        the newest :attr:`window` store records; tasks left without a run are then asked one by
        one only when few (a task that ran long ago, on a page of a few rows)."""
        wanted = set(task_ids)
        found: dict[str, RunHistoryRecord] = {}
        candidates = list(self._store_records(None, self.window))
        if self.local is not None:
            candidates.extend(self.local.latest_for_tasks(wanted).values())
        for record in sorted(candidates, key=_newest_key, reverse=True):
            if record.task_id in wanted and record.task_id not in found:
                found[record.task_id] = record
        missing = wanted - found.keys()
        if 0 < len(missing) <= _LOOKUPS_PER_TABLE:
            for task_id in missing:
                latest = self.latest_for_task(task_id)
                if latest is not None:
                    found[task_id] = latest
        return found

    def clear(self) -> None:
        """Clear the local records (the store's run records are the store's to keep)."""
        if self.local is not None:
            self.local.clear()
        self._meta.forget()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: At most this many tasks of one table are looked up one by one (see latest_for_tasks).
_LOOKUPS_PER_TABLE = 25


def _record_key(record: RunHistoryRecord) -> _Key:
    return (record.scheduler_identity, record.task_id, _time_key(record.scheduled_run_time))


def _newest_key(record: RunHistoryRecord) -> datetime:
    moment = record.scheduled_run_time or record.submitted_at or record.started_at
    if moment is None:
        return _EPOCH
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
