"""The Task: a callable, its arguments, a trigger and the rules for running it.

Every field is converted and validated on construction *and* on assignment, so a bad value fails
where the user wrote it (``add_task``, ``task.update``), never inside the scheduler loop. Changes
through :meth:`Task.update_task` are validated as a whole before any is applied, so a failing
update leaves the task as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from enum import Enum
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import (
    callable_name,
    get_localzone,
    ref_to_obj,
    to_datetime,
    utc_timestamp_us,
)
from asyncz.core.errors import SchedulerLookupError

if TYPE_CHECKING:
    from asyncz.core.protocols import Trigger

__all__ = ["Task", "TaskInfo", "TaskRunPreview", "TaskScheduleState"]


class TaskScheduleState(str, Enum):
    """Where a task stands: not yet stored, stored without a next run, or scheduled.

    A ``str`` enum, so ``task.schedule_state == "paused"`` holds as well.
    """

    PENDING = "pending"
    PAUSED = "paused"
    SCHEDULED = "scheduled"

    def __str__(self) -> str:
        return self.value


#: Fields that record where a task lives, not what it is: never changed by update().
_BOOKKEEPING = frozenset({"scheduler", "store_alias", "pending", "submitted", "decorator_options"})


def _bad(field: str, value: object, valid: str, exc: type[Exception] = ValueError) -> Exception:
    return exc(f"Task field {field!r} must be {valid}, got {value!r}")


def _new_id() -> str:
    """128 random bits as 32 hex digits, like ``uuid4().hex`` at a fraction of the cost."""
    return os.urandom(16).hex()


def _validate_id(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _bad("id", value, "a non-empty string", TypeError)
    if not value.strip():
        raise _bad("id", value, "a non-empty string")


def _validate_name(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _bad("name", value, "a string or None", TypeError)


def _resolve_fn(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ref_to_obj(value)
        except (LookupError, ValueError) as exc:
            raise ValueError(
                f"Task field 'fn' got the reference {value!r}, which cannot be resolved: {exc}"
            ) from None
    return value


def _validate_fn(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise _bad("fn", value, "a callable or a 'module:qualname' reference to one", TypeError)


def _to_args(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if type(value) is tuple:  # the common case, checked first: tasks are added in bulk
        return value
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _bad("args", value, "a list or tuple of positional arguments", TypeError)
    return tuple(value)


def _to_kwargs(value: Any) -> dict[str, Any]:
    if not value:
        if value is None or isinstance(value, Mapping):
            return {}
        raise _bad("kwargs", value, "a mapping of keyword arguments", TypeError)
    if not isinstance(value, Mapping):
        raise _bad("kwargs", value, "a mapping of keyword arguments", TypeError)
    if not all(isinstance(key, str) for key in value):
        raise _bad("kwargs", value, "a mapping with string keys", TypeError)
    return dict(value)


def _validate_trigger(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(getattr(value, "get_next_trigger_time", None)):
        raise _bad(
            "trigger", value, "a trigger (an object with get_next_trigger_time) or None", TypeError
        )


def _validate_executor(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _bad("executor", value, "the non-empty alias of an executor, such as 'default'")


def _to_grace(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return value


def _validate_grace(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, float):
        raise _bad("mistrigger_grace_time", value, "a number of seconds > 0 or None", TypeError)
    if not value > 0:
        raise _bad("mistrigger_grace_time", value, "a number of seconds > 0 or None")


def _validate_timeout(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, float):
        raise _bad("timeout", value, "a number of seconds > 0 or None", TypeError)
    if not value > 0:
        raise _bad("timeout", value, "a number of seconds > 0 or None")


def _validate_coalesce(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise _bad("coalesce", value, "True or False", TypeError)


def _validate_max_instances(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("max_instances", value, "an integer >= 1", TypeError)
    if value < 1:
        raise _bad("max_instances", value, "an integer >= 1")


def _to_next_run_time(value: Any, self_: Any) -> datetime | None:
    if value is None or (isinstance(value, datetime) and value.utcoffset() is not None):
        return value
    return to_datetime(value, self_.timezone, "next_run_time")


def _convert(converter: Any, value: Any, task: Task, attribute: attrs.Attribute[Any]) -> Any:
    """Run an attribute's converter outside ``__init__``/``setattr`` (for validate_changes)."""
    if isinstance(converter, attrs.Converter):
        extra: list[Any] = [task] if getattr(converter, "takes_self", False) else []
        if getattr(converter, "takes_field", False):
            extra.append(attribute)
        return getattr(converter, "converter")(value, *extra)  # noqa: B009 - untyped in stubs
    return converter(value)


@attrs.define(kw_only=True, eq=False)
class Task:
    """A callable to run on a schedule.

    :var id: unique id (a random hex string when not given); cannot be changed
    :var name: a description (defaults to the callable's qualified name)
    :var fn: the callable, or a ``"module:qualname"`` reference to it
    :var args: positional arguments for ``fn``
    :var kwargs: keyword arguments for ``fn``
    :var coalesce: when several run times are due at once, run only the latest
    :var trigger: decides when the task runs
    :var executor: the alias of the executor that runs it
    :var mistrigger_grace_time: seconds a run may be late and still run (``None``: always run)
    :var max_instances: how many runs of this task may execute at the same time
    :var timeout: seconds one run may take before the executor stops waiting for it (and
        cancels or terminates it where it can); ``None`` means no limit
    :var next_run_time: when it runs next (aware); ``None`` means paused
    """

    id: str = attrs.field(
        factory=_new_id,
        validator=_validate_id,
        on_setattr=attrs.setters.frozen,
    )
    name: str | None = attrs.field(default=None, validator=_validate_name)
    fn: Callable[..., Any] | None = attrs.field(
        default=None, converter=_resolve_fn, validator=_validate_fn
    )
    args: tuple[Any, ...] = attrs.field(default=(), converter=_to_args)
    kwargs: dict[str, Any] = attrs.field(factory=dict, converter=_to_kwargs)
    coalesce: bool = attrs.field(default=True, validator=_validate_coalesce)
    trigger: Trigger | None = attrs.field(default=None, validator=_validate_trigger)
    executor: str = attrs.field(default="default", validator=_validate_executor)
    mistrigger_grace_time: float | None = attrs.field(
        default=None, converter=_to_grace, validator=_validate_grace
    )
    max_instances: int = attrs.field(default=1, validator=_validate_max_instances)
    timeout: float | None = attrs.field(
        default=None, converter=_to_grace, validator=_validate_timeout
    )
    # mypy's attrs plugin does not understand attrs.Converter yet
    next_run_time: datetime | None = attrs.field(
        default=None,
        converter=attrs.Converter(_to_next_run_time, takes_self=True),  # type: ignore[misc]
    )
    # Bookkeeping, not part of what a task *is*: kept out of repr.
    # (Plain assignment: nothing to convert or validate, and set on every add.)
    scheduler: Any = attrs.field(default=None, repr=False, on_setattr=attrs.setters.NO_OP)
    store_alias: str | None = attrs.field(default=None, repr=False, on_setattr=attrs.setters.NO_OP)
    pending: bool = attrs.field(default=True, repr=False, on_setattr=attrs.setters.NO_OP)
    submitted: bool = attrs.field(default=False, repr=False, on_setattr=attrs.setters.NO_OP)
    # Set by scheduler.add_task() used as a decorator: how to add the decorated function.
    decorator_options: dict[str, Any] | None = attrs.field(
        default=None, repr=False, init=False, on_setattr=attrs.setters.NO_OP
    )

    def __attrs_post_init__(self) -> None:
        if self.name is None and self.fn is not None:
            self.name = callable_name(self.fn)
        if self.scheduler is not None and not self.submitted and self.fn is not None:
            # As the Asyncz documentation shows: Task(..., scheduler=s) schedules the task.
            self.scheduler.add_task(self)

    # -- identity --------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Task):
            return self.id == other.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        if self.pending:
            status = "pending"
        elif self.next_run_time is None:
            status = "paused"
        else:
            status = f"next run at: {self.next_run_time.isoformat()}"
        return f"{self.name} (trigger: {self.trigger}, {status})"

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator mode: ``@scheduler.add_task("interval", seconds=5)`` adds ``fn``.

        The function is returned unchanged; the task added for it is appended to
        ``fn.asyncz_tasks``.
        """
        options = self.decorator_options
        if options is None or self.scheduler is None:
            raise TypeError(
                f"task {self.id!r} is not a decorator; use scheduler.add_task(trigger, ...) "
                "without a function to get one"
            )
        if not callable(fn):
            raise TypeError(f"the add_task decorator needs a callable, got {fn!r}")
        explicit_id = options["explicit_id"]
        task = Task(
            id=self.id if explicit_id else _new_id(),
            name=self.name,
            fn=fn,
            args=self.args,
            kwargs=self.kwargs,
            coalesce=self.coalesce,
            trigger=self.trigger,
            executor=self.executor,
            mistrigger_grace_time=self.mistrigger_grace_time,
            max_instances=self.max_instances,
            timeout=self.timeout,
        )
        self.scheduler.add_task(
            task,
            store=options["store"],
            replace_existing=bool(options["replace_existing"] or explicit_id),
            **(
                {}
                if options["next_run_time"] is None
                else {"next_run_time": options["next_run_time"][0]}
            ),
        )
        tasks = getattr(fn, "asyncz_tasks", None)
        if tasks is None:
            tasks = []
            try:
                fn.asyncz_tasks = tasks  # type: ignore[attr-defined]
            except AttributeError:
                pass  # a builtin or slotted callable: nothing to annotate
        tasks.append(task)
        return fn

    def bind(self, scheduler: Any, store_alias: str | None) -> None:
        """Record that ``scheduler`` keeps this task in the store ``store_alias`` (for stores)."""
        # Bookkeeping set for every task stored and restored: skip attrs' setattr hooks.
        setattr_ = object.__setattr__
        setattr_(self, "scheduler", scheduler)
        setattr_(self, "store_alias", store_alias)
        setattr_(self, "pending", False)
        setattr_(self, "submitted", True)

    def snapshot(self) -> TaskInfo:
        """An immutable view of this task for listings and dashboards."""
        trigger = self.trigger
        return TaskInfo(
            id=self.id,
            name=self.name,
            callable_name=callable_name(self.fn) if self.fn is not None else None,
            trigger=str(trigger) if trigger is not None else None,
            trigger_alias=getattr(trigger, "alias", None),
            executor=self.executor,
            store=self.store_alias,
            next_run_time=self.next_run_time,
            schedule_state=self.schedule_state,
            coalesce=self.coalesce,
            max_instances=self.max_instances,
            mistrigger_grace_time=self.mistrigger_grace_time,
            timeout=self.timeout,
        )

    # -- derived state ---------------------------------------------------------------------

    @property
    def timezone(self) -> tzinfo:
        """The zone naive datetimes given to this task are placed in."""
        # getattr: converters may ask before the scheduler field is set
        scheduler_tz = getattr(getattr(self, "scheduler", None), "timezone", None)
        return scheduler_tz if isinstance(scheduler_tz, tzinfo) else get_localzone()

    @property
    def paused(self) -> bool:
        """True when the task is stored but has no next run time."""
        return not self.pending and self.next_run_time is None

    @property
    def schedule_state(self) -> TaskScheduleState:
        """Pending (not yet stored), paused or scheduled."""
        if self.pending:
            return TaskScheduleState.PENDING
        if self.next_run_time is None:
            return TaskScheduleState.PAUSED
        return TaskScheduleState.SCHEDULED

    def get_run_times(self, now: datetime, timezone: tzinfo | None = None) -> list[datetime]:
        """Every run time from ``next_run_time`` up to and including ``now``."""
        if self.trigger is None:
            return []
        zone = timezone or self.timezone
        run_times: list[datetime] = []
        next_time = self.next_run_time
        now_us = utc_timestamp_us(now)  # datetimes of one zone would compare ignoring fold
        while next_time is not None and utc_timestamp_us(next_time) <= now_us:
            run_times.append(next_time)
            next_time = self.trigger.get_next_trigger_time(zone, next_time, now)
        return run_times

    # -- validated, all-or-nothing changes -------------------------------------------------

    def validate_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Convert and validate ``changes`` without applying them; returns the converted values.

        Raises ``ValueError`` for an attempt to change the id and ``AttributeError`` for a
        field that does not exist.
        """
        fields = attrs.fields_dict(Task)
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "id":
                if value != self.id:
                    raise ValueError(
                        f"the id of task {self.id!r} cannot be changed (to {value!r}); "
                        "delete the task and add it again under the new id"
                    )
                continue
            attribute = fields.get(name)
            if attribute is None or name in _BOOKKEEPING:
                valid = ", ".join(sorted(set(fields) - {*_BOOKKEEPING, "id"}))
                raise AttributeError(f"Task has no field {name!r} to change; valid: {valid}")
            if attribute.converter is not None:
                value = _convert(attribute.converter, value, self, attribute)
            if attribute.validator is not None:
                attribute.validator(self, attribute, value)
            converted[name] = value
        return converted

    def update_task(self, **changes: Any) -> None:
        """Apply validated changes to this object only (the store is not told)."""
        for name, value in self.validate_changes(changes).items():
            object.__setattr__(self, name, value)
        if "fn" in changes and "name" not in changes and self.fn is not None and not self.name:
            self.name = callable_name(self.fn)

    # -- delegation to the scheduler -------------------------------------------------------

    def _bound_scheduler(self, action: str) -> Any:
        if self.scheduler is None:
            raise SchedulerLookupError(
                f"cannot {action} task {self.id!r}: it is not added to a scheduler; use "
                "scheduler.add_task(task) or Task(..., scheduler=scheduler)"
            )
        return self.scheduler

    def update(self, **changes: Any) -> Task:
        """Change fields of this task; its scheduler's stored copy is updated too."""
        if self.scheduler is None:
            self.update_task(**changes)
            return self
        self.scheduler.update_task(self.id, self.store_alias, **changes)
        return self

    def reschedule(self, *args: Any, trigger: Any = None, **trigger_args: Any) -> Task:
        """Give the task a new trigger and compute its next run time from now.

        Both ``task.reschedule(trigger="cron", hour=10)`` and the Asyncz documentation's
        ``task.reschedule("<task id>", trigger="cron", hour=10)`` are accepted, as is
        ``task.reschedule("cron", hour=10)``.
        """
        if len(args) > 1:
            raise TypeError(f"reschedule() takes at most one positional argument, got {args!r}")
        if args:
            if trigger is None:
                trigger = args[0]
            elif args[0] != self.id:
                raise ValueError(
                    f"reschedule() of task {self.id!r} was given the task id {args[0]!r}"
                )
        if trigger is None:
            raise TypeError("reschedule() needs a trigger (an alias such as 'cron' or a trigger)")
        self._bound_scheduler("reschedule").reschedule_task(
            self.id, self.store_alias, trigger, **trigger_args
        )
        return self

    def pause(self) -> Task:
        """Stop running the task until :meth:`resume` is called."""
        self._bound_scheduler("pause").pause_task(self.id, self.store_alias)
        return self

    def resume(self) -> Task:
        """Resume a paused task from now (missed runs are not replayed)."""
        self._bound_scheduler("resume").resume_task(self.id, self.store_alias)
        return self

    def delete(self) -> None:
        """Remove the task from its scheduler."""
        self._bound_scheduler("delete").delete_task(self.id, self.store_alias)


@attrs.frozen(kw_only=True)
class TaskInfo:
    """An immutable snapshot of a task (what ``get_task_infos`` lists)."""

    id: str
    name: str | None
    callable_name: str | None
    trigger: str | None
    trigger_alias: str | None
    executor: str
    store: str | None
    next_run_time: datetime | None
    schedule_state: TaskScheduleState
    coalesce: bool
    max_instances: int
    mistrigger_grace_time: float | None
    timeout: float | None


@attrs.frozen(kw_only=True)
class TaskRunPreview:
    """The next run times of a task, computed without changing anything.

    :var exhausted: the trigger has no run times after the last one listed
    """

    task_id: str
    run_times: tuple[datetime, ...]
    exhausted: bool
