"""The scheduler events the dashboard observed in this process (the Events page).

Here: the dotted name and title of every event code (:data:`EVENT_NAMES`,
:func:`event_name`, :func:`event_label`), :class:`SchedulerEventRecord` (an event as plain
data: no return values, no exception objects), the bounded, thread-safe
:class:`MemorySchedulerEventStorage`, the process-wide default storage
(:func:`get_scheduler_event_storage`), :func:`attach_event_recorder`, and the helpers the
dashboard's listeners share (:func:`add_listener_once`, :class:`SchedulerRef`). Not here: run
history (:mod:`asyncz.contrib.dashboard.history`).
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

import attrs

from asyncz.contrib.dashboard.records import BoundedRecords, ProcessDefault
from asyncz.core import events

__all__ = [
    "EVENT_CATEGORIES",
    "EVENT_NAMES",
    "EventRecorderListener",
    "MemorySchedulerEventStorage",
    "SchedulerEventRecord",
    "SchedulerRef",
    "add_listener_once",
    "attach_event_recorder",
    "detach_event_recorder",
    "event_label",
    "event_name",
    "get_scheduler_event_storage",
    "remove_listener_once",
]

UTC = timezone.utc

#: The dotted name of each event code.
EVENT_NAMES: Final[Mapping[int, str]] = {
    events.SCHEDULER_STARTED: "scheduler.started",
    events.SCHEDULER_SHUTDOWN: "scheduler.shutdown",
    events.SCHEDULER_PAUSED: "scheduler.paused",
    events.SCHEDULER_RESUMED: "scheduler.resumed",
    events.EXECUTOR_ADDED: "executor.added",
    events.EXECUTOR_REMOVED: "executor.removed",
    events.STORE_ADDED: "store.added",
    events.STORE_REMOVED: "store.removed",
    events.ALL_TASKS_REMOVED: "task.all_removed",
    events.TASK_ADDED: "task.added",
    events.TASK_REMOVED: "task.removed",
    events.TASK_MODIFIED: "task.modified",
    events.TASK_EXECUTED: "task.executed",
    events.TASK_ERROR: "task.error",
    events.TASK_MISSED: "task.missed",
    events.TASK_SUBMITTED: "task.submitted",
    events.TASK_MAX_INSTANCES: "task.max_instances",
    events.TASK_STARTED: "task.started",
    events.TASK_QUARANTINED: "task.quarantined",
}
_CODES_BY_NAME: Final = {name: code for code, name in EVENT_NAMES.items()}
_LABELS: Final = {"task.all_removed": "All Tasks Removed"}
#: The first part of every name.
EVENT_CATEGORIES: Final = ("scheduler", "executor", "store", "task")
_UNKNOWN_NAME = re.compile(r"^event\.\d+$")


def event_name(code: int) -> str:
    """``"task.added"`` for ``TASK_ADDED``; ``"event.<code>"`` for a code asyncz does not
    define."""
    return EVENT_NAMES.get(code) or f"event.{code}"


def event_label(name: str) -> str:
    """``"Task Added"`` for ``"task.added"``."""
    label = _LABELS.get(name)
    if label is not None:
        return label
    return " ".join(part.replace("_", " ").title() for part in name.split("."))


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _metadata(event: Any) -> dict[str, Any]:
    """What an event carries besides its code and task, as plain data.

    Return values and exception objects are never kept: an exception as its type name and
    message only."""
    data: dict[str, Any] = {}
    if isinstance(event, events.TaskSubmissionEvent):
        data["scheduled_run_times"] = [_iso(t) for t in event.scheduled_run_times]
        data["source"] = event.source
        data["coalesced_run_count"] = event.coalesced_run_count
    elif isinstance(event, events.TaskExecutionEvent):
        data["scheduled_run_time"] = _iso(event.scheduled_run_time)
        if event.run_id:
            data["run_id"] = event.run_id
        if event.started_at is not None:
            data["started_at"] = _iso(event.started_at)
        if event.duration is not None:
            data["duration"] = event.duration
        if event.exception is not None:
            data["exception_type"] = type(event.exception).__name__
            data["exception_message"] = str(event.exception)
    elif isinstance(event, events.TaskQuarantinedEvent):
        data["reason"] = event.reason
    return data


@attrs.frozen(kw_only=True)
class SchedulerEventRecord:
    """One observed event, as plain data.

    :var event_id: its position among the events the storage recorded (increasing)
    :var name: the dotted name (``"task.added"``), see :data:`EVENT_NAMES`
    :var label: the title (``"Task Added"``)
    :var category: the first part of the name (``"task"``)
    :var code: the event code
    :var task_id: the task, for task events
    :var store: the store alias, for task events
    :var alias: the event's alias (the store or executor concerned)
    :var at: when it was recorded (aware, UTC)
    :var scheduler_identity: the scheduler that emitted it
    :var metadata: the rest as plain data: for submissions ``scheduled_run_times`` (ISO 8601
        strings), ``source`` and ``coalesced_run_count``; for runs ``scheduled_run_time``,
        ``run_id``, ``started_at``, ``duration`` and, for failures, ``exception_type`` and
        ``exception_message``; for quarantined tasks ``reason``
    """

    event_id: int = 0
    name: str
    label: str
    category: str
    code: int
    task_id: str | None = None
    store: str | None = None
    alias: str | None = None
    at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    scheduler_identity: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_event(
        cls, event: Any, *, scheduler_identity: str | None = None, event_id: int = 0
    ) -> SchedulerEventRecord:
        """The record of a scheduler event; ``scheduler_identity`` is used when the event
        carries none."""
        code = int(getattr(event, "code", 0))
        name = event_name(code)
        task_id = getattr(event, "task_id", None)
        alias = getattr(event, "alias", None)
        store = getattr(event, "store", None)
        if task_id is not None and store is None:
            store = alias  # Asyncz's TASK_ADDED names the store in alias only
        identity = getattr(event, "scheduler_identity", None) or scheduler_identity
        return cls(
            event_id=event_id,
            name=name,
            label=event_label(name),
            category=name.split(".", 1)[0],
            code=code,
            task_id=str(task_id) if task_id is not None else None,
            store=store,
            alias=alias,
            scheduler_identity=str(identity) if identity is not None else None,
            metadata=_metadata(event),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the time as an ISO 8601 string), for JSON output."""
        data = attrs.asdict(self)
        data["at"] = self.at.isoformat()
        data["metadata"] = dict(self.metadata)
        return data


def _check_name(name: str | None) -> str | None:
    if not name:
        return None
    if name not in _CODES_BY_NAME and not _UNKNOWN_NAME.match(name):
        raise ValueError(
            f"unknown event name {name!r}; use one of {', '.join(sorted(_CODES_BY_NAME))}"
        )
    return name


def _check_category(category: str | None) -> str | None:
    if not category:
        return None
    if category not in EVENT_CATEGORIES:
        raise ValueError(
            f"unknown event category {category!r}; use one of {', '.join(EVENT_CATEGORIES)}"
        )
    return category


def _matches(record: SchedulerEventRecord, needle: str) -> bool:
    texts = [
        record.name,
        record.label,
        record.task_id,
        record.store,
        record.alias,
        record.scheduler_identity,
    ]
    for value in record.metadata.values():
        if isinstance(value, list):
            texts.extend(str(v) for v in value)
        elif value is not None:
            texts.append(str(value))
    return any(text and needle in text.lower() for text in texts)


class MemorySchedulerEventStorage(BoundedRecords[SchedulerEventRecord]):
    """The newest ``maxlen`` observed events in memory, for this process only; thread-safe."""

    def __init__(self, maxlen: int = 10_000) -> None:
        super().__init__(maxlen)
        self._ids = itertools.count(1)

    def record(self, event: Any, *, scheduler_identity: str | None = None) -> SchedulerEventRecord:
        """Record a scheduler event; returns its record."""
        with self._lock:
            record = SchedulerEventRecord.from_event(
                event, scheduler_identity=scheduler_identity, event_id=next(self._ids)
            )
            self._records.append(record)
        return record

    def append(self, record: SchedulerEventRecord) -> None:
        """Keep a record made elsewhere."""
        if not isinstance(record, SchedulerEventRecord):
            raise TypeError(f"expected a SchedulerEventRecord, got {record!r}")
        with self._lock:
            self._records.append(record)

    def query(
        self,
        name: str | None = None,
        task_id: str | None = None,
        limit: int = 200,
        *,
        category: str | None = None,
        q: str | None = None,
        scheduler_identity: str | None = None,
    ) -> list[SchedulerEventRecord]:
        """The newest events first, at most ``limit``, matching every filter given.

        ``name`` is a dotted name (:data:`EVENT_NAMES`), ``category`` one of
        :data:`EVENT_CATEGORIES`; ``q`` is searched, ignoring case, in the name, label, ids,
        aliases and metadata.
        """
        return self._newest(
            equal={
                "name": _check_name(name),
                "task_id": task_id,
                "category": _check_category(category),
                "scheduler_identity": scheduler_identity,
            },
            q=q,
            matches=_matches,
            limit=limit,
        )


_defaults: ProcessDefault[Any] = ProcessDefault(
    "an event storage", MemorySchedulerEventStorage, ("record", "query")
)


def get_scheduler_event_storage(storage: Any = None) -> Any:
    """The process-wide default event storage; passing ``storage`` makes it the default.

    The first call without one creates a :class:`MemorySchedulerEventStorage`.
    """
    return _defaults.get(storage)


# -- listeners ---------------------------------------------------------------------------------


class SchedulerRef:
    """A reference to a scheduler that does not keep it alive (a strong one if it cannot be
    referenced weakly). Call it for the scheduler, or ``None`` once it is gone."""

    __slots__ = ("_strong", "_weak")

    def __init__(self, scheduler: Any) -> None:
        try:
            self._weak: weakref.ref[Any] | None = weakref.ref(scheduler)
            self._strong = None
        except TypeError:
            self._weak = None
            self._strong = scheduler

    def __call__(self) -> Any:
        return self._weak() if self._weak is not None else self._strong


_attach_lock = threading.Lock()
# Listeners added through add_listener_once, by scheduler (which they do not keep alive).
_attached: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def add_listener_once(scheduler: Any, listener: Any, mask: int) -> Any:
    """``scheduler.add_listener(listener, mask)`` unless a listener equal to ``listener`` was
    added to it this way already; returns the listener in place. A scheduler without
    ``add_listener`` (a remote one) is refused with ``TypeError``."""
    add = getattr(scheduler, "add_listener", None)
    if not callable(add):
        raise TypeError(f"{scheduler!r} has no add_listener(callback, mask)")
    with _attach_lock:
        try:
            attached = _attached.setdefault(scheduler, [])
        except TypeError:  # cannot be referenced weakly: rely on remove_listener's ==
            remove = getattr(scheduler, "remove_listener", None)
            if callable(remove):
                remove(listener)
            add(listener, mask)
            return listener
        for existing in attached:
            if existing == listener:
                return existing
        add(listener, mask)
        attached.append(listener)
    return listener


def remove_listener_once(scheduler: Any, listener: Any) -> bool:
    """Undo :func:`add_listener_once`; False if no equal listener was added."""
    with _attach_lock:
        try:
            attached = _attached.get(scheduler)
        except TypeError:
            attached = None
        if attached is not None:
            for existing in list(attached):
                if existing == listener:
                    attached.remove(existing)
        remove = getattr(scheduler, "remove_listener", None)
        return bool(remove(listener)) if callable(remove) else False


class EventRecorderListener:
    """The scheduler listener :func:`attach_event_recorder` registers; equal to another
    recorder of the same storage."""

    def __init__(self, scheduler: Any, storage: Any) -> None:
        self._scheduler = SchedulerRef(scheduler)
        self.storage = storage

    def __call__(self, event: Any) -> None:
        scheduler = self._scheduler()
        identity = getattr(scheduler, "identity", None) if scheduler is not None else None
        self.storage.record(event, scheduler_identity=identity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventRecorderListener) and other.storage is self.storage

    def __hash__(self) -> int:
        return hash(id(self.storage))


def attach_event_recorder(scheduler: Any, storage: Any = None) -> EventRecorderListener:
    """Record every event of ``scheduler`` in ``storage`` (by default
    :func:`get_scheduler_event_storage`'s), once however often it is called."""
    if storage is None:
        storage = get_scheduler_event_storage()
    elif not callable(getattr(storage, "record", None)):
        raise TypeError(f"an event storage needs a record(event) method, got {storage!r}")
    listener: EventRecorderListener = add_listener_once(
        scheduler, EventRecorderListener(scheduler, storage), events.ALL_EVENTS
    )
    return listener


def detach_event_recorder(scheduler: Any, storage: Any = None) -> bool:
    """Undo :func:`attach_event_recorder`."""
    if storage is None:
        storage = get_scheduler_event_storage()
    return remove_listener_once(scheduler, EventRecorderListener(scheduler, storage))
