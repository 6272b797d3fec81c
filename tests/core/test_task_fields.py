"""The add_task fast path (asyncz.core.task_fields) against Task's own converters and validators:
every value it takes is one Task(...) takes, stored the same; every other value goes to Task(...),
so errors (types and messages) are Task's; and the common calls do take it."""

from __future__ import annotations

import functools
import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from asyncz.core import converters
from asyncz.core.task import Task
from asyncz.core.task_fields import new_task, plain_fields
from asyncz.schedulers import AsyncIOScheduler
from asyncz.triggers import DateTrigger, IntervalTrigger

UTC = timezone.utc


def job() -> None:
    pass


def job_x(x: int, *, y: int = 0) -> None:
    pass


class StrSub(str):
    pass


TRIGGER = IntervalTrigger(seconds=5, timezone=UTC)

# Good and bad values of every field plain_fields knows, plain and unusual shapes alike.
VALUES: dict[str, list[Any]] = {
    "id": [None, "a", "x" * 191, "x" * 192, "", " ", "a\x00b", "é", 5, StrSub("s")],
    "name": [None, "n", "", 5, StrSub("n")],
    "args": [None, (), (1,), [1], "ab", {"a": 1}, 5],
    "kwargs": [None, {}, {"x": 1}, {1: 2}, [], "ab", {StrSub("x"): 1}],
    "coalesce": [True, False, 1, 0, None, "yes"],
    "executor": ["default", "pool", "", "  ", 5, None, StrSub("e")],
    "mistrigger_grace_time": [None, 1, 2.5, 0, -1, 0.0, float("nan"), float("inf"), True,
                              timedelta(seconds=3), "soon", 10**400],
    "max_instances": [1, 3, 0, -1, True, 2.0, "2", None],
    "timeout": [None, 1, 0.5, 0, -2.0, False, timedelta(0), "x"],
    "on_crash": ["skip", "rerun", "other", None, StrSub("rerun")],
}  # fmt: skip

_COMPARED = [f.name for f in attrs.fields(Task) if f.name != "id"]


def _outcome(fn: Any, trigger: Any, fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        task = Task(fn=fn, trigger=trigger, **fields)
    except Exception as exc:
        return ("error", (type(exc), str(exc), getattr(exc, "__notes__", None)))
    return ("task", task)


def _same_task(fast: Task, slow: Task, id_given: bool) -> None:
    for name in _COMPARED:
        assert getattr(fast, name) == getattr(slow, name), name
        assert type(getattr(fast, name)) is type(getattr(slow, name)), name
    if id_given:
        assert fast.id == slow.id
    else:
        assert isinstance(fast.id, str) and len(fast.id) == 32


def _check(fn: Any, trigger: Any, fields: dict[str, Any]) -> bool:
    values = plain_fields(fn, trigger, fields)
    kind, slow = _outcome(fn, trigger, fields)
    if values is None:
        return False
    assert kind == "task", f"fast path took {fields!r}, which Task(...) refuses: {slow}"
    fast = new_task(fn, trigger, values, None)
    assert type(fast) is Task
    _same_task(fast, slow, fields.get("id") is not None)
    return True


@pytest.mark.parametrize("field", sorted(VALUES))
def test_each_field_alone_matches_task(field: str) -> None:
    taken = [value for value in VALUES[field] if _check(job, TRIGGER, {field: value})]
    assert taken, f"no value of {field} takes the fast path"


def test_fields_combined_match_task() -> None:
    # Two bad values at once: the fast path must not pick which error wins (Task(...) does).
    for (a, b), (va, vb) in itertools.product(
        itertools.combinations(sorted(VALUES), 2), [(0, 0), (0, -1), (-1, 0), (1, 2), (-2, -3)]
    ):
        values_a, values_b = VALUES[a], VALUES[b]
        _check(job, TRIGGER, {a: values_a[va % len(values_a)], b: values_b[vb % len(values_b)]})


@pytest.mark.parametrize(
    ("fn", "trigger", "fields"),
    [
        ("tests.core.test_task_fields:job", TRIGGER, {}),  # a reference: Task resolves it
        (42, TRIGGER, {}),
        (None, TRIGGER, {}),
        (functools.partial(job_x, 1), TRIGGER, {}),
        (job, None, {}),
        (job, object(), {}),
        (job, TRIGGER, {"unknown": 1}),
        (job, TRIGGER, {"next_run_time": None}),
    ],
)
def test_unusual_calls_match_task(fn: Any, trigger: Any, fields: dict[str, Any]) -> None:
    _check(fn, trigger, fields)


def test_common_shapes_take_the_fast_path() -> None:
    assert plain_fields(job, TRIGGER, {}) is not None
    defaults = {"mistrigger_grace_time": None, "coalesce": False, "max_instances": 1}
    assert plain_fields(job, TRIGGER, {**defaults, "timeout": None}) is not None
    fields = {**defaults, "id": "t1", "name": "n", "args": (1,), "kwargs": {"y": 2}}
    assert plain_fields(job_x, TRIGGER, fields) is not None
    assert plain_fields(job, TRIGGER, {"on_crash": "rerun", "timeout": 30}) is not None


def test_new_task_copies_kwargs_and_defaults() -> None:
    kwargs = {"y": 1}
    values = plain_fields(job_x, TRIGGER, {"args": (1,), "kwargs": kwargs})
    assert values is not None
    task = new_task(job_x, TRIGGER, values, "s")
    assert task.kwargs == kwargs and task.kwargs is not kwargs
    assert (task.pending, task.submitted) == (True, False)
    assert (task.store_alias, task.scheduler) == ("s", None)
    assert task.next_run_time is None and task.decorator_options is None
    assert task.store_version is None
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        task.id = "other"
    with pytest.raises(ValueError, match="positive integer"):
        task.max_instances = 0  # the hooks are back once built


def _scheduler() -> AsyncIOScheduler:
    return AsyncIOScheduler(
        stores={"default": {"type": "memory"}},
        task_defaults={"mistrigger_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone=ZoneInfo("UTC"),
    )


@pytest.mark.parametrize(
    "options",
    [
        {"max_instances": 0},
        {"max_instances": True},
        {"id": ""},
        {"id": "x" * 192},
        {"name": ""},
        {"args": "ab"},
        {"kwargs": {1: 2}},
        {"coalesce": "yes"},
        {"executor": " "},
        {"mistrigger_grace_time": -1},
        {"timeout": 0},
        {"on_crash": "never"},
        {"args": (1, 2)},  # does not fit job
    ],
)
def test_add_task_refuses_as_task_does(options: dict[str, Any]) -> None:
    scheduler = _scheduler()
    with pytest.raises(Exception) as by_add:
        scheduler.add_task(job, "interval", seconds=5, **options)
    with pytest.raises(Exception) as by_task:
        task = Task(fn=job, trigger=TRIGGER, **{**scheduler.task_defaults, **options})
        converters.check_callable_args(task.fn, task.args, task.kwargs)
    assert type(by_add.value) is type(by_task.value)
    assert str(by_add.value) == str(by_task.value)
    assert getattr(by_add.value, "__notes__", None) == getattr(by_task.value, "__notes__", None)
    assert scheduler.get_tasks() == []


def test_added_task_is_the_task_the_constructor_builds() -> None:
    scheduler = _scheduler()
    later = datetime(2030, 1, 1, tzinfo=UTC)
    fast = scheduler.add_task(job_x, "date", run_at=later, args=(1,), kwargs={"y": 2}, id="d")
    slow = Task(
        fn=job_x,
        trigger=DateTrigger(run_at=later, timezone=ZoneInfo("UTC")),
        id="d",
        args=(1,),
        kwargs={"y": 2},
        **scheduler.task_defaults,
    )
    for name in _COMPARED:
        if name not in ("trigger", "scheduler", "store_alias", "pending"):
            assert getattr(fast, name) == getattr(slow, name), name
    assert fast.trigger.run_at == later
    assert (fast.scheduler, fast.store_alias, fast.pending) == (scheduler, "default", True)


def test_interval_units_lookup_keeps_every_check() -> None:
    IntervalTrigger(seconds=1)
    IntervalTrigger(seconds=5)
    with pytest.raises(TypeError, match="interval seconds must be a number"):
        IntervalTrigger(seconds=True)  # equal to 1, which is looked up
    with pytest.raises(TypeError, match="interval seconds must be a number"):
        IntervalTrigger(seconds=Decimal(5))
    with pytest.raises(ValueError, match="finite number >= 0"):
        IntervalTrigger(seconds=float("nan"))
    for _ in range(2):
        with pytest.raises(ValueError, match="the interval must be positive"):
            IntervalTrigger(seconds=0)
    assert IntervalTrigger(seconds=5.0).interval == timedelta(seconds=5)
    assert IntervalTrigger(minutes=1, seconds=0.5).interval == timedelta(seconds=60.5)
    with pytest.raises(TypeError, match="give either interval="):
        IntervalTrigger(timedelta(seconds=5), seconds=5)


def test_bare_callable_fit_is_remembered_per_callable() -> None:
    converters.check_callable_args(job, (), {})
    converters.check_callable_args(job, (), {})
    for _ in range(2):
        with pytest.raises(ValueError, match="have not been supplied"):
            converters.check_callable_args(job_x, (), {})
    with pytest.raises(ValueError, match="longer than the target callable"):
        converters.check_callable_args(job, (1,), {})
