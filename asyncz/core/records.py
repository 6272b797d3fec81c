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

import operator
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
_ONE_US = timedelta(microseconds=1)


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


#: The Task fields a record gives values for (with the bookkeeping of a stored task).
_RECORD_FIELDS = (
    "id", "name", "fn", "args", "kwargs", "trigger", "executor", "coalesce",
    "max_instances", "mistrigger_grace_time", "timeout", "next_run_time",
    "scheduler", "store_alias", "pending", "submitted",
)  # fmt: skip
#: The other Task fields, with their defaults: (name, default, is_factory).
_OTHER_FIELDS: list[tuple[str, Any, bool]] = []
for _field in attrs.fields(Task):
    if _field.name in _RECORD_FIELDS:
        continue
    if isinstance(_field.default, attrs.Factory):  # type: ignore[arg-type]
        _OTHER_FIELDS.append((_field.name, _field.default.factory, True))  # type: ignore[union-attr]
    else:
        _OTHER_FIELDS.append((_field.name, _field.default, False))
_FIELDS_A = operator.itemgetter(
    "format", "version", "fn", "trigger", "id", "name", "args", "kwargs"
)
_FIELDS_B = operator.itemgetter(
    "executor", "coalesce", "max_instances", "mistrigger_grace_time", "timeout"
)


class _Unhooked(Task):
    """Task's exact layout without attrs' ``__setattr__`` hooks (converters, validators,
    frozen id). A restored task, whose values the reader has checked, is filled in as one of
    these with plain slot stores and then becomes a :class:`Task`: filling the 17 slots of a
    Task through its hooks, or through ``object.__setattr__``, costs about three times as much,
    and loading thousands of due tasks is a hot path."""

    __slots__ = ()
    __setattr__ = object.__setattr__


def _restored_task(
    task_id: str,
    name: str,
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    trigger: Any,
    executor: str,
    coalesce: bool,
    max_instances: int,
    grace: float | None,
    timeout: float | None,
    next_time: datetime | None,
    scheduler: Any,
    store_alias: str | None,
) -> Task:
    """A stored task with these (already checked) values, bound to its scheduler and store;
    without attrs' hooks, and without ``__attrs_post_init__`` (which would schedule a task
    that names a scheduler)."""
    task = object.__new__(_Unhooked)
    task.id = task_id
    task.name = name
    task.fn = fn
    task.args = args
    task.kwargs = kwargs
    task.trigger = trigger
    task.executor = executor
    task.coalesce = coalesce
    task.max_instances = max_instances
    task.mistrigger_grace_time = grace
    task.timeout = timeout
    task.next_run_time = next_time
    task.scheduler = scheduler
    task.store_alias = store_alias
    task.pending = False
    task.submitted = True
    for field_name, default, factory in _OTHER_FIELDS:
        object.__setattr__(task, field_name, default() if factory else default)
    task.__class__ = Task  # type: ignore[assignment]
    return task


def _general_task(*values: Any) -> Task:
    """:func:`_restored_task` through Task's constructor (for a layout it cannot fill)."""
    task = Task(**dict(zip(_RECORD_FIELDS[:12], values[:12], strict=True)))
    task.scheduler, task.store_alias = values[12:]
    task.pending, task.submitted = False, True
    return task


def _check_unhooked() -> bool:
    """Whether :func:`_restored_task` gives a complete Task (a Task field without a default,
    added in a later version, or a layout whose class cannot be switched, rules it out)."""
    if not all(default is not attrs.NOTHING for _, default, _ in _OTHER_FIELDS):
        return False
    if {f.name for f in attrs.fields(Task)} != {*_RECORD_FIELDS, *(f[0] for f in _OTHER_FIELDS)}:
        return False
    try:
        probe = _restored_task("x", "x", len, (), {}, None, "d", True, 1, None, None, None, 0, "s")
        return type(probe) is Task and all(hasattr(probe, f.name) for f in attrs.fields(Task))
    except (TypeError, AttributeError):
        return False


_new_task = _restored_task if _check_unhooked() else _general_task


#: Records of one trigger alias looked at before a reader stops trying to share trigger
#: objects between them, when no two had the same state (interval triggers added at
#: different times all differ; a cron expression used by many tasks repeats).
_SHARE_PROBE = 32


def _freeze(value: Any) -> Any:
    """A hashable key, equal only for equal plain data of the same types (TypeError if none).

    Order-sensitive for dicts: two equal states written in another key order merely miss
    being shared."""
    kind = type(value)
    if kind is str:
        return value
    if kind is dict:
        return (dict, *((_freeze(key), _freeze(item)) for key, item in value.items()))
    if kind is list or kind is tuple:
        return (kind, *(_freeze(item) for item in value))
    hash(value)
    return (kind, value)  # 1, 1.0 and True are equal and hash alike: keep them apart


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
        # Per trigger alias: states seen while none repeated, whether one did, or given up.
        self._share_tries: dict[str, int] = {}
        self._repeating: set[str] = set()
        self._no_sharing: set[str] = set()

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
        cls = self._trigger_classes.get(alias)
        if cls is None:
            cls = self.trigger_class(alias)
        key: tuple[str, Any] | None = None
        if alias not in self._no_sharing:
            try:
                key = (alias, _freeze(state))
            except Exception:  # something unhashable (or pathological) in the state: no sharing
                key = None
            else:
                prototype = self._triggers.get(key)
                if prototype is not None:
                    self._repeating.add(alias)
                    return _copy_trigger(prototype)
                if alias not in self._repeating:
                    tries = self._share_tries[alias] = self._share_tries.get(alias, 0) + 1
                    if tries > _SHARE_PROBE:
                        # No state of this alias repeated: stop paying for keys and copies.
                        self._no_sharing.add(alias)
                        for stale in [k for k in self._triggers if k[0] == alias]:
                            del self._triggers[stale]
                        key = None
        try:
            trigger: Any = object.__new__(cls)
            trigger.__setstate__(state)
        except Exception as exc:
            raise TaskRestoreError(
                f"its {alias!r} trigger cannot be rebuilt from the stored state: {exc}"
            ) from None
        if key is not None:
            # The first one is kept private: every task gets an object of its own.
            self._triggers[key] = trigger
            return _copy_trigger(trigger)
        return trigger

    def task(self, record: Any, next_run_us: int | bool | None = False) -> Task:
        """Rebuild a task from its record; :class:`TaskRestoreError` saying why it cannot be.

        ``next_run_us`` overrides the record's run time with the store's own index (stores
        keep the run time in an indexed column and do not rewrite the record after every
        run); the default ``False`` uses the record's.
        """
        # The common case first: a record exactly as task_to_record writes it, every field
        # checked in one expression (a subset of what the thorough path below accepts, giving
        # the same task). Anything else takes the thorough path, which says what is wrong.
        if type(record) is dict:
            try:
                fmt, version, ref, trigger_data, task_id, name, args, kwargs = _FIELDS_A(record)
                executor, coalesce, limit, grace, timeout = _FIELDS_B(record)
            except KeyError:
                fmt = None
            run_us = record.get("next_run_time") if next_run_us is False else next_run_us
            if (
                fmt == RECORD_FORMAT
                and type(version) is int
                and version <= RECORD_VERSION
                and type(ref) is str
                and type(task_id) is str
                and task_id
                and not task_id.isspace()
                and (name is None or type(name) is str)
                and type(args) is list
                and type(kwargs) is dict
                and (not kwargs or all(type(key) is str for key in kwargs))
                and type(executor) is str
                and executor
                and not executor.isspace()
                and (coalesce is True or coalesce is False)
                and type(limit) is int
                and limit >= 1
                and (grace is None or (type(grace) is float and grace > 0))
                and (timeout is None or (type(timeout) is float and timeout > 0))
                and (run_us is None or type(run_us) is int)
            ):
                fn = self._callables.get(ref)
                if fn is None:
                    fn = self.callable(ref)
                trigger = self._trigger(trigger_data)
                next_time: datetime | None = None
                if run_us is not None:
                    # In the trigger's zone (UTC if it has none), as from_timestamp_us gives it.
                    next_time = _EPOCH + _ONE_US * run_us
                    zone = getattr(trigger, "timezone", None)
                    if zone is not UTC and isinstance(zone, tzinfo):
                        next_time = next_time.astimezone(zone)
                if name is None:
                    name = callable_name(fn)
                return _new_task(
                    task_id, name, fn, tuple(args), kwargs, trigger, executor, coalesce, limit,
                    grace, timeout, next_time, self.scheduler, self.store_alias,
                )  # fmt: skip
        return self._checked_task(record, next_run_us)

    def _checked_task(self, record: Any, next_run_us: int | bool | None) -> Task:
        """:meth:`task` for any record: every field checked one by one, saying what is wrong."""
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            raise TaskRestoreError(
                "the stored data is not an asyncz task record (written by another program, or "
                "by a serializer other than the one configured?)"
            )
        get = record.get
        version = get("version")
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise TaskRestoreError(
                f"the record has format version {version!r}, newer than this asyncz reads "
                f"({RECORD_VERSION}); upgrade asyncz to load it"
            )
        ref = get("fn")
        fn = self._callables.get(ref) if type(ref) is str else None
        if fn is None:
            fn = self.callable(ref)
        trigger = self._trigger(get("trigger"))
        run_us = get("next_run_time") if next_run_us is False else next_run_us
        if run_us is not None and (isinstance(run_us, bool) or not isinstance(run_us, int)):
            raise TaskRestoreError(f"the record's next run time {run_us!r} is not an integer")
        task_id, name, args, kwargs = get("id"), get("name"), get("args"), get("kwargs")
        executor, coalesce, limit = get("executor"), get("coalesce"), get("max_instances")
        grace, timeout = get("mistrigger_grace_time"), get("timeout")
        if not isinstance(task_id, str) or not task_id.strip():
            raise _bad_field("id", task_id)
        if name is None:
            name = callable_name(fn)
        elif not isinstance(name, str):
            raise _bad_field("name", name)
        if not isinstance(args, list):
            raise _bad_field("args", args)
        if not isinstance(kwargs, dict) or (kwargs and not all(isinstance(k, str) for k in kwargs)):
            raise _bad_field("kwargs", kwargs)
        if not isinstance(executor, str) or not executor.strip():
            raise _bad_field("executor", executor)
        if coalesce is not True and coalesce is not False:
            raise _bad_field("coalesce", coalesce)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _bad_field("max_instances", limit)
        if grace is not None:
            grace = _seconds(record, "mistrigger_grace_time")
        if timeout is not None:
            timeout = _seconds(record, "timeout")
        next_time: datetime | None = None
        if run_us is not None:
            # In the trigger's zone (UTC if it has none), as from_timestamp_us would give it.
            next_time = _EPOCH + timedelta(microseconds=run_us)
            zone = getattr(trigger, "timezone", None)
            if zone is not UTC and isinstance(zone, tzinfo):
                next_time = next_time.astimezone(zone)
        return _new_task(
            task_id, name, fn, tuple(args), kwargs, trigger, executor, coalesce, limit, grace,
            timeout, next_time, self.scheduler, self.store_alias,
        )  # fmt: skip


def record_to_task(
    record: Any,
    registry: PluginRegistry | None = None,
    *,
    next_run_us: int | bool | None = False,
) -> Task:
    """Rebuild one task from its record (see :meth:`RecordReader.task`)."""
    return RecordReader(registry).task(record, next_run_us)
