"""Task field values of the common shapes, checked in one pass: the ``add_task`` hot path.

``Task(...)`` runs attrs' chain of converters and validators, a call or two per field, and
then ``__attrs_post_init__``; adding thousands of tasks before start spends much of its time
there. :func:`plain_fields` tests each value against the shapes nearly every call has (exact
types: a ``str`` id, a ``tuple`` of args, an ``int`` limit, ...) exactly as the field's converter
and validator would take them, and :func:`new_task` fills a Task from the result with plain slot
stores. Anything else (a list of args, a ``timedelta`` grace time, a bad value) gets ``None``
here and goes through ``Task(...)``, whose checks decide and whose messages are the ones users
see: this module never raises for a value.

The rules are Task's (:mod:`asyncz.core.task`); ``tests/core/test_task_fields.py`` holds the two
together over good and bad values of every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncz.core.converters import callable_name
from asyncz.core.records import _new_task as _filled_task
from asyncz.core.runs import ON_CRASH_POLICIES
from asyncz.core.task import Task, _new_id, task_id_problem

__all__ = ["new_task", "plain_fields"]

#: The fields plain_fields knows; any other key (a typo Task(...) rejects) goes to Task(...).
_PLAIN_KEYS = frozenset(
    {"id", "name", "args", "kwargs", "coalesce", "executor", "mistrigger_grace_time"}
    | {"max_instances", "timeout", "on_crash"}
)

_EXACT_INTS = 2**53


def _seconds(value: Any) -> bool:
    """A positive float, or a positive int that float() takes exactly (a huge one would raise
    there: Task(...) raises it, after any error of an earlier field)."""
    kind = type(value)
    return (kind is float and value > 0) or (kind is int and 0 < value < _EXACT_INTS)


def plain_fields(fn: Any, trigger: Any, fields: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What ``Task(fn=fn, trigger=trigger, **fields)`` would store, as ``(id, name, args,
    kwargs, executor, coalesce, max_instances, mistrigger_grace_time, timeout, on_crash)``, if
    every value has a common shape that its converter keeps and its validator accepts; else
    None. A new id is drawn when none is given, as the constructor would."""
    if not _PLAIN_KEYS.issuperset(fields) or isinstance(fn, str) or not callable(fn):
        return None
    if not callable(getattr(trigger, "get_next_trigger_time", None)):
        return None
    get = fields.get
    id_, name, args, kwargs = get("id"), get("name"), get("args"), get("kwargs")
    if id_ is None:
        id_ = _new_id()
    elif type(id_) is not str or task_id_problem(id_) is not None:
        return None
    if name is None:
        name = callable_name(fn)  # as __attrs_post_init__, and checked as its assignment is
    if type(name) is not str or not name:
        return None
    if args is None:
        args = ()
    elif type(args) is not tuple:
        return None
    if kwargs is None:
        kwargs = {}
    elif type(kwargs) is dict and all(type(key) is str for key in kwargs):
        kwargs = dict(kwargs)  # the converter's copy
    else:
        return None
    executor, coalesce = get("executor", "default"), get("coalesce", True)
    limit, on_crash = get("max_instances", 1), get("on_crash", "skip")
    if (
        type(executor) is not str
        or not executor
        or executor.isspace()
        or (coalesce is not True and coalesce is not False)
        or type(limit) is not int
        or limit < 1
        or type(on_crash) is not str
        or on_crash not in ON_CRASH_POLICIES
    ):
        return None
    grace, timeout = get("mistrigger_grace_time"), get("timeout")
    if grace is not None:
        if not _seconds(grace):
            return None
        grace = float(grace)
    if timeout is not None:
        if not _seconds(timeout):
            return None
        timeout = float(timeout)
    return (id_, name, args, kwargs, executor, coalesce, limit, grace, timeout, on_crash)


def new_task(fn: Any, trigger: Any, values: tuple[Any, ...], store_alias: str | None) -> Task:
    """A new (pending, unbound) Task with ``values`` from :func:`plain_fields`, in store
    ``store_alias``; its other fields at their defaults, as ``Task(...)`` leaves them."""
    id_, name, args, kwargs, executor, coalesce, limit, grace, timeout, on_crash = values
    task = _filled_task(
        id_, name, fn, args, kwargs, trigger, executor, coalesce, limit, grace, timeout, None,
        None, store_alias,
    )  # fmt: skip
    setattr_ = object.__setattr__  # bookkeeping (and on_crash, checked): no attrs hooks
    setattr_(task, "pending", True)
    setattr_(task, "submitted", False)
    if on_crash != "skip":
        setattr_(task, "on_crash", on_crash)
    return task
