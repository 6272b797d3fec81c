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

from asyncz.core.converters import obj_to_ref, ref_to_obj, utc_timestamp_us
from asyncz.core.errors import SerializationError, TaskRestoreError
from asyncz.core.task import Task

if TYPE_CHECKING:
    from asyncz.core.plugins import PluginRegistry

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
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


def _need(record: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = record.get(key)
    if not isinstance(value, kind):
        raise TaskRestoreError(f"the record's {key!r} is {value!r}, not a valid value")
    return value


def record_to_task(
    record: Any,
    registry: PluginRegistry | None = None,
    *,
    next_run_us: int | bool | None = False,
) -> Task:
    """Rebuild a task from its record; :class:`TaskRestoreError` saying why it cannot be.

    ``next_run_us`` overrides the record's run time with the store's own index (stores keep
    the run time in an indexed column and do not rewrite the record after every run); the
    default ``False`` uses the record's.
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
    fn_ref = _need(record, "fn", str)
    try:
        fn = ref_to_obj(fn_ref)
    except Exception as exc:
        raise TaskRestoreError(
            f"its callable {fn_ref!r} cannot be imported ({exc}); was it moved or renamed? "
            "Restore the name (or an alias to it) and the task loads again"
        ) from None
    trigger_data = record.get("trigger")
    if (
        not isinstance(trigger_data, list)
        or len(trigger_data) != 2
        or not isinstance(trigger_data[0], str)
        or not isinstance(trigger_data[1], dict)
    ):
        raise TaskRestoreError(f"the record's trigger {trigger_data!r} is not (alias, state)")
    alias, state = trigger_data
    try:
        trigger_class = _registry(registry).resolve("trigger", alias)
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TaskRestoreError(
            f"its trigger alias {alias!r} is not available ({first_line}); install or "
            "re-enable the plugin that provides it and the task loads again"
        ) from None
    try:
        trigger: Any = object.__new__(trigger_class)
        trigger.__setstate__(state)
    except Exception as exc:
        raise TaskRestoreError(
            f"its {alias!r} trigger cannot be rebuilt from the stored state: {exc}"
        ) from None
    if next_run_us is False:
        run_us = record.get("next_run_time")
    else:
        run_us = next_run_us
    if run_us is not None and (isinstance(run_us, bool) or not isinstance(run_us, int)):
        raise TaskRestoreError(f"the record's next run time {run_us!r} is not an integer")
    trigger_tz = getattr(trigger, "timezone", None)
    next_time = from_timestamp_us(run_us, trigger_tz if isinstance(trigger_tz, tzinfo) else UTC)
    try:
        task = Task(
            id=_need(record, "id", str),
            name=record.get("name"),
            fn=fn,
            args=_need(record, "args", list),
            kwargs=_need(record, "kwargs", dict),
            trigger=trigger,
            executor=_need(record, "executor", str),
            coalesce=_need(record, "coalesce", bool),
            max_instances=_need(record, "max_instances", int),
            mistrigger_grace_time=record.get("mistrigger_grace_time"),
            timeout=record.get("timeout"),
            next_run_time=next_time,
        )
    except TaskRestoreError:
        raise
    except Exception as exc:
        raise TaskRestoreError(f"its fields are not valid: {exc}") from None
    return task
