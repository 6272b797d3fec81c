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

import dataclasses
import inspect
import operator
import secrets
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import (
    callable_name,
    datetime_from_us,
    fixed_epoch,
    obj_to_ref,
    ref_to_obj,
    utc_timestamp_us,
)
from asyncz.core.errors import SerializationError, TaskRestoreError
from asyncz.core.runs import ON_CRASH_POLICIES
from asyncz.core.task import Task

if TYPE_CHECKING:
    from asyncz.core.plugins import PluginRegistry

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "TASK_STATE_ENTITY",
    "TASK_STATE_ENVELOPE_VERSION",
    "RecordReader",
    "TaskStateEnvelope",
    "from_timestamp_us",
    "new_store_version",
    "pack_record",
    "record_to_task",
    "task_to_record",
    "to_timestamp_us",
    "unpack_record",
]

#: Marks a dict as an asyncz task record (so a foreign blob is recognised as such).
RECORD_FORMAT = "asyncz.task"
#: The record layout this version writes and the newest it reads.
RECORD_VERSION = 1

#: The entity a :class:`TaskStateEnvelope` of a task record names (Asyncz's value).
TASK_STATE_ENTITY = "task_state"
#: The envelope version this asyncz reads (Asyncz's value).
TASK_STATE_ENVELOPE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TaskStateEnvelope:
    """Asyncz's versioned wrapper of a stored task: entity kind, envelope version, the name of
    the Shape that wrote it, and the payload.

    asyncz's records carry their format and version themselves and are written without it.
    Persistent stores still read a record wrapped in one, after checking its entity, version
    and Shape name (:func:`asyncz.plugins.stores.persistent.open_envelope`).
    """

    entity: str
    version: int
    shape: str
    payload: Any


UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def new_store_version() -> int:
    """The version a store gives a task it adds; every later write adds one.

    Random, not 1: a task deleted and added again under the same id must never have a version
    that a writer who read the old one could name. 40 bits: exact in a double (Redis's Lua
    numbers) for a trillion writes, and in every database's 64-bit integer.
    """
    return secrets.randbits(40) + 1


def to_timestamp_us(value: datetime | None) -> int | None:
    """``next_run_time`` as stores index it: integer microseconds since the epoch, or None."""
    return None if value is None else utc_timestamp_us(value)


def from_timestamp_us(value: int | None, tz: tzinfo | None = None) -> datetime | None:
    """The aware datetime of :func:`to_timestamp_us`, in ``tz`` (UTC by default)."""
    if value is None:
        return None
    return datetime_from_us(int(value), UTC if tz is None else tz)


def _registry(registry: PluginRegistry | None) -> PluginRegistry:
    if registry is not None:
        return registry
    from asyncz.core.plugins import default_registry

    return default_registry()


def _instance_method_ref(fn: Any) -> str | None:
    """The reference of the function behind a method bound to an instance, or None."""
    if not inspect.ismethod(fn) or inspect.isclass(fn.__self__):
        return None
    try:
        return obj_to_ref(fn.__func__)
    except ValueError:
        return None


def _unreferenceable(task: Task, exc: Exception) -> SerializationError:
    return SerializationError(
        f"task {task.id!r} cannot be kept in a persistent store: {exc}. Persistent stores "
        "keep the callable as a 'module:qualname' reference, so it must be a module-level "
        "function, a classmethod or staticmethod, a method of an instance of a module-level "
        "class, or a 'module:qualname' string; lambdas, nested functions and functools.partial "
        "objects only work in the memory store"
    )


def task_to_record(task: Task, registry: PluginRegistry | None = None) -> dict[str, Any]:
    """The record of ``task``; :class:`SerializationError` if it could not be restored later."""
    if task.fn is None:
        raise SerializationError(f"task {task.id!r} has no callable to store")
    args = list(task.args)
    try:
        fn_ref = obj_to_ref(task.fn)
    except ValueError as exc:
        method_ref = _instance_method_ref(task.fn)
        if method_ref is None:
            raise _unreferenceable(task, exc) from None
        # A method of an instance no module names: kept as Asyncz keeps it, the class's
        # function with the instance as first argument (the serializer must encode it).
        fn_ref = method_ref
        args.insert(0, task.fn.__self__)  # type: ignore[attr-defined]
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
        "args": args,
        "kwargs": dict(task.kwargs),
        "trigger": [alias, state],
        "executor": task.executor,
        "coalesce": task.coalesce,
        "max_instances": task.max_instances,
        "mistrigger_grace_time": task.mistrigger_grace_time,
        "timeout": task.timeout,
        "next_run_time": to_timestamp_us(task.next_run_time),
        # Only when not the default: records of tasks that never set it stay as version 1 of
        # the layout wrote them, readable by every asyncz.
        **({"on_crash": task.on_crash} if task.on_crash != "skip" else {}),
    }


#: The length of a packed record (:func:`pack_record`) of :data:`RECORD_VERSION`.
PACKED_LENGTH = 15


def pack_record(record: dict[str, Any]) -> tuple[Any, ...]:
    """The same record as a tuple: format, version, id, name, fn, args, kwargs, trigger alias,
    trigger state, executor, coalesce, max_instances, mistrigger_grace_time, timeout,
    next_run_time.

    A serializer may keep this form instead of the dict (``pickle`` does): decoding it does not
    rebuild fourteen key strings and a dict per record, which made up a fifth of loading
    a stored task. :meth:`RecordReader.task` reads both forms; :func:`unpack_record` turns this
    one back into the dict.
    """
    alias, state = record["trigger"]
    packed = (
        record["format"], record["version"], record["id"], record["name"], record["fn"],
        tuple(record["args"]), record["kwargs"], alias, state, record["executor"],
        record["coalesce"], record["max_instances"], record["mistrigger_grace_time"],
        record["timeout"], record["next_run_time"],
    )  # fmt: skip
    on_crash = record.get("on_crash")
    # The optional fields after the fifteen: only when one is not its default.
    return packed if on_crash is None else (*packed, on_crash)


def unpack_record(packed: Any) -> dict[str, Any]:
    """The dict form of a packed record; ``ValueError`` for a tuple that is not one.

    A record packed by a newer version (another length) gives only its format and version,
    which is enough for :meth:`RecordReader.task` to say that asyncz must be upgraded.
    """
    if type(packed) is not tuple or len(packed) < 2 or packed[0] != RECORD_FORMAT:
        raise ValueError(f"{type(packed).__name__} is not a packed asyncz task record")
    version = packed[1]
    extra: dict[str, Any] = {}
    if len(packed) == PACKED_LENGTH + 1:
        extra["on_crash"] = packed[PACKED_LENGTH]
        packed = packed[:PACKED_LENGTH]
    if len(packed) != PACKED_LENGTH:
        if type(version) is int and version > RECORD_VERSION:
            return {"format": RECORD_FORMAT, "version": version}
        raise ValueError(
            f"a packed task record of version {version!r} has {len(packed)} fields, not "
            f"{PACKED_LENGTH}"
        )
    (
        fmt, version, task_id, name, fn, args, kwargs, alias, state, executor, coalesce,
        max_instances, grace, timeout, next_run_time,
    ) = packed  # fmt: skip
    return {
        "format": fmt,
        "version": version,
        "id": task_id,
        "name": name,
        "fn": fn,
        "args": list(args) if isinstance(args, (tuple, list)) else args,
        "kwargs": kwargs,
        "trigger": [alias, state],
        "executor": executor,
        "coalesce": coalesce,
        "max_instances": max_instances,
        "mistrigger_grace_time": grace,
        "timeout": timeout,
        "next_run_time": next_run_time,
        **extra,
    }


def record_summary(record: Any) -> tuple[str, str, int | None]:
    """``(callable reference, trigger alias, next_run_time)`` of a record, in either form,
    that :meth:`RecordReader.task` accepted."""
    if type(record) is tuple:
        return record[4], record[7], record[14]
    return record["fn"], record["trigger"][0], record.get("next_run_time")


def record_run_time(record: Any) -> Any:
    """The ``next_run_time`` a record (either form, unchecked) holds; None if it has none."""
    if type(record) is tuple:
        return record[14] if len(record) in (PACKED_LENGTH, PACKED_LENGTH + 1) else None
    return record.get("next_run_time") if isinstance(record, dict) else None


def _rebuild_error(alias: str, exc: Exception) -> TaskRestoreError:
    return TaskRestoreError(f"its {alias!r} trigger cannot be rebuilt from the stored state: {exc}")


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


def _compile_restored_task() -> Any:
    """``_restored_task(task_id, name, fn, args, kwargs, trigger, executor, coalesce,
    max_instances, grace, timeout, next_time, scheduler, store_alias) -> Task``: a stored task
    with these (already checked) values, bound to its scheduler and store, its other fields at
    their defaults; without attrs' hooks, and without ``__attrs_post_init__`` (which would
    schedule a task that names a scheduler).

    Generated, as attrs generates ``__init__``, so that every field is one plain slot store
    whatever fields Task gains (a loop over the defaults cost a third of the function)."""
    params = (
        "task_id", "name", "fn", "args", "kwargs", "trigger", "executor", "coalesce",
        "max_instances", "grace", "timeout", "next_time", "scheduler", "store_alias",
    )  # fmt: skip
    given = zip(_RECORD_FIELDS[: len(params)], params, strict=True)
    lines = [
        f"def _restored_task({', '.join(params)}):",
        "    task = _new(_Unhooked)",
        *(f"    task.{field} = {param}" for field, param in given),
        "    task.pending = False",
        "    task.submitted = True",
    ]
    namespace: dict[str, Any] = {"_new": object.__new__, "_Unhooked": _Unhooked}
    for number, (field_name, default, factory) in enumerate(_OTHER_FIELDS):
        namespace[f"_default_{number}"] = default
        call = "()" if factory else ""
        lines.append(f"    task.{field_name} = _default_{number}{call}")
    lines += ["    task.__class__ = _Task", "    return task"]
    namespace["_Task"] = Task
    exec("\n".join(lines), namespace)  # field names come from attrs.fields(Task), nothing else
    return namespace["_restored_task"]


_restored_task = _compile_restored_task()


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
        # Aliases whose states did not repeat, with their trigger class: rebuilt directly.
        self._no_sharing: dict[str, type] = {}
        # The zone of the last task's run time and its fixed_epoch (tasks mostly share one).
        self._zone: Any = UTC
        self._zone_epoch: datetime | None = _EPOCH

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

    def _trigger(self, alias: str, state: dict[str, Any]) -> Any:
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
                        self._no_sharing[alias] = cls
                        for stale in [k for k in self._triggers if k[0] == alias]:
                            del self._triggers[stale]
                        key = None
        try:
            trigger: Any = object.__new__(cls)
            trigger.__setstate__(state)
        except Exception as exc:
            raise _rebuild_error(alias, exc) from None
        if key is not None:
            # The first one is kept private: every task gets an object of its own.
            self._triggers[key] = trigger
            return _copy_trigger(trigger)
        return trigger

    def task(self, record: Any, next_run_us: int | bool | None = False) -> Task:
        """Rebuild a task from its record (either form, see :func:`pack_record`);
        :class:`TaskRestoreError` saying why it cannot be.

        ``next_run_us`` overrides the record's run time with the store's own index (stores
        keep the run time in an indexed column and do not rewrite the record after every
        run); the default ``False`` uses the record's.
        """
        # The common case first: a record exactly as task_to_record (or pack_record) writes
        # it, every field checked in one expression (a subset of what the thorough path below
        # accepts, giving the same task). Anything else takes the thorough path, which says
        # what is wrong.
        kind = type(record)
        fmt: Any = None
        if kind is tuple and len(record) == PACKED_LENGTH:
            (
                fmt, version, task_id, name, ref, args, kwargs, alias, state, executor,
                coalesce, limit, grace, timeout, run_us,
            ) = record  # fmt: skip
            shaped = type(args) is tuple and type(alias) is str and type(state) is dict
        elif kind is dict:
            try:
                fmt, version, ref, trigger_data, task_id, name, args, kwargs = _FIELDS_A(record)
                executor, coalesce, limit, grace, timeout = _FIELDS_B(record)
            except KeyError:
                fmt = None
            else:
                run_us = record.get("next_run_time")
                shaped = (
                    type(args) is list
                    and type(trigger_data) is list
                    and len(trigger_data) == 2
                    and type(trigger_data[0]) is str
                    and type(trigger_data[1]) is dict
                )
                if shaped:
                    alias, state = trigger_data
        if fmt == RECORD_FORMAT:
            if next_run_us is not False:
                run_us = next_run_us
            if (
                shaped
                and type(version) is int
                and version <= RECORD_VERSION
                and type(ref) is str
                and type(task_id) is str
                and task_id
                and not task_id.isspace()
                and (name is None or type(name) is str)
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
                cls = self._no_sharing.get(alias)
                if cls is None:
                    trigger = self._trigger(alias, state)
                else:  # _trigger's path for states that do not repeat, inline
                    trigger = object.__new__(cls)
                    try:
                        trigger.__setstate__(state)
                    except Exception as exc:
                        raise _rebuild_error(alias, exc) from None
                next_time: datetime | None = None
                if run_us is not None:
                    # In the trigger's zone (UTC if it has none), as from_timestamp_us gives it.
                    zone = getattr(trigger, "timezone", UTC)
                    if zone is not self._zone:
                        if not isinstance(zone, tzinfo):
                            zone = UTC
                        self._zone, self._zone_epoch = zone, fixed_epoch(zone)
                    epoch = self._zone_epoch
                    if epoch is not None:
                        next_time = epoch + _ONE_US * run_us
                    else:
                        next_time = datetime_from_us(run_us, zone)
                if name is None:
                    name = callable_name(fn)
                task = _new_task(
                    task_id, name, fn, tuple(args), kwargs, trigger, executor, coalesce, limit,
                    grace, timeout, next_time, self.scheduler, self.store_alias,
                )  # fmt: skip
                if kind is dict and "on_crash" in record:
                    _set_on_crash(task, record["on_crash"])
                return task
        if kind is tuple:
            try:
                record = unpack_record(record)
            except ValueError:
                pass  # the thorough path says it is not a record
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
        data = get("trigger")
        if (
            not isinstance(data, list)
            or len(data) != 2
            or not isinstance(data[0], str)
            or not isinstance(data[1], dict)
        ):
            raise TaskRestoreError(f"the record's trigger {data!r} is not (alias, state)")
        trigger = self._trigger(data[0], data[1])
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
            zone = getattr(trigger, "timezone", UTC)
            next_time = datetime_from_us(run_us, zone if isinstance(zone, tzinfo) else UTC)
        task = _new_task(
            task_id, name, fn, tuple(args), kwargs, trigger, executor, coalesce, limit, grace,
            timeout, next_time, self.scheduler, self.store_alias,
        )  # fmt: skip
        on_crash = get("on_crash")
        if on_crash is not None:
            _set_on_crash(task, on_crash)
        return task


def _set_on_crash(task: Task, value: Any) -> None:
    if value not in ON_CRASH_POLICIES:
        raise _bad_field("on_crash", value)
    object.__setattr__(task, "on_crash", value)


def record_to_task(
    record: Any,
    registry: PluginRegistry | None = None,
    *,
    next_run_us: int | bool | None = False,
) -> Task:
    """Rebuild one task from its record (see :meth:`RecordReader.task`)."""
    return RecordReader(registry).task(record, next_run_us)
