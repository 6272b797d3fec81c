"""Task <-> record: the versioned plain-data form every persistent store keeps.

A record holds only plain data (str, int, float, bool, None, lists, dicts) plus the task's
arguments: the callable as a ``"module:qualname"`` reference, the trigger as its plugin alias and
its ``__getstate__`` state, and ``next_run_time`` as integer microseconds since the Unix epoch
(exact, and the same number stores index on). Nothing in a record depends on the layout of a
Python class, so a record written by this version can be read after a refactoring as long as the
callable's reference and the trigger alias still resolve.

Encoding a record to bytes is a serializer's job (``asyncz/plugins/serializers/``); signing and
encryption wrap those bytes. This module does neither.

:func:`task_to_record` raises :class:`SerializationError` at ``add_task`` time for a task that
could never be restored (a lambda, a closure, an unregistered trigger), saying what works
instead. :func:`record_to_task` raises :class:`TaskRestoreError` with the reason; stores then
*quarantine* the record (leave it untouched and report it), never delete it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import callable_name, obj_to_ref, ref_to_obj, utc_timestamp_us
from asyncz.core.errors import SerializationError, TaskRestoreError
from asyncz.core.task import Task

if TYPE_CHECKING:
    from asyncz.core.plugins import PluginRegistry

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "RecordReader",
    "from_timestamp_us",
    "record_to_task",
    "task_to_record",
    "to_timestamp_us",
]

#: Marks a dict as an asyncz task record (so a foreign blob is recognised as such).
RECORD_FORMAT = "asyncz.task"
#: The record layout this version writes and the newest it reads.
RECORD_VERSION = 1

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp_us(value: datetime | None) -> int | None:
    """``next_run_time`` as stores index it: integer microseconds since the epoch, or None."""
    return None if value is None else utc_timestamp_us(value)


def from_timestamp_us(value: int | None, tz: tzinfo | None = None) -> datetime | None:
    """The aware datetime of :func:`to_timestamp_us`, in ``tz`` (UTC by default)."""
    if value is None:
        return None
    moment = _EPOCH + timedelta(microseconds=int(value))
    return moment if tz is None else moment.astimezone(tz)


def _registry(registry: PluginRegistry | None) -> PluginRegistry:
    if registry is not None:
        return registry
    from asyncz.core.plugins import default_registry

    return default_registry()


def task_to_record(task: Task, registry: PluginRegistry | None = None) -> dict[str, Any]:
    """The record of ``task``; :class:`SerializationError` if it could not be restored later."""
    if task.fn is None:
        raise SerializationError(f"task {task.id!r} has no callable to store")
    try:
        fn_ref = obj_to_ref(task.fn)
    except ValueError as exc:
        raise SerializationError(
            f"task {task.id!r} cannot be kept in a persistent store: {exc}. Persistent stores "
            "keep the callable as a 'module:qualname' reference, so it must be a module-level "
            "function, a classmethod or staticmethod, or a 'module:qualname' string; lambdas, "
            "nested functions, functools.partial objects and methods bound to an instance only "
            "work in the memory store"
        ) from None
    trigger = task.trigger
    if trigger is None:
        raise SerializationError(f"task {task.id!r} has no trigger to store")
    alias = getattr(type(trigger), "alias", None)
    if not isinstance(alias, str):
        raise SerializationError(
            f"the trigger {trigger!r} of task {task.id!r} has no plugin alias (a class "
            "attribute 'alias'); persistent stores record triggers as (alias, state)"
        )
    try:
        registered = _registry(registry).resolve("trigger", alias)
    except Exception as exc:
        raise SerializationError(
            f"the trigger {trigger!r} of task {task.id!r} could not be restored later: its "
            f"alias {alias!r} is not a registered trigger plugin ({exc}); register it through "
            "the 'asyncz' entry-point group or keep the task in the memory store"
        ) from None
    if registered is not type(trigger):
        raise SerializationError(
            f"the trigger {trigger!r} of task {task.id!r} is a {type(trigger).__qualname__}, "
            f"but the trigger alias {alias!r} is registered to {registered.__qualname__}; it "
            "would come back as the wrong class"
        )
    try:
        state = trigger.__getstate__()
    except Exception as exc:
        raise SerializationError(
            f"the trigger {trigger!r} of task {task.id!r} cannot give its state: {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise SerializationError(
            f"the trigger {trigger!r} of task {task.id!r} returned {type(state).__name__} "
            "from __getstate__; it must return a dict of plain data"
        )
    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "id": task.id,
        "name": task.name,
        "fn": fn_ref,
        "args": list(task.args),
        "kwargs": dict(task.kwargs),
        "trigger": [alias, state],
        "executor": task.executor,
        "coalesce": task.coalesce,
        "max_instances": task.max_instances,
        "mistrigger_grace_time": task.mistrigger_grace_time,
        "timeout": task.timeout,
        "next_run_time": to_timestamp_us(task.next_run_time),
    }


def _bad_field(key: str, value: Any) -> TaskRestoreError:
    return TaskRestoreError(f"its fields are not valid: the record's {key!r} is {value!r}")


def _seconds(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _bad_field(key, value)
    return float(value)


_SLOTS: dict[type, tuple[tuple[str, ...], bool]] = {}


def _copy_trigger(prototype: Any) -> Any:
    """A new trigger with the same attributes (cheaper than ``__setstate__`` again)."""
    cls = type(prototype)
    layout = _SLOTS.get(cls)
    if layout is None:
        names = {
            slot
            for klass in cls.__mro__
            for slot in klass.__dict__.get("__slots__", ())
            if slot not in ("__dict__", "__weakref__")
        }
        layout = _SLOTS[cls] = (tuple(sorted(names)), hasattr(prototype, "__dict__"))
    clone = object.__new__(cls)
    setter = object.__setattr__
    for slot in layout[0]:
        try:
            setter(clone, slot, getattr(prototype, slot))
        except AttributeError:  # a slot the prototype never set
            continue
    if layout[1]:
        clone.__dict__.update(prototype.__dict__)
    return clone


#: Task fields a record does not hold, with their defaults: (name, default, is_factory).
_RECORD_FIELDS = frozenset(
    {
        "id", "name", "fn", "args", "kwargs", "trigger", "executor", "coalesce",
        "max_instances", "mistrigger_grace_time", "timeout", "next_run_time",
        "scheduler", "store_alias", "pending", "submitted",
    }
)  # fmt: skip
_OTHER_FIELDS: list[tuple[str, Any, bool]] = []
for _field in attrs.fields(Task):
    if _field.name in _RECORD_FIELDS:
        continue
    if isinstance(_field.default, attrs.Factory):  # type: ignore[arg-type]
        _OTHER_FIELDS.append((_field.name, _field.default.factory, True))  # type: ignore[union-attr]
    else:
        _OTHER_FIELDS.append((_field.name, _field.default, False))
#: A Task field without a default (added in a later version) forces the general constructor.
_FAST_TASKS = {f.name for f in attrs.fields(Task)} >= _RECORD_FIELDS and all(
    default is not attrs.NOTHING for _, default, _ in _OTHER_FIELDS
)


class RecordReader:
    """Rebuilds tasks from records, sharing lookups across one batch of records.

    Callable references, trigger classes and identical trigger states are resolved once per
    reader; make a new reader per batch, so that a function removed or a plugin disabled since
    is noticed by the next batch. The fields are checked as strictly as ``Task(...)`` would,
    without running its converters and validators one attribute at a time: loading many due
    tasks is a hot path.
    """

    def __init__(
        self,
        registry: PluginRegistry | None = None,
        *,
        scheduler: Any = None,
        store_alias: str | None = None,
    ) -> None:
        self.registry = _registry(registry)
        # Restored tasks are stored tasks: bound to their store and scheduler.
        self.scheduler = scheduler
        self.store_alias = store_alias
        self._callables: dict[str, Any] = {}
        self._trigger_classes: dict[str, type] = {}
        self._triggers: dict[tuple[str, Any], Any] = {}

    def callable(self, ref: Any) -> Any:
        fn = self._callables.get(ref) if isinstance(ref, str) else None
        if fn is not None:
            return fn
        if not isinstance(ref, str):
            raise _bad_field("fn", ref)
        try:
            fn = ref_to_obj(ref)
        except Exception as exc:
            raise TaskRestoreError(
                f"its callable {ref!r} cannot be imported ({exc}); was it moved or renamed? "
                "Restore the name (or an alias to it) and the task loads again"
            ) from None
        if not callable(fn):
            raise TaskRestoreError(f"its callable {ref!r} now names {fn!r}, which is not callable")
        self._callables[ref] = fn
        return fn

    def trigger_class(self, alias: str) -> type:
        cls = self._trigger_classes.get(alias)
        if cls is not None:
            return cls
        try:
            cls = self.registry.resolve("trigger", alias)
        except Exception as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TaskRestoreError(
                f"its trigger alias {alias!r} is not available ({first_line}); install or "
                "re-enable the plugin that provides it and the task loads again"
            ) from None
        self._trigger_classes[alias] = cls
        return cls

    def _trigger(self, data: Any) -> Any:
        if (
            not isinstance(data, list)
            or len(data) != 2
            or not isinstance(data[0], str)
            or not isinstance(data[1], dict)
        ):
            raise TaskRestoreError(f"the record's trigger {data!r} is not (alias, state)")
        alias, state = data
        try:
            key: tuple[str, Any] | None = (alias, tuple(sorted(state.items())))
            prototype = self._triggers.get(key)  # type: ignore[arg-type]
        except TypeError:  # nested (unhashable) state: no sharing
            key = prototype = None
        if prototype is not None:
            return _copy_trigger(prototype)
        cls = self.trigger_class(alias)
        try:
            trigger: Any = object.__new__(cls)
            trigger.__setstate__(state)
        except Exception as exc:
            raise TaskRestoreError(
                f"its {alias!r} trigger cannot be rebuilt from the stored state: {exc}"
            ) from None
        if key is not None:
            self._triggers[key] = trigger
            return _copy_trigger(trigger)
        return trigger

    def task(self, record: Any, next_run_us: int | bool | None = False) -> Task:
        """Rebuild a task from its record; :class:`TaskRestoreError` saying why it cannot be.

        ``next_run_us`` overrides the record's run time with the store's own index (stores
        keep the run time in an indexed column and do not rewrite the record after every
        run); the default ``False`` uses the record's.
        """
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            raise TaskRestoreError(
                "the stored data is not an asyncz task record (written by another program, or "
                "by a serializer other than the one configured?)"
            )
        version = record.get("version")
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise TaskRestoreError(
                f"the record has format version {version!r}, newer than this asyncz reads "
                f"({RECORD_VERSION}); upgrade asyncz to load it"
            )
        fn = self.callable(record.get("fn"))
        trigger = self._trigger(record.get("trigger"))
        run_us = record.get("next_run_time") if next_run_us is False else next_run_us
        if run_us is not None and (isinstance(run_us, bool) or not isinstance(run_us, int)):
            raise TaskRestoreError(f"the record's next run time {run_us!r} is not an integer")
        trigger_tz = getattr(trigger, "timezone", None)
        zone = trigger_tz if isinstance(trigger_tz, tzinfo) else UTC
        get = record.get
        task_id, name, args, kwargs = get("id"), get("name"), get("args"), get("kwargs")
        executor, coalesce, limit = get("executor"), get("coalesce"), get("max_instances")
        if not isinstance(task_id, str) or not task_id.strip():
            raise _bad_field("id", task_id)
        if name is not None and not isinstance(name, str):
            raise _bad_field("name", name)
        if not isinstance(args, list):
            raise _bad_field("args", args)
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _bad_field("kwargs", kwargs)
        if not isinstance(executor, str) or not executor.strip():
            raise _bad_field("executor", executor)
        if not isinstance(coalesce, bool):
            raise _bad_field("coalesce", coalesce)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _bad_field("max_instances", limit)
        grace, timeout = _seconds(record, "mistrigger_grace_time"), _seconds(record, "timeout")
        next_time = from_timestamp_us(run_us, zone)
        if name is None:
            name = callable_name(fn)
        if not _FAST_TASKS:
            task = Task(
                id=task_id, name=name, fn=fn, args=args, kwargs=kwargs, trigger=trigger,
                executor=executor, coalesce=coalesce, max_instances=limit,
                mistrigger_grace_time=grace, timeout=timeout, next_run_time=next_time,
            )  # fmt: skip
            task.scheduler, task.store_alias = self.scheduler, self.store_alias
            task.pending, task.submitted = False, True
            return task
        # Every value is checked above; skip attrs' per-field converters and validators, and
        # __attrs_post_init__ (which would schedule a task that names a scheduler).
        task = object.__new__(Task)
        setter = object.__setattr__
        setter(task, "id", task_id)
        setter(task, "name", name)
        setter(task, "fn", fn)
        setter(task, "args", tuple(args))
        setter(task, "kwargs", kwargs)
        setter(task, "trigger", trigger)
        setter(task, "executor", executor)
        setter(task, "coalesce", coalesce)
        setter(task, "max_instances", limit)
        setter(task, "mistrigger_grace_time", grace)
        setter(task, "timeout", timeout)
        setter(task, "next_run_time", next_time)
        setter(task, "scheduler", self.scheduler)
        setter(task, "store_alias", self.store_alias)
        setter(task, "pending", False)
        setter(task, "submitted", True)
        for field_name, default, factory in _OTHER_FIELDS:
            setter(task, field_name, default() if factory else default)
        return task


def record_to_task(
    record: Any,
    registry: PluginRegistry | None = None,
    *,
    next_run_us: int | bool | None = False,
) -> Task:
    """Rebuild one task from its record (see :meth:`RecordReader.task`)."""
    return RecordReader(registry).task(record, next_run_us)
