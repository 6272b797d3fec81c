"""The engine: schedulers that take due tasks from stores and hand them to executors.

``BaseScheduler`` holds configuration, the task API and the store pass; ``AsyncIOScheduler``
drives it from an asyncio event loop (the caller's, or its own in a thread) and
``NativeAsyncIOScheduler`` is the same with awaitable ``start()``/``shutdown()``. The loop never
polls: it sleeps until the earliest next run time over all stores and is woken early by any
local change that could make that earlier.

Due tasks are only ever taken through the store's lease path (``acquire_due_tasks`` then
``release_tasks``), the same for every store, so that stores shared between schedulers can
guarantee a run is handed to one of them only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from enum import IntEnum
from typing import Any, ClassVar

import attrs

from asyncz.core import events
from asyncz.core.config import coerce_options, merge_options, parse_global_config
from asyncz.core.converters import (
    check_callable_args,
    maybe_ref,
    ref_to_obj,
    timezone_name,
    to_datetime,
    to_timezone,
    utc_timestamp_us,
)
from asyncz.core.errors import (
    ConflictIdError,
    MaximumInstancesError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    TaskLookupError,
)
from asyncz.core.execution import is_async_callable, run_task_async, run_task_sync
from asyncz.core.locks import FileLockProtected, LockProtectedProtocol, NullLockProtected
from asyncz.core.plugins import PluginRegistry, default_registry
from asyncz.core.protocols import Executor, Store, Trigger
from asyncz.core.task import Task, TaskInfo, TaskRunPreview

__all__ = [
    "AsyncIOScheduler",
    "BaseScheduler",
    "NativeAsyncIOScheduler",
    "SchedulerInfo",
    "SchedulerState",
    "undefined",
]

UTC = timezone.utc

#: Most tasks one store hands over in one pass; the loop comes straight back for more.
ACQUIRE_BATCH = 1000
#: Seconds a store keeps acquired tasks from other schedulers before handing them out again.
LEASE_SECONDS = 60.0
#: The loop re-reads the wall clock at least this often, so a clock step (NTP, a suspended VM)
#: cannot make it oversleep by more than this.
MAX_SLEEP_SECONDS = 900.0
#: A timer of the event loop fires only as precisely as its selector sleeps: to the millisecond,
#: rounded up, and on a busy or virtual machine often a millisecond more. So the loop wakes this
#: long before a run is due and yields to other tasks in a tight loop for the rest: punctual to
#: well under a millisecond (measured: p99 lateness 0.3-0.5 ms, against 1.0-1.5 ms with half of
#: it), at the cost of this much busy time per due moment — never while idle.
SPIN_SECONDS = 0.003
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
    executors: tuple[str, ...]
    stores: tuple[str, ...]
    task_counts: Mapping[str, int]
    submitted_count: int
    store_retry_interval: float
    startup_delay: float


_TASK_DEFAULT_KEYS = frozenset({"mistrigger_grace_time", "coalesce", "max_instances", "timeout"})
_SORT_KEYS = ("id", "name", "next_run_time", "schedule_state", "executor", "store", "trigger")
_STATE_ORDER = {"pending": 0, "scheduled": 1, "paused": 2}


def _positive_or_zero(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


class BaseScheduler:
    """Configuration, the task API and the store pass shared by every scheduler.

    Options (keyword arguments, or ``global_config`` entries under ``"asyncz."``):

    :param timezone: zone for naive datetimes and triggers (default: the local zone)
    :param identity: this scheduler's name as the owner of store leases and in events
    :param stores: instance alias -> store instance, plugin alias, or config dict with
        ``"type"`` (plugin alias) or ``"class"`` (``"module:Class"``) plus constructor options
    :param executors: the same for executors
    :param task_defaults: defaults for tasks added without them: ``mistrigger_grace_time``
        (``None``: never too late to run), ``coalesce`` (True), ``max_instances`` (1),
        ``timeout`` (None)
    :param logger_name: the scheduler logs to ``asyncz.schedulers.<logger_name>``
    :param lock_path: a file-lock path template (``{store}``, ``{pgrp}``, ``{ppid}``); each
        store is then processed only by the process holding its lock
    :param startup_delay: seconds after start before the first run of tasks stored at start
        (default 0, or 1 with ``lock_path``), so that restarting workers do not stampede
    :param store_retry_interval: seconds before a store is tried again after an error or a
        lock held elsewhere (default 10)
    :param plugin_registry: where plugin aliases are looked up (default: the process-wide one)
    """

    default_executor_alias: ClassVar[str] = "asyncio"
    default_store_alias: ClassVar[str] = "memory"
    option_names: ClassVar[frozenset[str]] = frozenset(
        {
            "timezone",
            "identity",
            "stores",
            "executors",
            "task_defaults",
            "logger_name",
            "lock_path",
            "startup_delay",
            "store_retry_interval",
            "plugin_registry",
        }
    )

    def __init__(self, global_config: Mapping[str, Any] | None = None, **options: Any) -> None:
        self._lock = threading.RLock()
        # Held by a pass while it hands out and takes back due tasks, and by run_task while
        # it runs due times by hand: both must not take the same due time.
        self._due_lock = threading.RLock()
        self._listeners: list[tuple[Callable[[Any], Any], int]] = []
        self._listener_mask = 0
        # Tasks added before start, by id (in the order they were added).
        self._pending: dict[str, _PendingTask] = {}
        self._stores: dict[str, Store] = {}
        self._executors: dict[str, Executor] = {}
        self._store_locks: dict[str, LockProtectedProtocol] = {}
        self._start_count = 0
        self._submitted_count = 0
        self.started_at: datetime | None = None
        self.state = SchedulerState.STOPPED
        self.setup(global_config, **options)

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "Schedulers cannot be serialized; give tasks references to module-level functions "
            "instead of objects that hold a scheduler"
        )

    # -- configuration ---------------------------------------------------------------------

    def setup(
        self,
        global_config: Mapping[str, Any] | None = None,
        prefix: str = "asyncz.",
        **options: Any,
    ) -> None:
        """(Re)configure the scheduler; only while it is stopped. Stores and executors added
        before are replaced by the configured ones."""
        if self.running:
            raise SchedulerAlreadyRunningError
        config = parse_global_config(global_config or {}, prefix)
        merged = coerce_options(merge_options(config, options))
        unknown = set(merged) - self.option_names
        if unknown:
            raise TypeError(
                f"unknown scheduler option(s) {', '.join(sorted(map(repr, unknown)))}; valid "
                f"options are {', '.join(sorted(self.option_names))}"
            )
        # All or nothing: a failed setup leaves the scheduler configured as it was.
        snapshot = dict(self.__dict__)
        stores, executors = dict(self._stores), dict(self._executors)
        try:
            self._configure(merged)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            self._stores.clear()
            self._stores.update(stores)
            self._executors.clear()
            self._executors.update(executors)
            raise

    def _configure(self, options: dict[str, Any]) -> None:
        registry = options.get("plugin_registry")
        if registry is not None and not isinstance(registry, PluginRegistry):
            raise TypeError(f"plugin_registry must be a PluginRegistry, got {registry!r}")
        self.plugins: PluginRegistry = registry or default_registry()
        self.timezone: tzinfo = to_timezone(options.get("timezone"))
        identity = options.get("identity")
        if identity is not None and (not isinstance(identity, str) or not identity.strip()):
            raise ValueError(f"identity must be a non-empty string, got {identity!r}")
        self.identity: str = identity or f"{type(self).__name__}-{uuid.uuid4().hex[:12]}"
        logger_name = options.get("logger_name")
        if logger_name is not None and not isinstance(logger_name, str):
            raise TypeError(f"logger_name must be a string, got {logger_name!r}")
        self.logger = logging.getLogger(
            f"asyncz.schedulers.{logger_name}" if logger_name else "asyncz.schedulers"
        )
        lock_path = options.get("lock_path") or ""
        if not isinstance(lock_path, str):
            raise TypeError(f"lock_path must be a path template string, got {lock_path!r}")
        self.lock_path: str = lock_path
        delay = options.get("startup_delay")
        self.startup_delay = _positive_or_zero(
            "startup_delay", (1.0 if lock_path else 0.0) if delay is None else delay
        )
        retry = options.get("store_retry_interval")
        self.store_retry_interval = _positive_or_zero(
            "store_retry_interval", 10.0 if retry is None else retry
        )
        if self.store_retry_interval == 0:
            raise ValueError("store_retry_interval must be > 0, got 0")
        self.task_defaults = self._check_task_defaults(options.get("task_defaults") or {})
        self._stores.clear()
        self._executors.clear()
        for kind, adder in (("stores", self.add_store), ("executors", self.add_executor)):
            specs = options.get(kind) or {}
            if not isinstance(specs, Mapping):
                raise TypeError(f"{kind} must be a mapping of alias -> config, got {specs!r}")
            for alias, spec in specs.items():
                adder(spec, alias)

    @staticmethod
    def _check_task_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(defaults, Mapping):
            raise TypeError(f"task_defaults must be a mapping, got {defaults!r}")
        unknown = set(defaults) - _TASK_DEFAULT_KEYS
        if unknown:
            raise ValueError(
                f"unknown task_defaults key(s) {', '.join(sorted(map(repr, unknown)))}; valid "
                f"keys are {', '.join(sorted(_TASK_DEFAULT_KEYS))}"
            )
        merged: dict[str, Any] = {
            "mistrigger_grace_time": None,
            "coalesce": True,
            "max_instances": 1,
            "timeout": None,
        }
        merged.update(defaults)
        Task(**merged)  # the Task's own validators say what is wrong
        return merged

    # -- state -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state != SchedulerState.STOPPED

    def _require_running(self) -> None:
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError

    def pause(self) -> None:
        """Stop processing tasks until :meth:`resume` (running work carries on)."""
        self._require_running()
        self.state = SchedulerState.PAUSED
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_PAUSED))

    def resume(self) -> None:
        """Process tasks again after :meth:`pause`."""
        self._require_running()
        self.state = SchedulerState.RUNNING
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_RESUMED))
        self.wakeup()

    def wakeup(self, when: datetime | None = None) -> None:
        """Make the loop look at the stores again (if ``when`` is sooner than it would)."""

    # -- plugins ---------------------------------------------------------------------------

    def _create_plugin(self, kind: str, spec: Any, options: Mapping[str, Any]) -> Any:
        """An instance from an instance, a plugin alias or a ``{"type"|"class": ...}`` dict."""
        if isinstance(spec, Mapping):
            config = dict(spec)
            config.update(options)
            plugin_alias = config.pop("type", None)
            reference = config.pop("class", None)
            if (plugin_alias is None) == (reference is None):
                raise ValueError(
                    f"a {kind} config needs exactly one of 'type' (a plugin alias) or 'class' "
                    f"(a 'module:Class' reference), got {spec!r}"
                )
            if plugin_alias is not None:
                cls = self.plugins.resolve(kind, plugin_alias)
            else:
                cls = ref_to_obj(reference)
            return cls(**config)
        if isinstance(spec, str):
            return self.plugins.resolve(kind, spec)(**options)
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to a {kind} instance")
        if inspect.isclass(spec):
            raise TypeError(
                f"expected a {kind} instance, a plugin alias or a config dict, got the class "
                f"{spec.__name__}; instantiate it first"
            )
        return spec

    def add_store(self, store: Any, alias: str = "default", **options: Any) -> None:
        """Add a store under an instance alias; it is started at once if the scheduler runs."""
        _check_alias("store", alias)
        instance = self._create_plugin("store", store, options)
        if not isinstance(instance, Store):
            raise TypeError(f"{instance!r} is not a store (see asyncz.core.protocols.Store)")
        with self._lock:
            if alias in self._stores:
                raise ValueError(f"a store with the alias {alias!r} already exists")
            if self.running:
                instance.start(self, alias)
                self._store_locks[alias] = self._make_store_lock(alias)
            self._stores[alias] = instance
        self._dispatch(events.SchedulerEvent(code=events.STORE_ADDED, alias=alias))
        if self.running:
            self.wakeup()

    def remove_store(self, alias: str, shutdown: bool = True) -> None:
        with self._lock:
            store = self.lookup_store(alias)
            del self._stores[alias]
            self._store_locks.pop(alias, None)
        if shutdown:
            store.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.STORE_REMOVED, alias=alias))

    def add_executor(self, executor: Any, alias: str = "default", **options: Any) -> None:
        """Add an executor under an instance alias; started at once if the scheduler runs."""
        _check_alias("executor", alias)
        instance = self._create_plugin("executor", executor, options)
        if not isinstance(instance, Executor):
            raise TypeError(f"{instance!r} is not an executor (see asyncz.core.protocols)")
        with self._lock:
            if alias in self._executors:
                raise ValueError(f"an executor with the alias {alias!r} already exists")
            if self.running:
                instance.start(self, alias)
            self._executors[alias] = instance
        self._dispatch(events.SchedulerEvent(code=events.EXECUTOR_ADDED, alias=alias))

    def remove_executor(self, alias: str, shutdown: bool = True) -> None:
        with self._lock:
            executor = self.lookup_executor(alias)
            del self._executors[alias]
        if shutdown:
            executor.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.EXECUTOR_REMOVED, alias=alias))

    def _make_store_lock(self, alias: str) -> LockProtectedProtocol:
        if not self.lock_path:
            return NullLockProtected()
        lock = FileLockProtected(self.lock_path.replace("{store}", alias))
        try:
            with lock.protected(blocking=False):
                pass  # a path that cannot be locked must fail start(), not every pass after
        except OSError as exc:
            raise ValueError(
                f"lock_path={self.lock_path!r} cannot be used for store {alias!r}: {exc}"
            ) from exc
        return lock

    def lookup_store(self, alias: str) -> Store:
        """The store added under ``alias``; ``KeyError`` naming the aliases there are."""
        _check_alias("store", alias)
        try:
            return self._stores[alias]
        except KeyError:
            raise KeyError(
                f"no store with the alias {alias!r}; stores: {sorted(self._stores) or 'none'}"
            ) from None

    def lookup_executor(self, alias: str) -> Executor:
        """The executor added under ``alias``; ``KeyError`` naming the aliases there are."""
        _check_alias("executor", alias)
        try:
            return self._executors[alias]
        except KeyError:
            raise KeyError(
                f"no executor with the alias {alias!r}; executors: "
                f"{sorted(self._executors) or 'none'}"
            ) from None

    def create_trigger(self, trigger: Any, trigger_args: Mapping[str, Any]) -> Trigger:
        """A trigger from an instance, or from a plugin alias and its keyword arguments."""
        if trigger is None:
            trigger = "date"
        if isinstance(trigger, str):
            cls = self.plugins.resolve("trigger", trigger)
            args = dict(trigger_args)
            if "timezone" not in args and _accepts(cls, "timezone"):
                args["timezone"] = self.timezone
            return cls(**args)  # type: ignore[no-any-return]
        if trigger_args:
            raise TypeError(
                f"trigger arguments {sorted(trigger_args)} were given with a trigger instance "
                f"{trigger!r}; pass a trigger alias such as 'interval' to use them"
            )
        if not isinstance(trigger, Trigger):
            raise TypeError(
                f"trigger must be a trigger instance or a plugin alias, got {trigger!r}"
            )
        return trigger

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[Any], Any], mask: int = events.ALL_EVENTS) -> None:
        """Call ``callback(event)`` for every event whose code is in ``mask``."""
        if not callable(callback):
            raise TypeError(f"a listener must be callable, got {callback!r}")
        if isinstance(mask, bool) or not isinstance(mask, int) or mask <= 0:
            raise ValueError(f"mask must be a positive int of event codes, got {mask!r}")
        with self._lock:
            self._listeners.append((callback, mask))
            self._listener_mask |= mask

    def remove_listener(self, callback: Callable[[Any], Any]) -> bool:
        with self._lock:
            kept = [(cb, mask) for cb, mask in self._listeners if cb != callback]
            removed = len(kept) != len(self._listeners)
            self._listeners = kept
            self._listener_mask = 0
            for _, mask in kept:
                self._listener_mask |= mask
        return removed

    def wants_event(self, code: int) -> bool:
        """Whether any listener listens for ``code`` (saves building unwanted events)."""
        return bool(self._listener_mask & code)

    def dispatch_event(self, event: events.SchedulerEvent) -> None:
        """Call the listeners for ``event``; a failing listener is logged, never propagated."""
        for callback, mask in self._listeners:
            if event.code & mask:
                try:
                    callback(event)
                except Exception:
                    self.logger.exception("Error notifying listener %r of %r", callback, event)

    _dispatch = dispatch_event

    def _task_event(self, code: int, task_id: str, store: str | None) -> None:
        if self._listener_mask & code:
            self.dispatch_event(
                events.TaskEvent(
                    code=code,
                    alias=store,
                    task_id=task_id,
                    store=store,
                    scheduler_identity=self.identity,
                )
            )

    # -- the task API ----------------------------------------------------------------------

    def add_task(
        self,
        fn_or_task: Any = None,
        trigger: Any = None,
        args: Any = None,
        kwargs: Any = None,
        id: str | None = None,
        name: str | None = None,
        mistrigger_grace_time: Any = undefined,
        coalesce: Any = undefined,
        max_instances: Any = undefined,
        next_run_time: Any = undefined,
        store: str | None = None,
        executor: str | None = None,
        replace_existing: bool = False,
        timeout: Any = undefined,
        **trigger_args: Any,
    ) -> Task:
        """Schedule ``fn_or_task``: a callable, a ``"module:qualname"`` or a :class:`Task`.

        ``trigger`` is a trigger instance or a plugin alias whose keyword arguments are the
        remaining keyword arguments (``add_task(fn, "interval", seconds=5)``); no trigger means
        "run once, now". ``next_run_time=None`` adds the task paused. Before :meth:`start` the
        task is kept and stored when the scheduler starts.

        Without a callable (``@scheduler.add_task("interval", seconds=5)`` or
        ``@scheduler.add_task(trigger="cron", hour=1)``) it returns a decorator.
        """
        if not isinstance(replace_existing, bool):
            raise TypeError(f"replace_existing must be True or False, got {replace_existing!r}")
        if "fn" in trigger_args:  # Asyncz's deprecated keyword for the callable
            if fn_or_task is not None:
                raise TypeError("add_task() got the callable twice: positionally and as fn=")
            warnings.warn(
                "add_task(fn=...) is deprecated; pass the callable as the first argument",
                DeprecationWarning,
                stacklevel=2,
            )
            fn_or_task = trigger_args.pop("fn")
        if store is not None:
            _check_alias("store", store)
        given = {
            "args": args,
            "kwargs": kwargs,
            "id": id,
            "name": name,
            "mistrigger_grace_time": mistrigger_grace_time,
            "coalesce": coalesce,
            "max_instances": max_instances,
            "executor": executor,
            "timeout": timeout,
        }
        changes = {
            key: value
            for key, value in given.items()
            if value is not undefined and value is not None
        }
        for nullable in ("mistrigger_grace_time", "timeout"):
            if given[nullable] is None:
                changes[nullable] = None
        if isinstance(fn_or_task, str) and ":" not in fn_or_task and trigger is None:
            # @scheduler.add_task("interval", seconds=5): the string is a trigger alias, since a
            # callable reference always has a colon ("module:qualname").
            fn_or_task, trigger = None, fn_or_task
        if fn_or_task is None:
            return self._decorator(
                changes,
                trigger,
                trigger_args,
                next_run_time,
                store,
                replace_existing,
                explicit_id=id is not None,
            )
        if isinstance(fn_or_task, Task):
            task = fn_or_task
            queued = self._pending.get(task.id)
            if task.submitted or (queued is not None and queued.task is task):
                raise ValueError(f"task {task.id!r} has already been added to a scheduler")
            if task.fn is None:
                raise TypeError(f"task {task.id!r} has no fn to run")
            if trigger is not None or trigger_args or task.trigger is None:
                changes["trigger"] = self.create_trigger(trigger, trigger_args)
            task.update_task(**changes)
        else:
            new_trigger = self.create_trigger(trigger, trigger_args)
            fields = {**self.task_defaults, **changes}
            if (
                getattr(new_trigger, "allow_mistrigger_by_default", False)
                and mistrigger_grace_time is undefined
            ):
                fields["mistrigger_grace_time"] = None
            task = Task(fn=fn_or_task, trigger=new_trigger, **fields)

        compute = next_run_time is undefined
        if not compute:
            # A naive time means wall time in the scheduler's zone (the task is not bound yet).
            task.update_task(
                next_run_time=to_datetime(next_run_time, self.timezone, "next_run_time")
            )
        if task.fn is not None:
            check_callable_args(task.fn, task.args, task.kwargs)
        task.store_alias = store or task.store_alias or "default"
        with self._lock:
            if self.running:
                self._check_aliases(task)
                self._store_task(task, replace_existing, compute, datetime.now(UTC))
            else:
                task.scheduler = self
                task.pending = True
                if task.id in self._pending and not replace_existing:
                    raise ConflictIdError(task.id)
                check = getattr(self._stores.get(task.store_alias or ""), "check_task", None)
                if check is not None:
                    check(task)  # refuse now what the store would refuse at start
                self._pending[task.id] = _PendingTask(task, replace_existing, compute)
                self.logger.info(
                    "Adding task %r tentatively; it will be stored when the scheduler starts",
                    task.name,
                )
        return task

    def _decorator(
        self,
        changes: dict[str, Any],
        trigger: Any,
        trigger_args: Mapping[str, Any],
        next_run_time: Any,
        store: str | None,
        replace_existing: bool,
        explicit_id: bool,
    ) -> Task:
        fields = {**self.task_defaults, **changes}
        template = Task(trigger=self.create_trigger(trigger, trigger_args), **fields)
        template.scheduler = self
        template.store_alias = store
        template.decorator_options = {
            "store": store,
            "replace_existing": replace_existing,
            "explicit_id": explicit_id,
            "next_run_time": None if next_run_time is undefined else (next_run_time,),
        }
        return template

    def _check_aliases(self, task: Task) -> None:
        self.lookup_store(task.store_alias or "default")
        self.lookup_executor(task.executor)

    def _store_task(
        self, task: Task, replace_existing: bool, compute_next: bool, now: datetime
    ) -> None:
        """Store ``task`` (running scheduler); ``now`` is when its first run may be."""
        alias = self._prepare_to_store(task, compute_next, now)
        store = self.lookup_store(alias)
        try:
            store.add_task(task)
        except ConflictIdError:
            task.pending, task.submitted = True, False
            if not replace_existing:
                raise
            store.update_task(task)
            task.bind(self, alias)
        self._stored(task, alias)

    def _prepare_to_store(self, task: Task, compute_next: bool, now: datetime) -> str:
        assert task.trigger is not None
        if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS:
            object.__setattr__(task, "next_run_time", None)  # it runs at shutdown, not before
        elif compute_next:
            next_time = task.trigger.get_next_trigger_time(self.timezone, None, now)
            object.__setattr__(task, "next_run_time", next_time)
        alias = task.store_alias or "default"
        task.bind(self, alias)
        return alias

    def _stored(self, task: Task, alias: str) -> None:
        self._stored_many([task], alias)

    def _stored_many(self, tasks: list[Task], alias: str) -> None:
        """Log and report tasks just stored, and wake the loop up once for the soonest."""
        if self.logger.isEnabledFor(logging.INFO):
            for task in tasks:
                self.logger.info("Added task %r to store %r", task.name, alias)
        if self._listener_mask & events.TASK_ADDED:
            for task in tasks:
                self._task_event(events.TASK_ADDED, task.id, alias)
        times = [t.next_run_time for t in tasks if t.next_run_time is not None]
        if times:
            self.wakeup(min(times, key=utc_timestamp_us))

    def _store_pending(self, first_run: datetime) -> None:
        """Store the tasks added before start: in one bulk call per store that has
        ``add_tasks`` (one transaction in a database), else one by one."""
        batches: dict[str, list[_PendingTask]] = {}
        checked: set[tuple[str, str]] = set()
        for item in self._pending.values():
            aliases = (item.task.store_alias or "default", item.task.executor)
            if aliases not in checked:
                self._check_aliases(item.task)
                checked.add(aliases)
            batches.setdefault(aliases[0], []).append(item)
        for alias, items in batches.items():
            add_tasks = getattr(self._stores[alias], "add_tasks", None)
            if add_tasks is not None and len(items) > 1:
                for item in items:
                    self._prepare_to_store(item.task, item.compute_next_run_time, first_run)
                try:
                    add_tasks([item.task for item in items])
                except BaseException as exc:
                    for item in items:  # not stored: still pending
                        item.task.pending, item.task.submitted = True, False
                    if not isinstance(exc, ConflictIdError):
                        raise
                    # All or nothing: some are stored already (an earlier run); go one by one.
                else:
                    self._stored_many([item.task for item in items], alias)
                    for item in items:
                        del self._pending[item.task.id]
                    continue
            for item in items:
                try:
                    self._store_task(
                        item.task, item.replace_existing, item.compute_next_run_time, first_run
                    )
                except ConflictIdError:
                    # A persistent store has it from an earlier run: keep that one.
                    self.logger.info("Task %r is already stored; keeping it", item.task.id)
                del self._pending[item.task.id]

    def _find(self, task_id: Any, store: str | None) -> tuple[Task, str | None]:
        """The task and the alias of the store holding it (``None`` while pending)."""
        if isinstance(task_id, Task):
            task_id = task_id.id
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"a task id must be a non-empty string, got {task_id!r}")
        with self._lock:
            pending = self._pending.get(task_id)
            if pending is not None and store in (None, pending.task.store_alias):
                return pending.task, None
            if store is not None:
                found = self.lookup_store(store).lookup_task(task_id)
                if found is not None:
                    return found, store
            else:
                for alias, candidate in self._stores.items():
                    found = candidate.lookup_task(task_id)
                    if found is not None:
                        return found, alias
        raise TaskLookupError(task_id, store)

    def lookup_task(self, task_id: str, store: str | None = None) -> tuple[Task, str | None]:
        """The task and the alias of its store (``None`` while pending), or
        :class:`TaskLookupError`."""
        return self._find(task_id, store)

    def get_task(self, task_id: str, store: str | None = None) -> Task | None:
        """The task with ``task_id``, or ``None``."""
        try:
            return self._find(task_id, store)[0]
        except TaskLookupError:
            return None

    def get_tasks(self, store: str | None = None) -> list[Task]:
        """Pending tasks, then every stored task (by next run time, paused last)."""
        with self._lock:
            tasks = [p.task for p in self._pending.values() if store in (None, p.task.store_alias)]
            stores = [self.lookup_store(store)] if store else list(self._stores.values())
        for candidate in stores:
            tasks.extend(candidate.get_all_tasks())
        return tasks

    def update_task(self, task_id: Any, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a task, validated all together before any is applied."""
        with self._lock:
            task, alias = self._find(task_id, store)
            if "executor" in changes and self.running:
                self.lookup_executor(changes["executor"])
            if changes.get("next_run_time") is not None:
                changes["next_run_time"] = to_datetime(
                    changes["next_run_time"], self.timezone, "next_run_time"
                )
            validated = task.validate_changes(changes)
            new_fn = validated.get("fn", task.fn)
            if {"fn", "args", "kwargs"} & set(validated) and new_fn is not None:
                check_callable_args(
                    new_fn,
                    validated.get("args", task.args),
                    validated.get("kwargs", task.kwargs),
                )
            if alias is None:
                task.update_task(**validated)
                if "next_run_time" in validated:
                    # Set by the user: storing it at start must not recompute it.
                    self._pending[task.id].compute_next_run_time = False
                return task
            target = self.lookup_store(alias)
            previous = {name: getattr(task, name) for name in validated}
            task.update_task(**validated)
            try:
                target.update_task(task)
            except BaseException:
                task.update_task(**previous)  # the store kept the old version: so do we
                raise
        self._task_event(events.TASK_MODIFIED, task.id, alias)
        if task.next_run_time is not None:
            self.wakeup(task.next_run_time)
        return task

    def reschedule_task(
        self, task_id: Any, store: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> Task:
        """Give a task a new trigger; its next run time is computed from now (a paused task is
        resumed)."""
        new_trigger = self.create_trigger(trigger, trigger_args)
        next_time = new_trigger.get_next_trigger_time(self.timezone, None, datetime.now(UTC))
        return self.update_task(task_id, store, trigger=new_trigger, next_run_time=next_time)

    def pause_task(self, task_id: Any, store: str | None = None) -> Task:
        """Keep the task but stop running it."""
        return self.update_task(task_id, store, next_run_time=None)

    def resume_task(self, task_id: Any, store: str | None = None) -> Task | None:
        """Run the task again from now on (runs missed while paused are not replayed);
        returns ``None`` if its trigger has nothing left, in which case it is removed."""
        task, alias = self._find(task_id, store)
        assert task.trigger is not None
        next_time = task.trigger.get_next_trigger_time(self.timezone, None, datetime.now(UTC))
        if next_time is None:
            self.delete_task(task.id, alias)
            return None
        return self.update_task(task.id, alias, next_run_time=next_time)

    def delete_task(self, task_id: Any, store: str | None = None) -> None:
        """Remove a task; ``TaskLookupError`` if there is none with that id."""
        with self._lock:
            task, alias = self._find(task_id, store)
            if alias is None:
                del self._pending[task.id]
            else:
                self.lookup_store(alias).delete_task(task.id)
        self.logger.info("Removed task %r", task.name)
        self._task_event(events.TASK_REMOVED, task.id, alias)

    def remove_all_tasks(self, store: str | None = None) -> None:
        """Remove every task, of one store or of all of them."""
        with self._lock:
            if store is None:
                self._pending.clear()
                targets = list(self._stores.values())
            else:
                targets = [self.lookup_store(store)]
                self._pending = {
                    i: p for i, p in self._pending.items() if p.task.store_alias != store
                }
        for target in targets:
            target.remove_all_tasks()
        self._dispatch(events.SchedulerEvent(code=events.ALL_TASKS_REMOVED, alias=store))

    def run_task(
        self,
        task_id: Any,
        store: str | None = None,
        *,
        force: bool = True,
        remove_finished: bool = True,
    ) -> Task | None:
        """Run a task now, outside its schedule.

        Run times that are due are run (coalesced as usual) and the schedule moves on past
        them; with nothing due, ``force`` runs it once now without touching its schedule.
        A task whose trigger is exhausted by this is removed, or kept paused with
        ``remove_finished=False``. Returns the task, or ``None`` if it was removed.
        Raises :class:`MaximumInstancesError` when it already runs ``max_instances`` times.
        """
        self._require_running()
        # Not while a pass holds due tasks: it could take the due times this call computes
        # and run them too. After the pass, the task read here has moved past them.
        with self._due_lock:
            return self._run_task(task_id, store, force, remove_finished)

    def _run_task(
        self, task_id: Any, store: str | None, force: bool, remove_finished: bool
    ) -> Task | None:
        task, alias = self._find(task_id, store)
        if alias is None:
            raise TaskLookupError(task.id, store)
        executor = self.lookup_executor(task.executor)
        now = datetime.now(UTC)
        run_times: list[datetime] = []
        next_time = task.next_run_time
        if task.next_run_time is not None and task.next_run_time <= now:
            run_times, next_time = self._compute_runs(task, now)
        consumed = bool(run_times)
        if not run_times:
            if not force:
                return task
            run_times = [now]
        coalesced = 0
        if task.coalesce and len(run_times) > 1:
            coalesced, run_times = len(run_times) - 1, run_times[-1:]
        try:
            executor.send_task(task, run_times)
        except MaximumInstancesError:
            self._submission_event(
                events.TASK_MAX_INSTANCES, task, alias, run_times, coalesced, "manual"
            )
            raise
        self._submitted_count += 1
        self._submission_event(events.TASK_SUBMITTED, task, alias, run_times, coalesced, "manual")
        if consumed:
            if next_time is None and remove_finished:
                self.delete_task(task.id, alias)
                return None
            self.update_task(task.id, alias, next_run_time=next_time)
        return task

    # -- inspection ------------------------------------------------------------------------

    def get_task_info(self, task_id: str, store: str | None = None) -> TaskInfo | None:
        """A snapshot of one task, or ``None``."""
        task = self.get_task(task_id, store)
        return task.snapshot() if task is not None else None

    def get_task_infos(
        self,
        store: str | None = None,
        *,
        schedule_state: str | None = None,
        executor: str | None = None,
        trigger: str | None = None,
        q: str | None = None,
        sort_by: str = "next_run_time",
        descending: bool = False,
    ) -> list[TaskInfo]:
        """Snapshots of tasks, filtered and sorted.

        :param schedule_state: ``"pending"``, ``"scheduled"`` or ``"paused"``
        :param trigger: a trigger plugin alias, such as ``"interval"``
        :param q: text to look for (case-insensitive) in id, name, callable and trigger
        :param sort_by: one of id, name, next_run_time, schedule_state, executor, store,
            trigger
        """
        if schedule_state is not None and schedule_state not in _STATE_ORDER:
            raise ValueError(
                f"schedule_state={schedule_state!r} is not one of {', '.join(_STATE_ORDER)}"
            )
        if sort_by not in _SORT_KEYS:
            raise ValueError(f"sort_by={sort_by!r} is not one of {', '.join(_SORT_KEYS)}")
        infos = [task.snapshot() for task in self.get_tasks(store)]
        needle = q.lower() if q else None

        def keep(info: TaskInfo) -> bool:
            if schedule_state is not None and info.schedule_state != schedule_state:
                return False
            if executor is not None and info.executor != executor:
                return False
            if trigger is not None and info.trigger_alias != trigger:
                return False
            if needle is not None:
                text = " ".join(
                    str(part) for part in (info.id, info.name, info.callable_name, info.trigger)
                ).lower()
                return needle in text
            return True

        def key(info: TaskInfo) -> tuple[Any, ...]:
            if sort_by == "next_run_time":
                moment = info.next_run_time
                return (moment is None, moment.timestamp() if moment else 0.0, info.id)
            if sort_by == "schedule_state":
                return (_STATE_ORDER[info.schedule_state], info.id)
            value = getattr(info, sort_by)
            return (value is None, str(value or ""), info.id)

        return sorted(filter(keep, infos), key=key, reverse=descending)

    def preview_task_runs(
        self,
        task_id: str,
        store: str | None = None,
        *,
        count: int = 5,
        now: datetime | None = None,
    ) -> TaskRunPreview | None:
        """The next ``count`` (1-50) run times of a task, without changing anything."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise ValueError(f"count must be an integer from 1 to 50, got {count!r}")
        task = self.get_task(task_id, store)
        if task is None:
            return None
        assert task.trigger is not None
        moment = now or datetime.now(UTC)
        next_time = task.next_run_time
        if next_time is None or task.pending:
            next_time = task.trigger.get_next_trigger_time(self.timezone, None, moment)
        run_times: list[datetime] = []
        while next_time is not None and len(run_times) < count:
            run_times.append(next_time)
            next_time = task.trigger.get_next_trigger_time(self.timezone, next_time, moment)
        return TaskRunPreview(
            task_id=task.id, run_times=tuple(run_times), exhausted=next_time is None
        )

    def get_scheduler_info(self) -> SchedulerInfo:
        """A snapshot of the scheduler: state, configuration and task counts."""
        counts = {"pending": 0, "scheduled": 0, "paused": 0}
        for task in self.get_tasks():
            counts[task.schedule_state] += 1
        counts["total"] = sum(counts.values())
        started = self.started_at
        return SchedulerInfo(
            identity=self.identity,
            state=self.state,
            state_label=self.state.name.lower(),
            running=self.running,
            started_at=started,
            uptime_seconds=(datetime.now(UTC) - started).total_seconds()
            if started and self.running
            else None,
            timezone=_zone_label(self.timezone),
            executors=tuple(sorted(self._executors)),
            stores=tuple(sorted(self._stores)),
            task_counts=counts,
            submitted_count=self._submitted_count,
            store_retry_interval=self.store_retry_interval,
            startup_delay=self.startup_delay,
        )

    # -- starting and stopping -------------------------------------------------------------

    def _start_components(self) -> None:
        """Start executors and stores and store the pending tasks; all or nothing started.

        If anything fails (a database that is down, a pending task naming a missing store),
        what was started is shut down again, the scheduler stays stopped and the tasks not yet
        stored stay pending, so that a later ``start()`` can try again.
        """
        started: list[Executor | Store] = []
        with self._lock:
            try:
                if "default" not in self._executors:
                    self.add_executor(self.default_executor_alias, "default")
                if "default" not in self._stores:
                    self.add_store(self.default_store_alias, "default")
                for alias, executor in self._executors.items():
                    executor.start(self, alias)
                    started.append(executor)
                for alias, store in self._stores.items():
                    store.start(self, alias)
                    started.append(store)
                    self._store_locks[alias] = self._make_store_lock(alias)
                self.state = SchedulerState.RUNNING
                self.started_at = datetime.now(UTC)
                self._store_pending(self.started_at + timedelta(seconds=self.startup_delay))
            except BaseException:
                self.state = SchedulerState.STOPPED
                self.started_at = None
                for component in reversed(started):
                    try:
                        component.shutdown()
                    except Exception:
                        self.logger.exception("Error undoing the start of %r", component)
                raise
        self.logger.info("Scheduler started")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_START))

    def _shutdown_tasks(self) -> list[tuple[Task, str]]:
        """Tasks that run once at shutdown (shutdown trigger), with their store aliases."""
        found: list[tuple[Task, str]] = []
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            try:
                tasks = store.get_all_tasks()
            except Exception:
                self.logger.exception("Cannot read store %r for shutdown tasks", alias)
                continue
            found.extend(
                (task, alias)
                for task in tasks
                if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS
            )
        return found

    def _finish_shutdown_task(self, task: Task, alias: str) -> None:
        try:
            self.lookup_store(alias).delete_task(task.id)
        except (TaskLookupError, KeyError):
            return
        self._task_event(events.TASK_REMOVED, task.id, alias)

    def _shutdown_executors(self, wait: bool, timeout: float | None) -> None:
        """Shut every executor down; with a timeout, stop waiting for them after it."""
        with self._lock:
            executors = list(self._executors.items())
        if timeout is None:
            for _, executor in executors:
                executor.shutdown(wait)
            return
        deadline = time.monotonic() + timeout
        threads = []
        for alias, executor in executors:
            thread = threading.Thread(
                target=self._shutdown_one_executor,
                args=(alias, executor, wait),
                name=f"asyncz-shutdown-{alias}",
                daemon=True,
            )
            thread.start()
            threads.append((alias, thread))
        for alias, thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
            if thread.is_alive():
                self.logger.warning(
                    "Executor %r still has running work after the %.1f s shutdown timeout; "
                    "not waiting for it",
                    alias,
                    timeout,
                )

    def _shutdown_one_executor(self, alias: str, executor: Executor, wait: bool) -> None:
        try:
            executor.shutdown(wait)
        except BaseException:  # e.g. cancelled because the loop stopped after the timeout
            self.logger.debug("Executor %r did not shut down cleanly", alias, exc_info=True)

    def _shutdown_stores(self) -> None:
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            try:
                store.shutdown()
            except Exception:
                self.logger.exception("Error shutting down store %r", alias)

    def _mark_stopped(self) -> bool:
        """Count one shutdown; True when it is the one that stops the scheduler."""
        with self._lock:
            if not self._start_count:
                raise SchedulerNotRunningError
            if getattr(self, "_starting", False):  # (only the asyncio schedulers start slowly)
                raise SchedulerNotRunningError(
                    "The scheduler is still starting; shut it down once start() has returned."
                )
            self._start_count -= 1
            if self._start_count:
                return False
            self.state = SchedulerState.STOPPED
        return True

    def _shutdown_finished(self) -> None:
        self.logger.info("Scheduler has been shut down")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_SHUTDOWN))

    # -- the store pass --------------------------------------------------------------------

    def _compute_runs(
        self, task: Task, now: datetime, now_us: int | None = None
    ) -> tuple[list[datetime], datetime | None]:
        """The due run times of a task and its next run time after ``now`` (``now_us``: the
        same instant as :func:`utc_timestamp_us` gives it, when the caller has it already)."""
        trigger = task.trigger
        assert trigger is not None
        run_times: list[datetime] = []
        next_time = task.next_run_time
        if now_us is None:
            now_us = utc_timestamp_us(now)  # datetimes of one zone would compare ignoring fold
        while next_time is not None and utc_timestamp_us(next_time) <= now_us:
            run_times.append(next_time)
            next_time = trigger.get_next_trigger_time(self.timezone, next_time, now)
        return run_times, next_time

    def process_due(
        self, now: datetime
    ) -> tuple[list[tuple[Task, str, list[datetime], int]], datetime | None, bool]:
        """Acquire and release every store's due tasks; blocking store I/O happens here.

        Returns the submissions to make (task, store alias, run times, coalesced count), the
        earliest time any store needs attention again, and whether a store has more due tasks.
        A store that fails, or whose lock another process holds, is looked at again after
        ``store_retry_interval``.
        """
        submissions: list[tuple[Task, str, list[datetime], int]] = []
        earliest: datetime | None = None
        more = False
        retry_at = (now + timedelta(seconds=self.store_retry_interval)).astimezone(UTC)
        with self._lock:
            stores = [
                (alias, store, self._store_locks.get(alias) or NullLockProtected())
                for alias, store in self._stores.items()
            ]
        for alias, store, lock in stores:
            try:
                with lock.protected(blocking=False) as obtained:
                    if not obtained:  # another process works on this store now
                        next_time: datetime | None = retry_at
                    else:
                        with self._due_lock:
                            next_time, has_more = self._process_store(
                                alias, store, now, submissions
                            )
                        more = more or has_more
            except Exception:
                self.logger.exception("Error processing store %r", alias)
                next_time = retry_at
            if next_time is not None:
                # In UTC: datetimes sharing a zone compare by wall time, ignoring DST's fold.
                next_time = next_time.astimezone(UTC)
                if earliest is None or next_time < earliest:
                    earliest = next_time
        return submissions, earliest, more

    def _process_store(
        self,
        alias: str,
        store: Store,
        now: datetime,
        submissions: list[tuple[Task, str, list[datetime], int]],
    ) -> tuple[datetime | None, bool]:
        """One store's part of a pass; raises if the store fails (the caller retries later)."""
        acquired = store.acquire_due_tasks(now, self.identity, ACQUIRE_BATCH, LEASE_SECONDS)
        computed: dict[str, tuple[Task, list[datetime], datetime | None]] = {}
        now_us = utc_timestamp_us(now)
        for task in acquired:
            if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS:
                continue  # runs at shutdown only; never released, so never deleted here
            try:
                run_times, next_time = self._compute_runs(task, now, now_us)
            except Exception:
                # The lease runs out and the task is retried: it is never lost.
                self.logger.exception("Trigger of task %r failed", task.id)
                continue
            computed[task.id] = (task, run_times, next_time)
        # Released before the runs start, so that a crash in between loses a run rather than
        # running it twice. A failed release runs nothing: the leases run out and the tasks
        # are handed out again, once.
        released = store.release_tasks(
            self.identity, {task_id: entry[2] for task_id, entry in computed.items()}
        )
        # Only what was released runs: a task changed or deleted during the pass keeps the
        # user's change, and a run after delete_task() returned would be a surprise.
        for task_id in computed if released is None else released:
            task, run_times, next_time = computed[task_id]
            if next_time is None:
                self._task_event(events.TASK_REMOVED, task_id, alias)
            if run_times:
                coalesced = 0
                if task.coalesce and len(run_times) > 1:
                    coalesced = len(run_times) - 1
                    run_times = run_times[-1:]
                submissions.append((task, alias, run_times, coalesced))
        next_run = store.get_next_run_time()
        if next_run is not None and not acquired and next_run <= now:
            # Due, yet nothing was handed out (a task leased elsewhere, or a store without
            # lease expiry in its next run time): do not spin on it.
            next_run = now + timedelta(seconds=self.store_retry_interval)
        return next_run, len(acquired) >= ACQUIRE_BATCH

    def submit(self, task: Task, store: str, run_times: list[datetime], coalesced: int) -> None:
        """Hand one task's due run times to its executor and report the outcome."""
        try:
            executor = self._executors[task.executor]
        except KeyError:
            self.logger.error(
                "Task %r names the executor %r, which does not exist; run skipped",
                task.id,
                task.executor,
            )
            return
        try:
            executor.send_task(task, run_times)
        except MaximumInstancesError:
            self.logger.warning(
                "Execution of task %r skipped: maximum number of running instances reached (%d)",
                task.name,
                task.max_instances,
            )
            code = events.TASK_MAX_INSTANCES
        except Exception:
            self.logger.exception(
                "Error submitting task %r to executor %r", task.name, task.executor
            )
            return
        else:
            code = events.TASK_SUBMITTED
            self._submitted_count += 1
        self._submission_event(code, task, store, run_times, coalesced, "scheduled")

    def _submission_event(
        self,
        code: int,
        task: Task,
        store: str,
        run_times: list[datetime],
        coalesced: int,
        source: str,
    ) -> None:
        if self._listener_mask & code:
            self.dispatch_event(
                events.TaskSubmissionEvent(
                    code=code,
                    alias=store,
                    task_id=task.id,
                    store=store,
                    scheduler_identity=self.identity,
                    scheduled_run_times=tuple(run_times),
                    source=source,
                    coalesced_run_count=coalesced,
                )
            )


def _check_alias(kind: str, alias: Any) -> None:
    if not isinstance(alias, str) or not alias:
        raise TypeError(f"a {kind} instance alias must be a non-empty string, got {alias!r}")


def _zone_label(tz: tzinfo) -> str:
    try:
        return timezone_name(tz)
    except ValueError:
        return str(tz)


@functools.lru_cache(maxsize=256)
def _accepts(cls: type, parameter: str) -> bool:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    # Only a named parameter counts: triggers take **unknown just to reject typos.
    return parameter in signature.parameters


class AsyncIOScheduler(BaseScheduler):
    """A scheduler driven by an asyncio event loop.

    ``start()`` uses the event loop running in the calling thread; when none runs (or with
    ``isolated_event_loop=True``) it runs its own loop in a daemon thread. Store I/O of
    blocking stores runs in a worker thread so a slow store never stalls the loop.

    :param event_loop: a loop (or ``"module:attr"`` reference) to use instead of the running one
    :param isolated_event_loop: always run on a loop of its own, in its own thread
    """

    option_names: ClassVar[frozenset[str]] = BaseScheduler.option_names | {
        "event_loop",
        "isolated_event_loop",
    }

    def __init__(self, global_config: Mapping[str, Any] | None = None, **options: Any) -> None:
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self._owns_loop = False
        self._wakeup_event: asyncio.Event | None = None
        self._main_task: asyncio.Future[None] | None = None
        self._io_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._shutdown_runs: set[asyncio.Future[Any]] = set()
        # None while the loop is awake: every change must then be seen before it sleeps.
        self._sleep_until: datetime | None = None
        # How long a pass over blocking stores takes (smoothed), and how early to begin one.
        self._io_seconds = 0.005
        self._io_lead = 0.0
        self._pass_in_flight = False
        self._starting = False
        super().__init__(global_config, **options)

    def _configure(self, options: dict[str, Any]) -> None:
        loop = maybe_ref(options.get("event_loop"))
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"event_loop must be an asyncio event loop, got {loop!r}")
        self._given_loop: asyncio.AbstractEventLoop | None = loop
        isolated = options.get("isolated_event_loop", False)
        if not isinstance(isolated, bool):
            raise TypeError(f"isolated_event_loop must be True or False, got {isolated!r}")
        self._isolated = isolated
        super()._configure(options)

    # -- the event loop --------------------------------------------------------------------

    def _choose_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._given_loop
        if loop is None and not self._isolated:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            return self._start_loop_thread()
        self._owns_loop = False
        self._loop_thread_id = threading.get_ident() if loop.is_running() else None
        return loop

    def _start_loop_thread(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._loop_thread_id = threading.get_ident()
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._owns_loop = True
        self._loop_thread = threading.Thread(target=run, name="asyncz-scheduler", daemon=True)
        self._loop_thread.start()
        ready.wait()
        return loop

    def _stop_loop_thread(self) -> None:
        thread, self._loop_thread = self._loop_thread, None
        if thread is None or self.event_loop is None:
            return
        self.event_loop.call_soon_threadsafe(self.event_loop.stop)
        if thread is not threading.current_thread():
            thread.join()

    def _in_loop_thread(self) -> bool:
        return self._loop_thread_id == threading.get_ident()

    def _spawn_main(self) -> None:
        assert self.event_loop is not None
        self._loop_thread_id = threading.get_ident()
        self._wakeup_event = asyncio.Event()
        self._main_task = self.event_loop.create_task(
            self._main(self.event_loop, self._wakeup_event)
        )

    def _begin_start(self, paused: bool) -> bool:
        """Count a start; True when this one has to start the scheduler."""
        if self._start_count:
            self._start_count += 1
            return False
        # Counted at once: a start() awaited concurrently (NativeAsyncIOScheduler) only counts.
        self._start_count = 1
        self._starting = True
        self._io_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="asyncz-store-io"
        )
        return True

    def _after_start(self, paused: bool) -> None:
        self._starting = False
        if paused:
            self.state = SchedulerState.PAUSED

    def start(self, paused: bool = False) -> bool:
        """Start the scheduler; returns False for a nested call, which only counts (every
        start needs its shutdown)."""
        with self._lock:
            if not self._begin_start(paused):
                return False
            self.event_loop = self._choose_loop()
            try:
                self._start_components()
            except BaseException:
                self._abort_start()
                raise
            self._after_start(paused)
            if self._in_loop_thread():
                self._spawn_main()
            else:
                self.event_loop.call_soon_threadsafe(self._spawn_main)
        return True

    def _abort_start(self) -> None:
        self._start_count = 0
        self._starting = False
        self.state = SchedulerState.STOPPED
        self._stop_loop_thread()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=False)
            self._io_pool = None
        self.event_loop = None

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop the scheduler once every :meth:`start` has been matched by a shutdown.

        Running work finishes first with ``wait`` (up to ``timeout`` seconds), then tasks with
        the ``shutdown`` trigger run, then stores close. Called from the scheduler's own event
        loop, it cannot block that loop: running async work and async shutdown tasks then go on
        by themselves — use ``async with scheduler`` or :class:`NativeAsyncIOScheduler` to
        await them.
        """
        if not self._mark_stopped():
            return False
        loop = self.event_loop
        if loop is None or not loop.is_running() or self._in_loop_thread():
            self._shutdown_on_loop(wait, timeout)
            return True
        main = self._main_task
        self.wakeup()
        if main is not None:
            asyncio.run_coroutine_threadsafe(_wait_quietly(main), loop).result()
        self._shutdown_executors(wait, timeout)
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn):
                asyncio.run_coroutine_threadsafe(
                    run_task_async(self, task, [datetime.now(UTC)], self.logger), loop
                ).result()
            else:
                run_task_sync(self, task, [datetime.now(UTC)], self.logger)
            self._finish_shutdown_task(task, alias)
        self._shutdown_stores()
        self._cleanup()
        return True

    def _shutdown_on_loop(self, wait: bool, timeout: float | None) -> None:
        self.wakeup()
        main = self._main_task
        if self._pass_in_flight and main is not None and not main.done():
            # A store pass runs in a worker thread; its runs are off the schedule already and
            # must still start: finish the shutdown when the loop task ends, right after it.
            main.add_done_callback(lambda _: self._finish_shutdown_on_loop(wait, timeout))
            return
        self._finish_shutdown_on_loop(wait, timeout)

    def _finish_shutdown_on_loop(self, wait: bool, timeout: float | None) -> None:
        self._shutdown_executors(wait, timeout)
        loop = self.event_loop
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn) and loop is not None and loop.is_running():
                future = loop.create_task(
                    run_task_async(self, task, [datetime.now(UTC)], self.logger)
                )
                self._shutdown_runs.add(future)
                future.add_done_callback(self._shutdown_runs.discard)
            else:
                run_task_sync(self, task, [datetime.now(UTC)], self.logger)
            self._finish_shutdown_task(task, alias)
        self._shutdown_stores()
        self._cleanup()

    async def _shutdown_async(self, wait: bool, timeout: float | None) -> bool:
        """The shutdown an ``await`` can afford: nothing blocks the loop, everything is awaited."""
        loop = asyncio.get_running_loop()
        if self.event_loop is not None and loop is not self.event_loop:
            # The scheduler runs on another loop: the synchronous path may block a thread.
            return await loop.run_in_executor(None, AsyncIOScheduler.shutdown, self, wait, timeout)
        if not self._mark_stopped():
            return False
        self.wakeup()
        if self._main_task is not None:
            await _wait_quietly(self._main_task)
        await loop.run_in_executor(None, self._shutdown_executors, wait, timeout)
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn):
                await run_task_async(self, task, [datetime.now(UTC)], self.logger)
            else:
                await loop.run_in_executor(
                    None, run_task_sync, self, task, [datetime.now(UTC)], self.logger
                )
            self._finish_shutdown_task(task, alias)
        await loop.run_in_executor(None, self._shutdown_stores)
        self._cleanup()
        return True

    def _cleanup(self) -> None:
        self._sleep_until = None
        self._shutdown_finished()
        if self._owns_loop:
            self._stop_loop_thread()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=False)
            self._io_pool = None
        self.event_loop = None
        self._main_task = None
        self._wakeup_event = None
        self.started_at = None

    def stop(self, wait: bool = True, timeout: float | None = None) -> bool:
        """The same as :meth:`shutdown` (the name the Asyncz task pages use)."""
        return self.shutdown(wait, timeout)

    def __enter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    async def __aenter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown_async(True, None)

    def asgi(self, app: Any = None, handle_lifespan: bool = False, wait: bool = False) -> Any:
        """Wrap an ASGI app so that the scheduler starts and stops with its lifespan.

        ``handle_lifespan=True`` answers the lifespan protocol for apps that do not speak it.
        Without ``app`` it returns a decorator.
        """
        from asyncz.core.lifespan import LifespanApp

        if app is None:
            return lambda inner: LifespanApp(inner, self, handle_lifespan, wait)
        return LifespanApp(app, self, handle_lifespan, wait)

    async def _lifespan_start(self) -> None:
        self.start()

    async def _lifespan_stop(self, wait: bool) -> None:
        await self._shutdown_async(wait, None)

    # -- waking and sleeping ---------------------------------------------------------------

    def wakeup(self, when: datetime | None = None) -> None:
        sleep_until = self._sleep_until
        if when is not None and sleep_until is not None and when >= sleep_until:
            return  # the loop wakes up by then anyway
        event, loop = self._wakeup_event, self.event_loop
        if event is None or loop is None:
            return
        if self._in_loop_thread():
            event.set()
        else:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop has closed: nothing left to wake

    async def _main(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        moment: datetime | None = None  # what the next pass is for; None: for now
        # A shutdown, or a shutdown and a new start, replaces the event: then this loop is done.
        while self.running and self._wakeup_event is event:
            event.clear()
            self._sleep_until = None
            earliest: datetime | None = None
            if self.state == SchedulerState.RUNNING:
                try:
                    earliest = await self._run_pass(loop, moment)
                except Exception:
                    # Never let the loop die quietly while the scheduler says it runs.
                    self.logger.exception("Error in the scheduler loop; retrying later")
                    retry = timedelta(seconds=self.store_retry_interval)
                    earliest = datetime.now(UTC) + retry
            moment = None
            if not self.running:  # shut down while the pass ran
                break
            if earliest is None:
                await event.wait()
                continue
            if earliest <= datetime.now(UTC):
                # More is due at once (a store had more than one batch): let the runs just
                # submitted start before the next batch, so thousands of due tasks never pile up
                # as pending asyncio tasks (that would cost memory, and garbage-collector time).
                await asyncio.sleep(0)
                continue
            self._sleep_until = earliest
            # A pass over blocking stores takes time: start it that much before the moment.
            begin = earliest - timedelta(seconds=self._io_lead)
            sleep = (begin - datetime.now(UTC)).total_seconds() - SPIN_SECONDS
            if sleep > 0:
                timer = _Timer(event)
                handle = loop.call_later(min(sleep, MAX_SLEEP_SECONDS), timer.fire)
                try:
                    await event.wait()
                finally:
                    handle.cancel()
                if not timer.fired or sleep > MAX_SLEEP_SECONDS:
                    continue  # a change, or a wall-clock check: look at the stores again
                event.clear()  # set by the timer; a change sets it again
            # The last stretch: yield to other tasks until the moment, or until a change.
            while not event.is_set() and datetime.now(UTC) < begin and self.running:
                await asyncio.sleep(0)
            if not event.is_set():
                moment = earliest

    async def _run_pass(
        self, loop: asyncio.AbstractEventLoop, moment: datetime | None = None
    ) -> datetime | None:
        """One pass over the stores, for ``moment`` (default: now): tasks due by then are
        acquired, and their runs start no earlier than it. Returns when the loop must look
        again (None: no need)."""
        now = datetime.now(UTC)
        if moment is None or moment < now:
            moment = now
        with self._lock:
            stores = list(self._stores.values())
        blocking = any(getattr(store, "blocking", True) for store in stores)
        polls = [p for p in (getattr(s, "poll_interval", None) for s in stores) if p]
        if blocking and self._io_pool is not None:
            began = time.perf_counter()
            self._pass_in_flight = True
            try:
                submissions, earliest, more = await loop.run_in_executor(
                    self._io_pool, self.process_due, moment
                )
            finally:
                self._pass_in_flight = False
            self._learn_io_time(time.perf_counter() - began)
        else:
            self._io_lead = 0.0
            submissions, earliest, more = self.process_due(moment)
        # Acquired ahead of time: never start a run before it is due.
        while submissions and datetime.now(UTC) < moment and self.running:
            await asyncio.sleep(0)
        # Also after a shutdown that came during the pass: every shutdown path lets a pass in
        # flight finish before it closes the executors, since these runs are already taken
        # off the stores' schedules.
        for task, alias, run_times, coalesced in submissions:
            self.submit(task, alias, run_times, coalesced)
        if more:
            return datetime.now(UTC)
        if polls:
            # Other processes may change these stores without telling us.
            poll_at = datetime.now(UTC) + timedelta(seconds=min(polls))
            earliest = poll_at if earliest is None else min(earliest, poll_at)
        return earliest

    def _learn_io_time(self, seconds: float) -> None:
        """Keep a smoothed pass duration, to start the next blocking pass that much early."""
        self._io_seconds = 0.8 * self._io_seconds + 0.2 * seconds
        self._io_lead = min(max(2 * self._io_seconds, 0.001), MAX_IO_LEAD_SECONDS)


class _Timer:
    """Wakes the loop and remembers that it was the timer, not a change, that did."""

    __slots__ = ("event", "fired")

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.event.set()


class NativeAsyncIOScheduler(AsyncIOScheduler):
    """An :class:`AsyncIOScheduler` whose ``start()`` and ``shutdown()`` are awaited.

    It always runs on the running event loop, and its shutdown waits for running work and
    async shutdown tasks without ever blocking that loop.
    """

    async def start(self, paused: bool = False) -> bool:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._begin_start(paused):
                return False
            self.event_loop = loop
            self._owns_loop = False
            self._loop_thread_id = threading.get_ident()
        try:
            # Starting stores may do I/O (creating tables): not on the loop.
            await loop.run_in_executor(None, self._start_components)
        except BaseException:
            self._abort_start()
            raise
        with self._lock:
            self._after_start(paused)
            self._spawn_main()
        return True

    async def shutdown(  # type: ignore[override]
        self, wait: bool = True, timeout: float | None = None
    ) -> bool:
        return await self._shutdown_async(wait, timeout)

    async def stop(  # type: ignore[override]
        self, wait: bool = True, timeout: float | None = None
    ) -> bool:
        return await self._shutdown_async(wait, timeout)

    def __enter__(self) -> NativeAsyncIOScheduler:
        raise TypeError("NativeAsyncIOScheduler starts asynchronously: use 'async with'")

    async def __aenter__(self) -> NativeAsyncIOScheduler:
        await self.start()
        return self

    async def _lifespan_start(self) -> None:
        await self.start()


async def _wait_quietly(future: asyncio.Future[None]) -> None:
    try:
        await future
    except Exception:
        logging.getLogger("asyncz.schedulers").exception("The scheduler loop failed")
