"""Reading the records Asyncz 0.17 wrote: pickled ``TaskStateEnvelope``\\ s around a pydantic
``TaskState`` whose trigger carries a pydantic state object.

What such a pickle names, found with :mod:`pickletools` in records Asyncz 0.17.2 wrote
(``tests/compat/fixtures``):

* ``asyncz.stores.persistence.TaskStateEnvelope`` — asyncz's own envelope class reads it;
* ``asyncz.datastructures.TaskState`` — pydantic there, an attrs class here: read by
  :class:`AsynczTaskState`, which becomes a plain :class:`~asyncz.core.task.TaskState`;
* ``asyncz.triggers.{date.DateTrigger, interval.IntervalTrigger, cron.trigger.CronTrigger,
  combination.AndTrigger, combination.OrTrigger}`` — asyncz's own triggers, whose
  ``__setstate__`` receives one of the state readers below, already in asyncz's form;
* ``asyncz.datastructures.{DateState, IntervalState, CronState, CombinationState}`` — the
  state readers (:class:`DateState`, ...): each takes the fields Asyncz pickled and builds the
  state of asyncz's trigger through that trigger's constructor (so every value is checked as
  ``DateTrigger(...)`` etc. check it);
* ``asyncz.triggers.cron.fields.*Field`` and ``asyncz.triggers.cron.expressions.*Expression``
  — the parsed cron fields; only each field's name and source text (``exprs``) are used, and
  the expression objects are dropped (:class:`AsynczModel`);
* ``asyncz.triggers.shutdown.ShutdownTrigger`` — pydantic state without anything in it
  (a reader that becomes asyncz's ``ShutdownTrigger``; Asyncz itself cannot read such a
  record back);
* ``datetime``, ``zoneinfo.ZoneInfo``, ``builtins.getattr`` (a ``ZoneInfo``'s pickle) and, at
  protocols 0-2, ``copyreg._reconstructor``/``builtins.object``/``_codecs.encode``/``set``.

Nothing named in a record is imported or called beyond what :mod:`pickle` itself does: a
combined trigger's children are named by ``"module:Class"`` references, which are looked up in
a fixed table of Asyncz's built-in triggers, never imported. A record naming a trigger class of
its own (a user's ``BaseTrigger`` subclass) is not read (``ValueError``, so the store
quarantines it). asyncz never writes these forms.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

import attrs

from asyncz.core.task import TaskState

__all__ = [
    "ASYNCZ_TRIGGER_ALIASES",
    "AsynczModel",
    "AsynczRecordUnpickler",
    "AsynczTaskState",
    "CombinationState",
    "CronState",
    "DateState",
    "IntervalState",
    "is_asyncz_record",
    "loads_asyncz_record",
]

#: Asyncz's built-in trigger classes, as a combined trigger's state names them
#: (``obj_to_ref(cls)``), and the alias of asyncz's trigger that reads each.
ASYNCZ_TRIGGER_ALIASES: dict[str, str] = {
    "asyncz.triggers.date:DateTrigger": "date",
    "asyncz.triggers.interval:IntervalTrigger": "interval",
    "asyncz.triggers.cron.trigger:CronTrigger": "cron",
    "asyncz.triggers.combination:AndTrigger": "and",
    "asyncz.triggers.combination:OrTrigger": "or",
    "asyncz.triggers.shutdown:ShutdownTrigger": "shutdown",
}

#: The fields of Asyncz's TaskState that describe the task (``scheduler`` and ``store_alias``,
#: where a task lived when it was written, are not taken from a record).
_TASK_FIELDS = (
    "id",
    "name",
    "fn",
    "fn_reference",
    "args",
    "kwargs",
    "coalesce",
    "trigger",
    "executor",
    "mistrigger_grace_time",
    "max_instances",
    "next_run_time",
)
#: Asyncz's cron field names, in its order.
_CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


def pydantic_fields(state: Any) -> dict[str, Any]:
    """The field values in the pickled state of an Asyncz pydantic model: its ``__dict__``
    and, for the models allowing extra fields (triggers, cron expressions), its extras."""
    if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
        state = state[0] or {}
    if not isinstance(state, Mapping):
        raise TypeError(f"expected an Asyncz model's pickled state, got {type(state).__name__}")
    if "__dict__" not in state:
        return dict(state)
    fields = dict(state.get("__pydantic_extra__") or {})
    fields.update(state["__dict__"] or {})
    return fields


class AsynczModel:
    """Any other pydantic model of Asyncz in a record (cron fields and expressions): keeps the
    field values, for the state reader that holds it."""

    fields: dict[str, Any]

    def __init__(self) -> None:
        self.fields = {}

    def __setstate__(self, state: Any) -> None:
        self.fields = pydantic_fields(state)


class _TriggerState(dict[str, Any]):
    """A state reader: a dict that ends up holding the state asyncz's trigger reads.

    Unpickling creates it empty, then hands it Asyncz's pickled fields (``__setstate__``);
    asyncz's trigger then receives it in its own ``__setstate__``.
    """

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        self.clear()
        self.update(self.translate(pydantic_fields(state)))

    def translate(self, fields: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def __reduce__(self) -> Any:  # a copy is what asyncz's trigger reads: a plain dict
        return (dict, (dict(self),))


def _zone(value: Any) -> tzinfo | None:
    return value if isinstance(value, tzinfo) else None


class DateState(_TriggerState):
    """Asyncz's ``DateState`` (``run_at``) → asyncz's ``date`` trigger state."""

    __slots__ = ()

    def translate(self, fields: dict[str, Any]) -> dict[str, Any]:
        from asyncz.plugins.triggers.date import DateTrigger

        run_at = fields["run_at"]
        if not isinstance(run_at, datetime):
            raise TypeError(f"DateState.run_at is a {type(run_at).__name__}, not a datetime")
        # Asyncz keeps run_at in the trigger's zone (a naive one would be read as UTC).
        return DateTrigger(run_at=run_at, timezone=_zone(run_at.tzinfo) or "UTC").__getstate__()


class IntervalState(_TriggerState):
    """Asyncz's ``IntervalState`` (``interval``, ``start_at``, ``end_at``, ``timezone``,
    ``jitter``) → asyncz's ``interval`` trigger state."""

    __slots__ = ()

    def translate(self, fields: dict[str, Any]) -> dict[str, Any]:
        from asyncz.plugins.triggers.interval import IntervalTrigger

        interval = fields.get("interval")
        if not isinstance(interval, timedelta):
            raise TypeError(f"IntervalState.interval is {interval!r}, not a timedelta")
        trigger = IntervalTrigger(
            interval,
            start_at=fields.get("start_at"),
            end_at=fields.get("end_at"),
            timezone=_zone(fields.get("timezone")),
            jitter=fields.get("jitter"),
        )
        return trigger.__getstate__()


class CronState(_TriggerState):
    """Asyncz's ``CronState`` (``fields``, ``start_at``, ``end_at``, ``timezone``, ``jitter``)
    → asyncz's ``cron`` trigger state: the fields Asyncz was given (the ones not
    ``is_default``), by their source text, into ``CronTrigger(...)``."""

    __slots__ = ()

    def translate(self, fields: dict[str, Any]) -> dict[str, Any]:
        from asyncz.plugins.triggers.cron.trigger import CronTrigger

        given: dict[str, Any] = {}
        for item in fields.get("fields") or ():
            field = item.fields if isinstance(item, AsynczModel) else pydantic_fields(item)
            name = field.get("name")
            if name not in _CRON_FIELDS:
                raise ValueError(f"CronState holds an unknown cron field {name!r}")
            if not field.get("is_default"):
                given[name] = str(field["exprs"])
        trigger = CronTrigger(
            **given,
            start_at=fields.get("start_at"),
            end_at=fields.get("end_at"),
            timezone=_zone(fields.get("timezone")),
            jitter=fields.get("jitter"),
        )
        return trigger.__getstate__()


def _child_trigger(reference: Any, state: Any) -> Any:
    """One child of an Asyncz combined trigger as asyncz's trigger."""
    from asyncz.plugins.triggers.combining import AndTrigger, OrTrigger
    from asyncz.plugins.triggers.cron.trigger import CronTrigger
    from asyncz.plugins.triggers.date import DateTrigger
    from asyncz.plugins.triggers.interval import IntervalTrigger
    from asyncz.plugins.triggers.shutdown import ShutdownTrigger

    alias = ASYNCZ_TRIGGER_ALIASES.get(reference) if isinstance(reference, str) else None
    if alias is None:
        raise ValueError(
            f"the combined trigger holds a trigger of class {reference!r}, which is not one of "
            "Asyncz's built-in triggers"
        )
    if alias == "shutdown":  # Asyncz pickles it as pydantic state with nothing in it
        return ShutdownTrigger()
    classes: dict[str, Any] = {
        "date": DateTrigger,
        "interval": IntervalTrigger,
        "cron": CronTrigger,
        "and": AndTrigger,
        "or": OrTrigger,
    }
    if not isinstance(state, _TriggerState):
        raise TypeError(f"the {alias} child's state is a {type(state).__name__}")
    cls = classes[alias]
    trigger = cls.__new__(cls)
    trigger.__setstate__(dict(state))
    return trigger


class CombinationState(_TriggerState):
    """Asyncz's ``CombinationState`` (``triggers`` as ``(reference, state)`` pairs,
    ``jitter``) → the state of asyncz's ``and``/``or`` trigger (the class the record names
    reads it; the search limits of ``and`` take their defaults, which Asyncz did not have)."""

    __slots__ = ()

    def translate(self, fields: dict[str, Any]) -> dict[str, Any]:
        from asyncz.plugins.triggers.combining import OrTrigger

        children = [_child_trigger(ref, state) for ref, state in fields.get("triggers") or ()]
        # OrTrigger's state is the state both combinations share (children and jitter).
        return OrTrigger(children, fields.get("jitter")).__getstate__()


def _shutdown_trigger_class() -> type:
    from asyncz.plugins.triggers.shutdown import ShutdownTrigger

    return ShutdownTrigger


def _make_shutdown_reader() -> type:
    base = _shutdown_trigger_class()

    class AsynczShutdownTrigger(base):  # type: ignore[valid-type,misc]
        """Asyncz's ``ShutdownTrigger`` (pydantic state holding nothing a trigger needs):
        becomes asyncz's :class:`~asyncz.triggers.shutdown.ShutdownTrigger` once read."""

        __slots__ = ()

        def __setstate__(self, state: Any) -> None:
            pydantic_fields(state)  # checks it is a model's state
            self.__class__ = base

    AsynczShutdownTrigger.__module__ = __name__
    return AsynczShutdownTrigger


class AsynczTaskState(TaskState):
    """Asyncz's pydantic ``TaskState``: its fields are set on a :class:`TaskState`, which this
    object then becomes (its class is switched: what the store receives is a plain
    ``TaskState``)."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        fields = pydantic_fields(state)
        setattr_ = object.__setattr__
        for attribute in attrs.fields(TaskState):
            name = attribute.name
            setattr_(self, name, fields.get(name) if name in _TASK_FIELDS else None)
        self.__class__ = TaskState  # type: ignore[assignment]


_SHUTDOWN_READER: type | None = None


def _readers() -> dict[tuple[str, str], Any]:
    global _SHUTDOWN_READER
    if _SHUTDOWN_READER is None:
        _SHUTDOWN_READER = _make_shutdown_reader()
    readers: dict[tuple[str, str], Any] = {
        ("asyncz.datastructures", "TaskState"): AsynczTaskState,
        ("asyncz.datastructures", "DateState"): DateState,
        ("asyncz.datastructures", "IntervalState"): IntervalState,
        ("asyncz.datastructures", "CronState"): CronState,
        ("asyncz.datastructures", "CombinationState"): CombinationState,
        ("asyncz.triggers.shutdown", "ShutdownTrigger"): _SHUTDOWN_READER,
    }
    for name in ("BaseField", "WeekField", "DayOfMonthField", "DayOfWeekField", "MonthField"):
        readers["asyncz.triggers.cron.fields", name] = AsynczModel
    for name in (
        "AllExpression",
        "RangeExpression",
        "MonthRangeExpression",
        "WeekdayRangeExpression",
        "WeekdayPositionExpression",
        "LastDayOfMonthExpression",
    ):
        readers["asyncz.triggers.cron.expressions", name] = AsynczModel
    return readers


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (how pickle protocols 0 and 1 create an object), which
    creates the stand-ins with their own ``__new__`` (a dict's, for the state readers)."""
    if isinstance(cls, type) and issubclass(cls, (_TriggerState, AsynczModel, TaskState)):
        return cls.__new__(cls)  # type: ignore[type-var]
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


class AsynczRecordUnpickler(pickle.Unpickler):
    """An unpickler for Asyncz's records: the classes above stand in for Asyncz's pydantic
    ones; every other name is looked up as :mod:`pickle` does."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstructor" and module in ("copyreg", "copy_reg"):
            return _reconstructor
        reader = _readers().get((module, name))
        if reader is not None:
            return reader
        return super().find_class(module, name)


#: How a record Asyncz wrote starts: its first global is the envelope (0.17) or, before
#: envelopes, its TaskState — within the first bytes at every pickle protocol.
_MARKERS = (b"asyncz.stores.persistence", b"asyncz.datastructures")


def is_asyncz_record(data: bytes) -> bool:
    """Whether pickled ``data`` is a record in Asyncz's form (a cheap look at its head)."""
    head = data[:80]
    return _MARKERS[0] in head or _MARKERS[1] in head


def loads_asyncz_record(data: bytes) -> Any:
    """Unpickle a record Asyncz wrote: a ``TaskStateEnvelope`` or a ``TaskState`` of asyncz,
    whose trigger is asyncz's."""
    return AsynczRecordUnpickler(io.BytesIO(data)).load()
