"""The engine: schedulers that take due tasks from stores and hand them to executors.

``BaseScheduler`` holds configuration, the task API and the store pass; ``AsyncIOScheduler``
drives it from an asyncio event loop. The loop never polls: it sleeps until the earliest next
run time over all stores and is woken early by any change that could make that earlier.

Due tasks are only ever taken through the store's lease path (``acquire_due_tasks`` then
``release_tasks``), the same for every store, so that stores shared between schedulers can
guarantee a run is handed to one of them only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from enum import IntEnum
from typing import Any

import attrs

from asyncz.core import events
from asyncz.core.converters import to_timezone
from asyncz.core.errors import (
    ConflictIdError,
    MaximumInstancesError,
    SchedulerNotRunningError,
    TaskLookupError,
)
from asyncz.core.plugins import PluginRegistry, default_registry
from asyncz.core.protocols import Executor, Store, Trigger
from asyncz.core.task import Task

__all__ = ["AsyncIOScheduler", "BaseScheduler", "SchedulerState"]

UTC = timezone.utc

#: Most tasks one store hands over in one pass; the loop comes straight back for more.
ACQUIRE_BATCH = 1000
#: Seconds a store keeps acquired tasks away from other schedulers before it hands them out again.
LEASE_SECONDS = 60.0
#: The loop re-reads the wall clock at least this often, so a clock step (NTP, a suspended VM)
#: cannot make it oversleep by more than this.
MAX_SLEEP_SECONDS = 900.0


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


_OPTIONS = frozenset(
    {
        "timezone",
        "identity",
        "stores",
        "executors",
        "task_defaults",
        "logger_name",
        "plugin_registry",
    }
)
_TASK_DEFAULT_KEYS = frozenset({"mistrigger_grace_time", "coalesce", "max_instances"})


class BaseScheduler:
    """Configuration, the task API and the store pass shared by every scheduler.

    :param timezone: zone for naive datetimes and triggers (default: the local zone)
    :param identity: this scheduler's name as an owner of store leases and in events
    :param stores: instance alias -> store instance, plugin alias, or config dict with
        ``"type"`` (plugin alias) or ``"class"`` (``"module:Class"``) plus constructor options
    :param executors: the same for executors
    :param task_defaults: default ``mistrigger_grace_time`` (``None``: never too late to run),
        ``coalesce`` (True) and ``max_instances`` (1) for tasks added without them
    :param logger_name: the scheduler logs to ``asyncz.schedulers.<logger_name>``
    :param plugin_registry: where plugin aliases are looked up (default: the process-wide one)
    """

    default_executor_alias: str = "asyncio"
    default_store_alias: str = "memory"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(
                f"unknown scheduler option(s) {', '.join(sorted(map(repr, unknown)))}; valid "
                f"options are {', '.join(sorted(_OPTIONS))}"
            )
        self._lock = threading.RLock()
        self._listeners: list[tuple[Callable[[Any], Any], int]] = []
        self._listener_mask = 0
        self._pending: list[_PendingTask] = []
        self._stores: dict[str, Store] = {}
        self._executors: dict[str, Executor] = {}
        self._start_count = 0
        self.state = SchedulerState.STOPPED
        self.plugins: PluginRegistry = options.get("plugin_registry") or default_registry()
        self.timezone: tzinfo = to_timezone(options.get("timezone"))
        identity = options.get("identity")
        if identity is not None and (not isinstance(identity, str) or not identity.strip()):
            raise ValueError(f"identity must be a non-empty string, got {identity!r}")
        self.identity: str = identity or f"{type(self).__name__}-{uuid.uuid4().hex[:12]}"
        logger_name = options.get("logger_name")
        self.logger = logging.getLogger(
            f"asyncz.schedulers.{logger_name}" if logger_name else "asyncz.schedulers"
        )
        self.task_defaults = self._check_task_defaults(options.get("task_defaults") or {})
        for alias, spec in (options.get("stores") or {}).items():
            self.add_store(spec, alias)
        for alias, spec in (options.get("executors") or {}).items():
            self.add_executor(spec, alias)

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "Schedulers cannot be serialized; pass tasks references to module-level functions "
            "instead of objects that hold a scheduler"
        )

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
                from asyncz.core.converters import ref_to_obj

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
        instance = self._create_plugin("store", store, options)
        if not isinstance(instance, Store):
            raise TypeError(f"{instance!r} is not a store (see asyncz.core.protocols.Store)")
        with self._lock:
            if alias in self._stores:
                raise ValueError(f"a store with the alias {alias!r} already exists")
            if self.running:
                instance.start(self, alias)
            self._stores[alias] = instance
        self._dispatch(events.SchedulerEvent(code=events.STORE_ADDED, alias=alias))
        if self.running:
            self.wakeup()

    def remove_store(self, alias: str, shutdown: bool = True) -> None:
        with self._lock:
            store = self._lookup_store(alias)
            del self._stores[alias]
        if shutdown:
            store.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.STORE_REMOVED, alias=alias))

    def add_executor(self, executor: Any, alias: str = "default", **options: Any) -> None:
        """Add an executor under an instance alias; started at once if the scheduler runs."""
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
            executor = self._lookup_executor(alias)
            del self._executors[alias]
        if shutdown:
            executor.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.EXECUTOR_REMOVED, alias=alias))

    def _lookup_store(self, alias: str) -> Store:
        try:
            return self._stores[alias]
        except KeyError:
            raise KeyError(
                f"no store with the alias {alias!r}; stores: {sorted(self._stores) or 'none'}"
            ) from None

    def _lookup_executor(self, alias: str) -> Executor:
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
        timeout: Any = undefined,
        store: str | None = None,
        executor: str | None = None,
        replace_existing: bool = False,
        **trigger_args: Any,
    ) -> Task:
        """Schedule ``fn_or_task`` (a callable, a ``"module:qualname"`` or a :class:`Task`).

        ``trigger`` is a trigger instance or a plugin alias whose keyword arguments are the
        remaining keyword arguments (``add_task(fn, "interval", seconds=5)``); no trigger means
        "run once, now". ``next_run_time=None`` adds the task paused. Before :meth:`start` the
        task is kept and stored when the scheduler starts.
        """
        if not isinstance(replace_existing, bool):
            raise TypeError(f"replace_existing must be True or False, got {replace_existing!r}")
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
        if isinstance(fn_or_task, Task):
            task = fn_or_task
            if task.submitted:
                raise ValueError(f"task {task.id!r} has already been added to a scheduler")
            if task.fn is None:
                raise TypeError(f"task {task.id!r} has no fn to run")
            if trigger is not None or trigger_args or task.trigger is None:
                changes["trigger"] = self.create_trigger(trigger, trigger_args)
            task.update_task(**changes)
        elif fn_or_task is None:
            raise TypeError("add_task() needs a callable, a 'module:qualname' reference or a Task")
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
            task.update_task(next_run_time=next_run_time)
        task.store_alias = store or "default"
        with self._lock:
            if self.running:
                self._check_aliases(task)
                self._store_task(task, replace_existing, compute)
            else:
                task.scheduler = self
                task.pending = True
                for position, pending in enumerate(self._pending):
                    if pending.task.id == task.id:
                        if not replace_existing:
                            raise ConflictIdError(task.id)
                        self._pending[position] = _PendingTask(task, replace_existing, compute)
                        break
                else:
                    self._pending.append(_PendingTask(task, replace_existing, compute))
                self.logger.info(
                    "Adding task %r tentatively; it will be stored when the scheduler starts",
                    task.name,
                )
        return task

    def _check_aliases(self, task: Task) -> None:
        self._lookup_store(task.store_alias or "default")
        self._lookup_executor(task.executor)

    def _store_task(self, task: Task, replace_existing: bool, compute_next: bool) -> None:
        now = datetime.now(UTC)
        if compute_next:
            assert task.trigger is not None
            next_time = task.trigger.get_next_trigger_time(self.timezone, None, now)
            object.__setattr__(task, "next_run_time", next_time)
        alias = task.store_alias or "default"
        store = self._lookup_store(alias)
        task.scheduler = self
        try:
            store.add_task(task)
        except ConflictIdError:
            if not replace_existing:
                raise
            store.update_task(task)
        task.pending = False
        task.submitted = True
        self.logger.info("Added task %r to store %r", task.name, alias)
        self._task_event(events.TASK_ADDED, task.id, alias)
        if task.next_run_time is not None:
            self.wakeup(task.next_run_time)

    def _find(self, task_id: str, store: str | None) -> tuple[Task, str | None]:
        """The task and the alias of the store holding it (``None`` while pending)."""
        if isinstance(task_id, Task):
            task_id = task_id.id
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"a task id must be a non-empty string, got {task_id!r}")
        with self._lock:
            for pending in self._pending:
                if pending.task.id == task_id and store in (None, pending.task.store_alias):
                    return pending.task, None
            if store is not None:
                found = self._lookup_store(store).lookup_task(task_id)
                if found is not None:
                    return found, store
            else:
                for alias, candidate in self._stores.items():
                    found = candidate.lookup_task(task_id)
                    if found is not None:
                        return found, alias
        raise TaskLookupError(task_id, store)

    def get_task(self, task_id: str, store: str | None = None) -> Task | None:
        """The task with ``task_id``, or ``None``."""
        try:
            return self._find(task_id, store)[0]
        except TaskLookupError:
            return None

    def get_tasks(self, store: str | None = None) -> list[Task]:
        """Pending tasks, then every stored task (by next run time, paused last)."""
        with self._lock:
            tasks = [p.task for p in self._pending if store in (None, p.task.store_alias)]
            stores = [self._lookup_store(store)] if store else list(self._stores.values())
            for candidate in stores:
                tasks.extend(candidate.get_all_tasks())
        return tasks

    def update_task(self, task_id: Any, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a task, validated all together before any is applied."""
        with self._lock:
            task, alias = self._find(task_id, store)
            if "executor" in changes and self.running:
                self._lookup_executor(changes["executor"])
            validated = task.validate_changes(changes)
            if alias is None:
                task.update_task(**validated)
                return task
            target = self._lookup_store(alias)
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
        """Give a task a new trigger; its next run time is computed from now."""
        new_trigger = self.create_trigger(trigger, trigger_args)
        next_time = new_trigger.get_next_trigger_time(self.timezone, None, datetime.now(UTC))
        return self.update_task(task_id, store, trigger=new_trigger, next_run_time=next_time)

    def pause_task(self, task_id: Any, store: str | None = None) -> Task:
        """Keep the task but stop running it."""
        return self.update_task(task_id, store, next_run_time=None)

    def resume_task(self, task_id: Any, store: str | None = None) -> Task | None:
        """Run the task again from now on; returns ``None`` if its trigger has nothing left."""
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
                self._pending = [p for p in self._pending if p.task.id != task.id]
            else:
                self._lookup_store(alias).delete_task(task.id)
        self.logger.info("Removed task %r", task.name)
        self._task_event(events.TASK_REMOVED, task.id, alias)

    def remove_all_tasks(self, store: str | None = None) -> None:
        """Remove every task, of one store or of all of them."""
        with self._lock:
            if store is None:
                self._pending.clear()
                for candidate in self._stores.values():
                    candidate.remove_all_tasks()
            else:
                target = self._lookup_store(store)
                self._pending = [p for p in self._pending if p.task.store_alias != store]
                target.remove_all_tasks()
        self._dispatch(events.SchedulerEvent(code=events.ALL_TASKS_REMOVED, alias=store))

    # -- starting and stopping -------------------------------------------------------------

    def _start_components(self) -> None:
        with self._lock:
            if "default" not in self._executors:
                self.add_executor(self.default_executor_alias, "default")
            if "default" not in self._stores:
                self.add_store(self.default_store_alias, "default")
            for alias, executor in self._executors.items():
                executor.start(self, alias)
            for alias, store in self._stores.items():
                store.start(self, alias)
            pending, self._pending = self._pending, []
            self.state = SchedulerState.RUNNING
            for item in pending:
                try:
                    self._check_aliases(item.task)
                    self._store_task(item.task, item.replace_existing, item.compute_next_run_time)
                except ConflictIdError:
                    # A persistent store already has it from an earlier run: keep that one.
                    self.logger.info("Task %r is already stored; keeping it", item.task.id)
                except Exception:
                    self.logger.exception("Task %r could not be stored", item.task.id)
                    raise
        self.logger.info("Scheduler started")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_START))

    def _stop_components(self, wait: bool) -> None:
        with self._lock:
            self.state = SchedulerState.STOPPED
            executors = list(self._executors.values())
            stores = list(self._stores.values())
        for executor in executors:
            executor.shutdown(wait)
        for store in stores:
            store.shutdown()
        self.logger.info("Scheduler has been shut down")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_SHUTDOWN))

    def wakeup(self, when: datetime | None = None) -> None:
        """Make the loop look at the stores again (if ``when`` is sooner than it would)."""

    # -- the store pass --------------------------------------------------------------------

    def _compute_runs(self, task: Task, now: datetime) -> tuple[list[datetime], datetime | None]:
        """The due run times of an acquired task and its next run time after ``now``."""
        trigger = task.trigger
        assert trigger is not None
        run_times: list[datetime] = []
        next_time = task.next_run_time
        while next_time is not None and next_time <= now:
            run_times.append(next_time)
            next_time = trigger.get_next_trigger_time(self.timezone, next_time, now)
        return run_times, next_time

    def process_due(
        self, now: datetime
    ) -> tuple[list[tuple[Task, str, list[datetime], int]], datetime | None, bool]:
        """Acquire and release every store's due tasks; blocking store I/O happens here.

        Returns the submissions to make (task, store alias, run times, coalesced count), the
        earliest next run time over all stores, and whether a store has more due tasks.
        """
        submissions: list[tuple[Task, str, list[datetime], int]] = []
        earliest: datetime | None = None
        more = False
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            try:
                acquired = store.acquire_due_tasks(now, self.identity, ACQUIRE_BATCH, LEASE_SECONDS)
            except Exception:
                self.logger.exception("Error getting due tasks from store %r", alias)
                continue
            more = more or len(acquired) >= ACQUIRE_BATCH
            released: dict[str, datetime | None] = {}
            exhausted: list[str] = []
            for task in acquired:
                try:
                    run_times, next_time = self._compute_runs(task, now)
                except Exception:
                    # The lease runs out and the task is retried: it is never lost.
                    self.logger.exception("Trigger of task %r failed", task.id)
                    continue
                released[task.id] = next_time
                if next_time is None:
                    exhausted.append(task.id)
                if run_times:
                    coalesced = 0
                    if task.coalesce and len(run_times) > 1:
                        coalesced = len(run_times) - 1
                        run_times = run_times[-1:]
                    submissions.append((task, alias, run_times, coalesced))
            try:
                store.release_tasks(self.identity, released)
            except Exception:
                self.logger.exception("Error releasing tasks to store %r", alias)
            for task_id in exhausted:
                self._task_event(events.TASK_REMOVED, task_id, alias)
            try:
                next_time = store.get_next_run_time()
            except Exception:
                self.logger.exception("Error reading the next run time of store %r", alias)
                continue
            if next_time is not None and (earliest is None or next_time < earliest):
                earliest = next_time
        return submissions, earliest, more

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
        if self._listener_mask & code:
            self.dispatch_event(
                events.TaskSubmissionEvent(
                    code=code,
                    alias=store,
                    task_id=task.id,
                    store=store,
                    scheduler_identity=self.identity,
                    scheduled_run_times=tuple(run_times),
                    coalesced_run_count=coalesced,
                )
            )


def _accepts(cls: type, parameter: str) -> bool:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return parameter in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )


class AsyncIOScheduler(BaseScheduler):
    """A scheduler driven by an asyncio event loop.

    ``start()`` uses the event loop running in the calling thread; when none runs (or with
    ``isolated_event_loop=True``) it runs its own loop in a daemon thread. Store I/O of
    blocking stores runs in a worker thread so a slow store never stalls the loop.
    """

    def __init__(
        self,
        *,
        event_loop: asyncio.AbstractEventLoop | None = None,
        isolated_event_loop: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if event_loop is not None and not isinstance(event_loop, asyncio.AbstractEventLoop):
            raise TypeError(f"event_loop must be an asyncio event loop, got {event_loop!r}")
        self._given_loop = event_loop
        self._isolated = bool(isolated_event_loop)
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self._wakeup_event: asyncio.Event | None = None
        self._main_task: asyncio.Future[None] | None = None
        self._io_pool: concurrent.futures.ThreadPoolExecutor | None = None
        # None while the loop is awake: every change must then be seen before it sleeps.
        self._sleep_until: datetime | None = None

    def start(self, paused: bool = False) -> bool:
        """Start the scheduler; nested calls only count (see :meth:`shutdown`)."""
        with self._lock:
            if self._start_count:
                self._start_count += 1
                return False
            loop = self._given_loop
            if loop is None and not self._isolated:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
            if loop is None:
                loop = self._start_loop_thread()
            else:
                self._loop_thread_id = threading.get_ident() if loop.is_running() else None
            self.event_loop = loop
            self._io_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="asyncz-store-io"
            )
            try:
                self._start_components()
            except BaseException:
                self._stop_loop_thread()
                raise
            if paused:
                self.state = SchedulerState.PAUSED
            self._start_count = 1
            self._call_in_loop(self._spawn_main)
        return True

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
                loop.close()

        self._loop_thread = threading.Thread(target=run, name="asyncz-scheduler", daemon=True)
        self._loop_thread.start()
        ready.wait()
        return loop

    def _stop_loop_thread(self) -> None:
        thread, self._loop_thread = self._loop_thread, None
        if thread is not None and self.event_loop is not None:
            self.event_loop.call_soon_threadsafe(self.event_loop.stop)
            thread.join()

    def _in_loop_thread(self) -> bool:
        return self._loop_thread_id == threading.get_ident()

    def _call_in_loop(self, callback: Callable[[], Any]) -> None:
        assert self.event_loop is not None
        if self._in_loop_thread():
            callback()
        else:
            self.event_loop.call_soon_threadsafe(callback)

    def _spawn_main(self) -> None:
        assert self.event_loop is not None
        self._loop_thread_id = threading.get_ident()
        self._wakeup_event = asyncio.Event()
        self._main_task = self.event_loop.create_task(self._main())

    def shutdown(self, wait: bool = True) -> bool:
        """Stop the scheduler once every :meth:`start` has been matched by a shutdown.

        With ``wait``, executors finish running work first (when called from outside the
        scheduler's loop; on that loop, running work is left to finish on its own).
        """
        with self._lock:
            if not self._start_count:
                raise SchedulerNotRunningError
            self._start_count -= 1
            if self._start_count:
                return False
            self.state = SchedulerState.STOPPED
        self.wakeup()
        if not self._in_loop_thread() and self.event_loop is not None:
            main = self._main_task
            if main is not None and self.event_loop.is_running():
                asyncio.run_coroutine_threadsafe(_wait_quietly(main), self.event_loop).result()
        self._stop_components(wait)
        self._stop_loop_thread()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=True)
            self._io_pool = None
        self.event_loop = None
        self._main_task = None
        return True

    def pause(self) -> None:
        """Stop processing tasks until :meth:`resume` (running work carries on)."""
        self._require_running()
        self.state = SchedulerState.PAUSED
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_PAUSED))

    def resume(self) -> None:
        self._require_running()
        self.state = SchedulerState.RUNNING
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_RESUMED))
        self.wakeup()

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

    async def _main(self) -> None:
        assert self.event_loop is not None and self._wakeup_event is not None
        loop, event = self.event_loop, self._wakeup_event
        while self.state != SchedulerState.STOPPED:
            event.clear()
            self._sleep_until = None
            wait: float | None = None
            if self.state == SchedulerState.RUNNING:
                wait = await self._run_pass(loop)
            if not self.running:  # shut down while the pass ran
                break
            timer = None
            if wait is not None:
                wait = min(wait, MAX_SLEEP_SECONDS)
                self._sleep_until = datetime.now(UTC) + timedelta(seconds=wait)
                timer = loop.call_later(wait, event.set)
            try:
                await event.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    async def _run_pass(self, loop: asyncio.AbstractEventLoop) -> float | None:
        now = datetime.now(UTC)
        with self._lock:
            stores = list(self._stores.values())
        blocking = any(getattr(store, "blocking", True) for store in stores)
        polls = [p for p in (getattr(s, "poll_interval", None) for s in stores) if p]
        if blocking and self._io_pool is not None:
            submissions, earliest, more = await loop.run_in_executor(
                self._io_pool, self.process_due, now
            )
        else:
            submissions, earliest, more = self.process_due(now)
        for task, alias, run_times, coalesced in submissions:
            self.submit(task, alias, run_times, coalesced)
        if more:
            return 0.0
        wait = None if earliest is None else (earliest - datetime.now(UTC)).total_seconds()
        if polls:
            # Other processes may change these stores without telling us.
            wait = min(polls) if wait is None else min(wait, min(polls))
        return None if wait is None else max(wait, 0.0)

    def _stop_components(self, wait: bool) -> None:
        super()._stop_components(wait)
        self._sleep_until = None


async def _wait_quietly(future: asyncio.Future[None]) -> None:
    try:
        await future
    except Exception:
        logging.getLogger("asyncz.schedulers").exception("The scheduler loop failed")
