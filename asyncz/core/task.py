"""The Task: a callable, its arguments, a trigger and the rules for running it.

Every field is converted and validated on construction *and* on assignment, so a bad value fails
where the user wrote it (``add_task``, ``task.update``), never inside the scheduler loop. Changes
through :meth:`Task.update_task` are validated as a whole before any is applied, so a failing
update leaves the task as it was.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime, tzinfo
from enum import Enum
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import (
    callable_name,
    check_callable_args,
    get_localzone,
    obj_to_ref,
    ref_to_obj,
    to_datetime,
    utc_timestamp_us,
)
from asyncz.core.errors import SchedulerLookupError, TaskFieldError
from asyncz.core.runs import ON_CRASH_POLICIES

if TYPE_CHECKING:
    from asyncz.core.protocols import Trigger

__all__ = [
    "TASK_ID_MAX_LENGTH",
    "Task",
    "TaskFieldError",
    "TaskInfo",
    "TaskRunPreview",
    "TaskScheduleState",
    "TaskState",
    "task_id_problem",
]


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
_BOOKKEEPING = frozenset(
    {"scheduler", "store_alias", "pending", "submitted", "store_version", "decorator_options"}
)


def _bad(message: str, value: object, hint: str = "") -> TaskFieldError:
    note = f"got {value!r}{hint}"
    if sys.version_info >= (3, 11):
        error = TaskFieldError(message)
        error.add_note(note)
        return error
    return TaskFieldError(f"{message} ({note})")  # pragma: no cover - Python 3.10


def _new_id() -> str:
    """128 random bits as 32 hex digits, like ``uuid4().hex`` at a fraction of the cost."""
    return os.urandom(16).hex()


#: The one id rule of every store: at most this many characters ...
TASK_ID_MAX_LENGTH = 191
#: ... none of them a control character or a lone surrogate (Unicode categories Cc, Cs), which
#: no database column, file name or Redis client keeps intact.
_FORBIDDEN_ID_CATEGORIES = frozenset({"Cc", "Cs"})


def task_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a task id, or None. Stores compare ids exactly (code points,
    case and trailing spaces count), so any id passing here means the same task everywhere."""
    if not value or value.isspace():
        return "id must be a non-empty string that is not only whitespace."
    if len(value) > TASK_ID_MAX_LENGTH:
        return (
            f"id must be at most {TASK_ID_MAX_LENGTH} characters (the limit of every store), "
            f"got {len(value)} characters."
        )
    if value.isascii() and value.isprintable():
        return None
    for position, char in enumerate(value):
        if unicodedata.category(char) in _FORBIDDEN_ID_CATEGORIES:
            return (
                f"id must not contain control characters or lone surrogates, found "
                f"{char!r} at position {position}."
            )
    return None


def _to_id(value: Any) -> str:
    # A converter rather than a factory and a validator: one call, and None (Asyncz's
    # ``Task(id=None)``) gets a fresh id like an id not given at all.
    if type(value) is str:
        problem = task_id_problem(value)
        if problem is None:
            return value
        raise _bad(problem, value if len(value) <= 80 else f"{value[:40]}...{value[-20:]}")
    if value is None:
        return _new_id()
    raise _bad("id must be a non-empty string.", value)


def _validate_name(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise _bad("name must be a non empty string.", value, " (None: the callable's name)")


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
        raise _bad(
            "fn must be a callable or a textual reference to a callable.",
            value,
            " (a textual reference is 'module:qualname')",
        )


def _to_args(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if type(value) is tuple:  # the common case, checked first: tasks are added in bulk
        return value
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _bad("args must be a non-string iterable.", value, " (a list or tuple)")
    return tuple(value)


def _to_kwargs(value: Any) -> dict[str, Any]:
    if not value:
        if value is None or isinstance(value, Mapping):
            return {}
        raise _bad("kwargs must be a dict-like object.", value)
    if not isinstance(value, Mapping):
        raise _bad("kwargs must be a dict-like object.", value)
    if not all(isinstance(key, str) for key in value):
        raise _bad("kwargs must be a dict-like object with string keys.", value)
    return dict(value)


def _validate_trigger(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(getattr(value, "get_next_trigger_time", None)):
        raise _bad(
            f"Expected a trigger instance, got {type(value).__name__} instead.",
            value,
            " (a trigger has get_next_trigger_time, such as IntervalTrigger(seconds=5); "
            "scheduler.add_task also takes an alias such as 'interval')",
        )


def _validate_executor(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _bad("executor must be a string.", value, " (an executor alias)")
    if not value or value.isspace():
        raise _bad("executor must be the non-empty alias of an executor, such as 'default'.", value)


def _to_grace(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return value


def _validate_grace(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, float) and value > 0):
        raise _bad("mistrigger_grace_time must be either None or a positive float/integer.", value)


def _validate_timeout(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, float) and value > 0):
        raise _bad("timeout must be either None or a positive float/integer.", value)


def _validate_coalesce(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not True and value is not False:
        raise _bad("coalesce must be True or False.", value)


def _validate_max_instances(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad("max_instances must be a positive integer.", value)


def _validate_on_crash(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ON_CRASH_POLICIES:
        raise _bad(
            "on_crash must be 'skip' (record a run whose scheduler died as abandoned) or "
            "'rerun' (run it once more on another scheduler).",
            value,
        )


def _to_next_run_time(value: Any, self_: Any) -> datetime | None:
    if value is None or (isinstance(value, datetime) and value.utcoffset() is not None):
        return value
    if not isinstance(value, (date, str)):
        raise _bad(
            f"Unsupported type for next_run_time: {type(value).__name__}.",
            value,
            " (an aware datetime, a date, an ISO 8601 string, or None: paused)",
        )
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
    :var on_crash: what happens to a run whose scheduler dies while it runs (a store shared
        by several schedulers declares it dead): ``"skip"`` records the run as abandoned,
        ``"rerun"`` runs it once more on another scheduler
    :var next_run_time: when it runs next (aware); ``None`` means paused
    """

    id: str = attrs.field(
        default=None,
        converter=_to_id,
        on_setattr=attrs.setters.frozen,
    )
    name: str | None = attrs.field(default=None, validator=_validate_name)
    # The one field that may be given positionally: ``Task(fn, id=...)`` as in Asyncz.
    fn: Callable[..., Any] | None = attrs.field(
        default=None, converter=_resolve_fn, validator=_validate_fn, kw_only=False
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
    on_crash: str = attrs.field(default="skip", validator=_validate_on_crash)
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
    # The store's version of the record this task was read from or last written as (None: not
    # from a store that versions its records); a write names it and fails if another came first.
    store_version: int | None = attrs.field(
        default=None, repr=False, on_setattr=attrs.setters.NO_OP
    )
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

    def __repr__(self) -> str:
        return f"<Task (id={self.id} name={self.name})>"

    def __str__(self) -> str:
        next_time = self.next_run_time
        if self.pending:
            status = "pending"
        elif next_time is None:
            status = "paused"
        else:
            status = f"next run at: {next_time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        return f"{self.name} (trigger: {self.trigger}, {status})"

    # -- pickling: Asyncz's TaskState ------------------------------------------------------

    def __getstate__(self) -> TaskState:
        """What the task is, as a :class:`TaskState` (what ``pickle`` and ``copy`` keep).

        The callable is kept as its ``"module:qualname"`` reference where it has one (as
        Asyncz does), otherwise as itself (a ``functools.partial`` pickles; a lambda does not).
        Where the task lives (its scheduler and store) is not part of it: a copy is a new,
        unbound task that ``scheduler.add_task(copy)`` accepts.
        """
        reference = self.fn_reference
        return TaskState(
            id=self.id,
            name=self.name,
            fn=self.fn if reference is None else reference,
            fn_reference=reference,
            args=self.args,
            kwargs=dict(self.kwargs),
            coalesce=self.coalesce,
            trigger=self.trigger,
            executor=self.executor,
            mistrigger_grace_time=self.mistrigger_grace_time,
            max_instances=self.max_instances,
            timeout=self.timeout,
            on_crash=self.on_crash,
            next_run_time=self.next_run_time,
        )

    def __setstate__(self, state: TaskState | Mapping[str, Any]) -> None:
        """Become the task ``state`` describes, every field checked as ``Task(...)`` checks it.

        ``state`` is a :class:`TaskState` (or a mapping of its fields). A field left ``None``
        takes its default; ``fn`` may be a reference, or left out for ``fn_reference``. With
        a ``store`` (or ``store_alias``) the task counts as stored there, otherwise as new.
        """
        if not isinstance(state, TaskState):
            if not isinstance(state, Mapping):
                raise TypeError(
                    f"Task.__setstate__ needs a TaskState (or a mapping of its fields), "
                    f"got {type(state).__name__}"
                )
            known = {f.name for f in attrs.fields(TaskState)}
            state = TaskState(**{k: v for k, v in state.items() if k in known})
        store_alias = state.store_alias
        if store_alias is None and state.store is not None:
            store = state.store
            store_alias = store if isinstance(store, str) else getattr(store, "alias", None)
        fn = state.fn if state.fn is not None else state.fn_reference
        given = {
            "id": state.id,
            "name": state.name,
            "fn": fn,
            "args": state.args,
            "kwargs": state.kwargs,
            "coalesce": state.coalesce,
            "trigger": state.trigger,
            "executor": state.executor,
            "mistrigger_grace_time": state.mistrigger_grace_time,
            "max_instances": state.max_instances,
            "timeout": state.timeout,
            "on_crash": state.on_crash,
        }
        setattr_ = object.__setattr__
        setattr_(self, "scheduler", state.scheduler)
        setattr_(self, "store_alias", store_alias)
        setattr_(self, "pending", store_alias is None)
        setattr_(self, "submitted", store_alias is not None)
        setattr_(self, "decorator_options", None)
        setattr_(self, "store_version", None)
        setattr_(self, "next_run_time", None)  # the zone naive times are placed in is known
        for attribute in attrs.fields(Task):
            name = attribute.name
            if name not in given:
                continue
            value = given[name]
            if value is None:  # not given: the field's default (None for id: a new id)
                default = attribute.default
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    value = default.factory()  # type: ignore[union-attr]
                else:
                    value = default
            if attribute.converter is not None:
                value = _convert(attribute.converter, value, self, attribute)
            if attribute.validator is not None:
                attribute.validator(self, attribute, value)
            setattr_(self, name, value)
        if self.name is None and self.fn is not None:
            setattr_(self, "name", callable_name(self.fn))
        next_time = state.next_run_time
        if next_time is not None:
            next_time = _to_next_run_time(next_time, self)
        setattr_(self, "next_run_time", next_time)

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
            on_crash=self.on_crash,
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
        description = str(trigger) if trigger is not None else None
        state = self.schedule_state
        return TaskInfo(
            id=self.id,
            name=self.name,
            callable_name=callable_name(self.fn) if self.fn is not None else None,
            callable_reference=self.fn_reference,
            trigger=description,
            trigger_alias=getattr(trigger, "alias", None),
            trigger_name=type(trigger).__name__ if trigger is not None else None,
            trigger_description=description,
            executor=self.executor,
            store=self.store_alias,
            store_alias=self.store_alias,
            next_run_time=self.next_run_time,
            schedule_state=state,
            coalesce=self.coalesce,
            max_instances=self.max_instances,
            mistrigger_grace_time=self.mistrigger_grace_time,
            timeout=self.timeout,
            on_crash=self.on_crash,
            pending=state is TaskScheduleState.PENDING,
            paused=state is TaskScheduleState.PAUSED,
            submitted=self.submitted,
        )

    # -- derived state ---------------------------------------------------------------------

    @property
    def timezone(self) -> tzinfo:
        """The zone naive datetimes given to this task are placed in."""
        # getattr: converters may ask before the scheduler field is set
        scheduler_tz = getattr(getattr(self, "scheduler", None), "timezone", None)
        return scheduler_tz if isinstance(scheduler_tz, tzinfo) else get_localzone()

    @property
    def fn_reference(self) -> str | None:
        """The ``"module:qualname"`` reference of ``fn``; ``None`` if it has none (a lambda,
        a nested function, a ``functools.partial``, a method bound to an instance).

        Computed when asked (constructing and restoring tasks stay as cheap as they are)."""
        fn = self.fn
        if fn is None:
            return None
        try:
            return obj_to_ref(fn)
        except ValueError:
            return None

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

    def get_run_times(
        self, now: datetime | tzinfo, timezone: tzinfo | datetime | None = None
    ) -> list[datetime]:
        """Every run time from ``next_run_time`` up to and including ``now``.

        Takes ``(now, timezone=None)`` and Asyncz's order ``(timezone, now)`` alike.
        """
        moment: object = now
        zone: object = timezone
        if not isinstance(moment, datetime):  # Asyncz's order
            moment, zone = zone, moment
            if not isinstance(moment, datetime):
                raise TypeError(f"get_run_times() needs the current time, got {moment!r}")
        if zone is not None and not isinstance(zone, tzinfo):
            raise TypeError(f"get_run_times() needs a tzinfo as the zone, got {zone!r}")
        trigger = self.trigger
        if trigger is None:
            return []
        if zone is None:
            zone = self.timezone
        run_times: list[datetime] = []
        next_time = self.next_run_time
        now_us = utc_timestamp_us(moment)  # datetimes of one zone would compare ignoring fold
        while next_time is not None and utc_timestamp_us(next_time) <= now_us:
            run_times.append(next_time)
            next_time = trigger.get_next_trigger_time(zone, next_time, moment)
        return run_times

    # -- validated, all-or-nothing changes -------------------------------------------------

    def validate_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Convert and validate ``changes`` without applying them; returns the converted values.

        Raises :class:`TaskFieldError` (a ``ValueError`` and a ``TypeError``) for a bad value
        or an attempt to change the id or the scheduler, ``AttributeError`` for a field that
        does not exist, and ``ValueError`` when the callable and its arguments would not fit.
        """
        fields = attrs.fields_dict(Task)
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "id":
                if value != self.id:
                    raise _bad(
                        "The task ID may not be changed.",
                        value,
                        f" for task {self.id!r}; delete the task and add it again under the new id",
                    )
                continue
            if name == "scheduler":
                if value is not self.scheduler:
                    raise _bad(
                        "The task scheduler may not be changed.",
                        value,
                        f" for task {self.id!r}; scheduler.add_task(task) binds a new task",
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
        if "fn" in converted or "args" in converted or "kwargs" in converted:
            fn = converted.get("fn", self.fn)
            if fn is not None:
                check_callable_args(
                    fn, converted.get("args", self.args), converted.get("kwargs", self.kwargs)
                )
        return converted

    def update_task(self, **changes: Any) -> None:
        """Apply validated changes to this object only (the store is not told)."""
        for name, value in self.validate_changes(changes).items():
            object.__setattr__(self, name, value)
        if self.fn is not None and getattr(self, "name", None) is None:
            object.__setattr__(self, "name", callable_name(self.fn))

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
    """An immutable snapshot of a task (what ``get_task_infos`` lists).

    :var callable_reference: the callable's ``"module:qualname"``, ``None`` if it has none
    :var trigger_name: the trigger's class name; ``trigger_alias`` its plugin alias
    :var trigger_description: ``str(trigger)``; also ``trigger``
    :var store_alias: the store the task is kept in (``None`` while pending); also ``store``
    """

    id: str
    name: str | None
    callable_name: str | None
    callable_reference: str | None = None
    trigger: str | None
    trigger_alias: str | None
    trigger_name: str | None = None
    trigger_description: str | None = None
    executor: str
    store: str | None
    store_alias: str | None = None
    next_run_time: datetime | None
    schedule_state: TaskScheduleState
    coalesce: bool
    max_instances: int
    mistrigger_grace_time: float | None
    timeout: float | None
    on_crash: str = "skip"
    pending: bool = False
    paused: bool = False
    submitted: bool = False


@attrs.define(kw_only=True)
class TaskState:
    """What a task is, as plain fields: what :meth:`Task.__getstate__` returns and
    :meth:`Task.__setstate__` accepts (Asyncz's ``asyncz.datastructures.TaskState``).

    ``fn`` is the callable or its ``"module:qualname"`` reference. ``scheduler``, ``store``
    (a store or its alias) and ``store_alias`` say where a restored task lives; a task's own
    state leaves them ``None``. Every field may be left ``None`` (its default).
    """

    id: str | None = None
    name: str | None = None
    fn: Callable[..., Any] | str | None = None
    fn_reference: str | None = None
    args: Any = None
    kwargs: Any = None
    coalesce: bool | None = None
    trigger: Any = None
    executor: str | None = None
    mistrigger_grace_time: float | None = None
    max_instances: int | None = None
    timeout: float | None = None
    on_crash: str | None = None
    next_run_time: datetime | None = None
    scheduler: Any = None
    store_alias: str | None = None
    store: Any = None


@attrs.frozen(kw_only=True)
class TaskRunPreview:
    """The next run times of a task, computed without changing anything.

    :var task: a snapshot of the task (:class:`TaskInfo`)
    :var requested_count: how many run times were asked for
    :var exhausted: the trigger has no run times after the last one listed
    """

    task: TaskInfo
    requested_count: int
    run_times: tuple[datetime, ...]
    exhausted: bool

    @property
    def task_id(self) -> str:
        return self.task.id
