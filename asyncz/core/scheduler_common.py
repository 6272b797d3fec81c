"""What the scheduler modules share: constants, small types and the attributes they declare.

Here: the pass's tuning constants (``ACQUIRE_BATCH``, ``LEASE_SECONDS``, the loop's sleep
constants), ``SchedulerState``, the ``undefined`` marker, ``SchedulerInfo``, the record of a task
added before start, the alias check, and ``_SchedulerCore``: the base of the scheduler mixins,
which declares (for type checkers only) the attributes and methods one part of the scheduler uses
from another.

Not here: any behaviour. Configuration is in :mod:`asyncz.core.scheduler_config`, the task API in
:mod:`asyncz.core.task_api`, starting, stopping and the due-task pass in
:mod:`asyncz.core.engine`, ``BaseScheduler`` in :mod:`asyncz.core.base_scheduler` and the asyncio
schedulers in :mod:`asyncz.core.asyncio_scheduler`. A constant is read by the module that uses
it (``from ... import``), so a test that changes one patches that module, not this one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone, tzinfo
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from asyncz.core import events
from asyncz.core.locks import LockProtectedProtocol
from asyncz.core.plugins import PluginRegistry
from asyncz.core.protocols import Executor, Store, Trigger
from asyncz.core.task import Task

if TYPE_CHECKING:
    import logging

    from asyncz.core.cluster import Heartbeat, RunRecorder

__all__ = [
    "ACQUIRE_BATCH",
    "ALARM_KIND",
    "LEASE_SECONDS",
    "MAX_IO_LEAD_SECONDS",
    "MAX_SLEEP_SECONDS",
    "SHUTDOWN_TRIGGER_ALIAS",
    "SPIN_SECONDS",
    "THREAD_ALARM_HORIZON_SECONDS",
    "UTC",
    "SchedulerInfo",
    "SchedulerInstanceInfo",
    "SchedulerState",
    "undefined",
]

UTC = timezone.utc

#: Most tasks one store hands over in one pass; the loop comes straight back for more.
ACQUIRE_BATCH = 1000
#: Seconds a store keeps acquired tasks from other schedulers before handing them out again.
#: Short, because a lease that is not released (a fire whose connection broke, a killed
#: process the others have not yet declared dead) delays its tasks by this much; safe, because
#: the heartbeat thread renews the leases of a longer pass, and a release with a lease that
#: ran out meanwhile is refused (fencing tokens), so nothing runs twice.
LEASE_SECONDS = 10.0
#: The loop re-reads the wall clock at least this often, so a clock step (NTP, a suspended VM)
#: cannot make it oversleep by more than this.
MAX_SLEEP_SECONDS = 900.0
#: How the asyncio loop sleeps until a due moment (:func:`asyncz.core.timing.make_alarm`):
#: ``"auto"`` takes a timer file descriptor on Linux, else a timer thread; ``"timerfd"``,
#: ``"thread"`` or ``"loop"`` (the event loop's own timer, late by up to ~2 ms) force one. The
#: loop's timer rounds to the millisecond and wakes late on a busy machine; the others fire at
#: the moment to a fraction of a millisecond, with one wake-up and no spinning.
ALARM_KIND = "auto"
#: A timer thread (where there is no timerfd) lives only while a moment is due within this many
#: seconds, and ends this long after the last one; farther moments use the loop's own timer.
THREAD_ALARM_HORIZON_SECONDS = 0.25
#: Until 0.1 the loop woke this long before a due moment and spun for the rest; it no longer
#: spins. Kept at 0 for code that imports it.
SPIN_SECONDS = 0.0
#: A pass over blocking stores (a database) starts early by about twice its usual duration,
#: acquiring the tasks due at the coming moment, so that their runs still start on time; never
#: earlier than this, so a slow database cannot make runs be leased long before they are due.
MAX_IO_LEAD_SECONDS = 0.05
#: Tasks with this trigger alias never run on a schedule; they run once when the scheduler stops.
SHUTDOWN_TRIGGER_ALIAS = "shutdown"


class SchedulerState(IntEnum):
    STOPPED = 0
    RUNNING = 1
    PAUSED = 2
    # Asyncz's member names (aliases of the same values).
    STATE_STOPPED = 0
    STATE_RUNNING = 1
    STATE_PAUSED = 2


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


#: Marks an argument the caller did not give (``None`` is a meaningful value for several).
undefined: Any = _Undefined()


@attrs.define
class _PendingTask:
    task: Task
    replace_existing: bool
    compute_next_run_time: bool


@attrs.frozen(kw_only=True)
class SchedulerInfo:
    """A snapshot of a scheduler's state (``get_scheduler_info()``)."""

    identity: str
    state: SchedulerState
    state_label: str
    running: bool
    started_at: datetime | None
    uptime_seconds: float | None
    timezone: str
    executor_aliases: tuple[str, ...]
    store_aliases: tuple[str, ...]
    #: tasks by schedule state ("pending", "scheduled", "paused") and "total"
    task_counts: Mapping[str, int]
    #: tasks added to the scheduler (pending or stored), as Asyncz counts them
    submitted_task_count: int
    #: run submissions to executors since the scheduler was created
    submitted_count: int
    store_retry_interval: float
    startup_delay: float

    # Asyncz's names for the counts.
    @property
    def task_count(self) -> int:
        return self.task_counts["total"]

    @property
    def scheduled_task_count(self) -> int:
        return self.task_counts["scheduled"]

    @property
    def paused_task_count(self) -> int:
        return self.task_counts["paused"]

    @property
    def pending_task_count(self) -> int:
        return self.task_counts["pending"]


@attrs.frozen(kw_only=True)
class SchedulerInstanceInfo:
    """One scheduler instance as ``get_scheduler_instance_infos()`` reports it.

    :var scope: ``"process-local"`` for the scheduler asked; ``"cluster"`` for another
        scheduler registered in one of its stores (heartbeat ages by the store's clock)
    :var stale: no heartbeat within ``stale_after_seconds`` (a stopped scheduler is stale)
    :var host: what the instance registered (the scheduler asked fills it in too)
    :var pid: what the instance registered (the scheduler asked fills it in too)
    :var asyncz_version: what the instance registered (the scheduler asked fills it in too)
    :var stores: what the instance registered (the scheduler asked fills it in too)
    :var executors: what the instance registered (the scheduler asked fills it in too)
    """

    identity: str
    scope: str
    state: SchedulerState
    active: bool
    stale: bool
    started_at: datetime | None
    last_seen_at: datetime | None
    uptime_seconds: float | None
    heartbeat_age_seconds: float | None
    stale_after_seconds: float
    task_count: int | None
    host: str | None = None
    pid: int | None = None
    asyncz_version: str | None = None
    stores: tuple[str, ...] = ()
    executors: tuple[str, ...] = ()


def _check_alias(kind: str, alias: Any) -> None:
    if not isinstance(alias, str) or not alias:
        raise TypeError(f"a {kind} instance alias must be a non-empty string, got {alias!r}")


class _SchedulerCore:
    """The base of the scheduler mixins: what they use from one another, declared for type
    checkers only (at run time this class is empty; ``BaseScheduler`` composes the mixins)."""

    if TYPE_CHECKING:
        # Set by BaseScheduler (class attributes and __init__).
        default_executor_alias: ClassVar[str]
        default_store_alias: ClassVar[str]
        option_names: ClassVar[frozenset[str]]
        _lock: threading.RLock
        _due_lock: threading.RLock
        _listeners: list[tuple[Callable[[Any], Any], int]]
        _listener_mask: int
        _pending: dict[str, _PendingTask]
        _stores: dict[str, Store]
        _executors: dict[str, Executor]
        _store_locks: dict[str, LockProtectedProtocol]
        _start_count: int
        _submitted_count: int
        started_at: datetime | None
        state: SchedulerState
        # Set by _ConfigurationMixin._setup.
        plugins: PluginRegistry
        timezone: tzinfo
        identity: str
        logger: logging.Logger
        lock_path: str
        startup_delay: float
        store_retry_interval: float
        heartbeat_stale_after: float
        heartbeat_interval: float
        heartbeat_dead_after: float
        _heartbeat: Heartbeat | None
        _run_recorder: RunRecorder | None
        _rerun_stores: set[str]
        _pass_started: float | None
        task_defaults: dict[str, Any]

        # _ConfigurationMixin
        def create_default_executor(self) -> Any: ...
        def create_default_store(self) -> Any: ...
        def add_store(self, store: Any, alias: str = "default", **options: Any) -> None: ...
        def add_executor(self, executor: Any, alias: str = "default", **options: Any) -> None: ...
        def _make_store_lock(self, alias: str) -> LockProtectedProtocol: ...
        def lookup_store(self, alias: str) -> Store: ...
        def lookup_executor(self, alias: str) -> Executor: ...
        def create_trigger(self, trigger: Any, trigger_args: Mapping[str, Any]) -> Trigger: ...
        def dispatch_event(self, event: events.SchedulerEvent) -> None: ...
        def _refresh_listener_mask(self) -> None: ...
        def _dispatch(self, event: events.SchedulerEvent) -> None: ...
        def _task_event(self, code: int, task_id: str, store: str | None) -> None: ...
        def _submission_event(
            self,
            code: int,
            task: Task,
            store: str,
            run_times: list[datetime],
            coalesced: int,
            source: str,
        ) -> None: ...

        # _TaskAPIMixin
        def _store_pending(self, first_run: datetime) -> None: ...
        def get_scheduler_info(self) -> SchedulerInfo: ...

        # _LifecycleMixin
        @property
        def running(self) -> bool: ...
        def _require_running(self) -> None: ...
        def wakeup(self, when: datetime | None = None) -> None: ...
        def _compute_runs(
            self, task: Task, now: datetime, now_us: int | None = None
        ) -> tuple[list[datetime], datetime | None]: ...
