"""The scheduler's task API: adding, finding, changing, running and inspecting tasks.

Here: ``_TaskAPIMixin`` with ``add_task`` (and its decorator form), storing tasks (one at a time,
or the tasks added before start in bulk), ``lookup_task``/``get_task(s)``, ``update_task``,
``reschedule_task``, ``pause_task``/``resume_task``, ``delete_task``, ``remove_all_tasks``,
``run_task``, and the snapshots: ``get_task_info(s)``, ``preview_task_runs``,
``get_scheduler_info``.

Not here: configuration, stores and executors (:mod:`asyncz.core.scheduler_config`), the
due-task pass (:mod:`asyncz.core.engine`), the event loop (:mod:`asyncz.core.asyncio_scheduler`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

import attrs

from asyncz.core import events
from asyncz.core.converters import (
    check_callable_args,
    timezone_name,
    to_datetime,
    utc_timestamp_us,
)
from asyncz.core.converters import now as current_time
from asyncz.core.errors import (
    ConflictIdError,
    MaximumInstancesError,
    TaskConflictError,
    TaskLookupError,
)
from asyncz.core.scheduler_common import (
    SHUTDOWN_TRIGGER_ALIAS,
    SchedulerInfo,
    _check_alias,
    _PendingTask,
    _SchedulerCore,
    undefined,
)
from asyncz.core.task import Task, TaskInfo, TaskRunPreview
from asyncz.core.task_fields import new_task, plain_fields

#: Changes to these fields change when a task runs: they overwrite the run time and end any
#: lease on it (the scheduler holding it then does not run it).
_SCHEDULE_FIELDS = frozenset({"trigger", "next_run_time"})
#: Every field of a Task (copied by _detached).
_TASK_FIELDS = tuple(field.name for field in attrs.fields(Task))
#: Tries of a conditional write that keeps losing to other writers before giving up.
_WRITE_ATTEMPTS = 8

_SORT_KEYS = ("id", "name", "next_run_time", "schedule_state", "executor", "store", "trigger")
_STATE_ORDER = {"pending": 0, "scheduled": 1, "paused": 2}


class _TaskAPIMixin(_SchedulerCore):
    """The task API of a scheduler (part of :class:`BaseScheduler`)."""

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
        on_crash: Any = undefined,
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
        # The values given, in this order, then the nullable ones given as None (a hot path:
        # one test each; `undefined` is the default only of the last five).
        changes: dict[str, Any] = {}
        if args is not None and args is not undefined:
            changes["args"] = args
        if kwargs is not None and kwargs is not undefined:
            changes["kwargs"] = kwargs
        if id is not None and id is not undefined:
            changes["id"] = id
        if name is not None and name is not undefined:
            changes["name"] = name
        if mistrigger_grace_time is not undefined and mistrigger_grace_time is not None:
            changes["mistrigger_grace_time"] = mistrigger_grace_time
        if coalesce is not undefined and coalesce is not None:
            changes["coalesce"] = coalesce
        if max_instances is not undefined and max_instances is not None:
            changes["max_instances"] = max_instances
        if executor is not None and executor is not undefined:
            changes["executor"] = executor
        if timeout is not undefined and timeout is not None:
            changes["timeout"] = timeout
        if on_crash is not undefined and on_crash is not None:
            changes["on_crash"] = on_crash
        if mistrigger_grace_time is None:
            changes["mistrigger_grace_time"] = None
        if timeout is None:
            changes["timeout"] = None
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
            if mistrigger_grace_time is undefined and getattr(
                new_trigger, "allow_mistrigger_by_default", False
            ):
                fields["mistrigger_grace_time"] = None
            # Values of the common shapes skip attrs' converter and validator chain; any other
            # goes through Task(...), which checks it (see asyncz.core.task_fields).
            values = plain_fields(fn_or_task, new_trigger, fields)
            if values is None:
                task = Task(fn=fn_or_task, trigger=new_trigger, **fields)
            else:
                task = new_task(fn_or_task, new_trigger, values, None)

        compute = next_run_time is undefined
        if not compute:
            # A naive time means wall time in the scheduler's zone (the task is not bound yet).
            task.update_task(
                next_run_time=to_datetime(next_run_time, self.timezone, "next_run_time")
            )
        if task.fn is not None:
            check_callable_args(task.fn, task.args, task.kwargs)
        setattr_ = object.__setattr__  # bookkeeping fields: no attrs hooks (as Task.bind)
        alias = store or task.store_alias or "default"
        setattr_(task, "store_alias", alias)
        with self._lock:
            if self.running:
                self._check_aliases(task)
                self._store_task(task, replace_existing, compute, current_time())
            else:
                setattr_(task, "scheduler", self)
                setattr_(task, "pending", True)
                pending, task_id = self._pending, task.id
                if task_id in pending and not replace_existing:
                    raise ConflictIdError(task_id)
                check = getattr(self._stores.get(alias), "check_task", None)
                if check is not None:
                    check(task)  # refuse now what the store would refuse at start
                pending[task_id] = _PendingTask(task, replace_existing, compute)
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
        self,
        task: Task,
        replace_existing: bool,
        compute_next: bool,
        now: datetime,
        not_before: datetime | None = None,
    ) -> None:
        """Store ``task`` (running scheduler); ``now`` is when its first run may be."""
        alias = self._prepare_to_store(task, compute_next, now, not_before)
        store = self.lookup_store(alias)
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                store.add_task(task)
                break
            except ConflictIdError:
                task.pending, task.submitted = True, False
                if not replace_existing:
                    raise
            try:
                # Unconditional (the task was never read from the store): it replaces whatever
                # is stored under its id, run state included.
                object.__setattr__(task, "store_version", None)
                store.update_task(task)
                task.bind(self, alias)
                break
            except TaskLookupError:
                # Another scheduler deleted it between our add and our replace: add again.
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        self._stored(task, alias)

    def _prepare_to_store(
        self, task: Task, compute_next: bool, now: datetime, not_before: datetime | None = None
    ) -> str:
        """Compute the first run time (with ``compute_next``), no earlier than ``not_before``."""
        assert task.trigger is not None
        if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS:
            object.__setattr__(task, "next_run_time", None)  # it runs at shutdown, not before
        elif compute_next:
            next_time = task.trigger.get_next_trigger_time(self.timezone, None, now)
            object.__setattr__(task, "next_run_time", next_time)
        first = task.next_run_time
        if not_before is not None and first is not None and first < not_before:
            # A time already past (a one-off task, a next_run_time given) waits out the
            # startup delay too.
            object.__setattr__(task, "next_run_time", not_before.astimezone(first.tzinfo))
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
        ``add_tasks`` (one transaction in a database), else one by one. With a startup delay,
        none is due before ``first_run``, so that workers restarting together do not stampede
        (nor run a one-off task another scheduler on the store has yet to see).

        The bulk path is one pass over the pending tasks that computes each first run time and
        binds the task inline (what :meth:`_prepare_to_store` does for one task): at 10,000
        tasks the per-task calls were a third of ``start()``."""
        not_before = first_run if self.startup_delay > 0 else None
        batches: dict[str, list[_PendingTask]] = {}
        checked: set[tuple[str, str]] = set()
        for item in self._pending.values():
            task = item.task
            aliases = (task.store_alias or "default", task.executor)
            if aliases not in checked:
                self._check_aliases(task)
                checked.add(aliases)
            batch = batches.get(aliases[0])
            if batch is None:
                batch = batches[aliases[0]] = []
            batch.append(item)
        tz = self.timezone
        setattr_ = object.__setattr__  # bookkeeping fields: no attrs hooks (as Task.bind)
        for alias, items in batches.items():
            add_tasks = getattr(self._stores[alias], "add_tasks", None)
            if add_tasks is not None and len(items) > 1:
                tasks: list[Task] = []
                for item in items:
                    task = item.task
                    trigger = task.trigger
                    assert trigger is not None
                    if getattr(trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS:
                        setattr_(task, "next_run_time", None)
                    elif item.compute_next_run_time:
                        first = trigger.get_next_trigger_time(tz, None, first_run)
                        setattr_(task, "next_run_time", first)
                    first = task.next_run_time
                    if not_before is not None and first is not None and first < not_before:
                        setattr_(task, "next_run_time", not_before.astimezone(first.tzinfo))
                    setattr_(task, "scheduler", self)
                    setattr_(task, "store_alias", alias)
                    setattr_(task, "pending", False)
                    setattr_(task, "submitted", True)
                    tasks.append(task)
                try:
                    add_tasks(tasks)
                except BaseException as exc:
                    for task in tasks:  # not stored: still pending
                        task.pending, task.submitted = True, False
                    if not isinstance(exc, ConflictIdError):
                        raise
                    # All or nothing: some are stored already (an earlier run); go one by one.
                else:
                    if self._listener_mask & events.TASK_ADDED or self.logger.isEnabledFor(
                        logging.INFO
                    ):
                        # Events and log lines; the wake-up it also asks for is moot: the
                        # loop's first pass comes after start() anyway.
                        self._stored_many(tasks, alias)
                    pending = self._pending
                    for task in tasks:
                        del pending[task.id]
                    continue
            for item in items:
                try:
                    self._store_task(
                        item.task,
                        item.replace_existing,
                        item.compute_next_run_time,
                        first_run,
                        not_before,
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
            return self.lookup_task(task_id, store)[0]
        except (TaskLookupError, KeyError):  # KeyError: no store by that alias
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
            task, alias = self.lookup_task(task_id, store)
            if "executor" in changes and self.running:
                self.lookup_executor(changes["executor"])
            # The task validates the changes as a whole (naive times in the scheduler's zone,
            # the arguments against the callable) before it applies any.
            if alias is None:
                task.update_task(**changes, scheduler=self)
                pending = self._pending.get(task.id)
                if pending is not None and "next_run_time" in changes:
                    # Set by the user: storing it at start must not recompute it.
                    pending.compute_next_run_time = False
            else:
                task = self._write_changes(task, alias, changes)
        # Not the hot path: built even without a listener, as Asyncz does (a pending task too).
        self.dispatch_event(
            events.TaskEvent(
                code=events.TASK_MODIFIED,
                alias=alias,
                task_id=task.id,
                store=alias,
                scheduler_identity=self.identity,
            )
        )
        if alias is not None and task.next_run_time is not None:
            self.wakeup(task.next_run_time)
        return task

    def _write_changes(self, task: Task, alias: str, changes: Mapping[str, Any]) -> Task:
        """Apply ``changes`` to ``task`` and write it to its store, conditionally on the
        version read. When another writer came first, read the task again and re-apply the
        changes to what it wrote, so that both changes survive (a few times, then
        :class:`TaskConflictError`). A change that leaves the schedule alone does not write
        the run time or the lease: a scheduler running the task meanwhile keeps its lease."""
        target = self.lookup_store(alias)
        keep_schedule = _SCHEDULE_FIELDS.isdisjoint(changes)
        writer = _schedule_aware_update(target)
        # A store with a decoded-record cache (cache_size) hands the same object to every
        # reader: change a copy, so that nobody sees a change before it is written. (A store
        # keeping the scheduler's own objects, as the memory store does, is changed in place.)
        cache_size = getattr(target, "cache_size", 0)
        detach = isinstance(cache_size, int) and cache_size > 0
        if detach:
            task = _detached(task)
        for attempt in range(_WRITE_ATTEMPTS):
            previous = {n: getattr(task, n) for n in changes if n not in ("id", "scheduler")}
            task.update_task(**changes, scheduler=self)
            try:
                if writer is None or not keep_schedule:
                    target.update_task(task)  # keep_schedule=False is every store's default
                else:
                    writer(task, keep_schedule=True)
                return task
            except TaskConflictError:
                task.update_task(**previous)
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
                fresh = target.lookup_task(task.id)
                if fresh is None:
                    raise TaskLookupError(task.id, alias) from None
                task = _detached(fresh) if detach else fresh
                # Writers that collided once would collide again in lockstep: spread them.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            except BaseException:
                task.update_task(**previous)  # the store kept the old version: so do we
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def reschedule_task(
        self, task_id: Any, store: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> Task:
        """Give a task a new trigger; its next run time is computed from now (a paused task is
        resumed)."""
        new_trigger = self.create_trigger(trigger, trigger_args)
        next_time = new_trigger.get_next_trigger_time(self.timezone, None, current_time())
        return self.update_task(task_id, store, trigger=new_trigger, next_run_time=next_time)

    def pause_task(self, task_id: Any, store: str | None = None) -> Task:
        """Keep the task but stop running it."""
        return self.update_task(task_id, store, next_run_time=None)

    def resume_task(self, task_id: Any, store: str | None = None) -> Task | None:
        """Run the task again from now on (runs missed while paused are not replayed);
        returns ``None`` if its trigger has nothing left, in which case it is removed."""
        task, alias = self.lookup_task(task_id, store)
        assert task.trigger is not None
        next_time = task.trigger.get_next_trigger_time(self.timezone, None, current_time())
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
        now = current_time()
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
            raise ValueError(f"count must be between 1 and 50, got {count!r}")
        task = self.get_task(task_id, store)
        if task is None:
            return None
        assert task.trigger is not None
        moment = now or current_time()
        next_time = task.next_run_time
        if next_time is None or task.pending:
            next_time = task.trigger.get_next_trigger_time(self.timezone, None, moment)
        run_times: list[datetime] = []
        while next_time is not None and len(run_times) < count:
            run_times.append(next_time)
            next_time = task.trigger.get_next_trigger_time(self.timezone, next_time, moment)
        return TaskRunPreview(
            task=task.snapshot(),
            requested_count=count,
            run_times=tuple(run_times),
            exhausted=next_time is None,
        )

    def get_scheduler_info(self) -> SchedulerInfo:
        """A snapshot of the scheduler: state, configuration and task counts."""
        counts = {"pending": 0, "scheduled": 0, "paused": 0}
        submitted = 0
        for task in self.get_tasks():
            counts[task.schedule_state] += 1
            submitted += task.submitted
        counts["total"] = sum(counts.values())
        started = self.started_at
        return SchedulerInfo(
            identity=self.identity,
            state=self.state,
            state_label=self.state.name.lower(),
            running=self.running,
            started_at=started,
            uptime_seconds=(current_time() - started).total_seconds()
            if started and self.running
            else None,
            timezone=_zone_label(self.timezone),
            executor_aliases=tuple(sorted(self._executors)),
            store_aliases=tuple(sorted(self._stores)),
            task_counts=counts,
            submitted_task_count=submitted,
            submitted_count=self._submitted_count,
            store_retry_interval=self.store_retry_interval,
            startup_delay=self.startup_delay,
        )


def _zone_label(tz: tzinfo) -> str:
    try:
        return timezone_name(tz)
    except ValueError:
        return str(tz)


def _detached(task: Task) -> Task:
    """A copy of ``task`` sharing nothing mutable with it (its trigger is replaced, not changed
    in place, by an update), bound where ``task`` is."""
    clone: Task = object.__new__(Task)
    for field in _TASK_FIELDS:
        object.__setattr__(clone, field, getattr(task, field))
    object.__setattr__(clone, "kwargs", dict(task.kwargs))
    return clone


def _schedule_aware_update(store: Any) -> Any:
    """``store.update_task`` if it takes ``keep_schedule`` (every asyncz store), else None (a
    store written for Asyncz: its update_task(task) writes everything)."""
    cls: Any = type(store)
    return store.update_task if _takes_keep_schedule(cls) else None


@functools.lru_cache(maxsize=64)
def _takes_keep_schedule(cls: Any) -> bool:
    try:
        parameters = inspect.signature(cls.update_task).parameters
    except (AttributeError, TypeError, ValueError):  # AttributeError: a mock, say
        return False
    return "keep_schedule" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
