"""Asyncz's Task API on asyncz's Task: ids, repr and str, TaskState pickling, fn_reference,
TaskInfo's fields, get_run_times in either argument order, and the error types of bad fields."""

from __future__ import annotations

import copy
import functools
import gc
import pickle
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncz.datastructures import TaskState
from asyncz.enums import TaskScheduleState
from asyncz.exceptions import AsynczException
from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task, TaskFieldError, TaskInfo
from asyncz.triggers import DateTrigger, IntervalTrigger

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
REF = f"{__name__}:work"


def work(x: int = 0, y: int = 0) -> int:
    return x + y


class Holder:
    def method(self) -> int:
        return 1


def _notes(error: BaseException) -> str:
    return "\n".join([str(error), *getattr(error, "__notes__", ())])


def test_id_none_gets_a_fresh_id_like_no_id() -> None:
    first, second = Task(id=None, fn=work), Task(fn=work)
    assert len(first.id) == 32 and len(second.id) == 32
    assert first.id != second.id
    assert Task(id="given", fn=work).id == "given"


def test_repr_and_str_read_as_asyncz() -> None:
    run_at = datetime(2026, 1, 15, 9, 30, tzinfo=LONDON)
    task = Task(id="t1", name="nightly", fn=work, trigger=DateTrigger(run_at, LONDON))
    assert repr(task) == "<Task (id=t1 name=nightly)>"
    assert str(task) == f"nightly (trigger: {task.trigger}, pending)"
    task.bind(None, "default")
    assert str(task).endswith(", paused)")
    task.next_run_time = run_at
    assert str(task).endswith(", next run at: 2026-01-15 09:30:00 GMT)")


def test_fn_reference_is_the_importable_name_or_none() -> None:
    assert Task(fn=work).fn_reference == REF
    assert Task(fn=REF).fn_reference == REF
    assert Task(fn=lambda: None).fn_reference is None
    assert Task(fn=functools.partial(work, 1)).fn_reference is None
    assert Task(fn=Holder().method).fn_reference is None
    task = Task(fn=work)
    task.update_task(fn=functools.partial(work, 2))
    assert task.fn_reference is None


def test_getstate_is_a_taskstate_with_the_reference() -> None:
    trigger = IntervalTrigger(seconds=5, timezone="UTC")
    task = Task(id="s", fn=work, args=(1,), kwargs={"y": 2}, trigger=trigger, coalesce=False)
    state = task.__getstate__()
    assert isinstance(state, TaskState)
    assert (state.id, state.fn, state.fn_reference) == ("s", REF, REF)
    assert (state.args, state.kwargs, state.coalesce) == ((1,), {"y": 2}, False)
    assert state.trigger is trigger and state.scheduler is None and state.store_alias is None
    assert pickle.loads(pickle.dumps(state)) == state  # what Asyncz's stores kept


def test_setstate_checks_every_field_and_resolves_the_reference() -> None:
    trigger = DateTrigger(datetime(2030, 1, 1, tzinfo=UTC))
    task = Task.__new__(Task)
    task.__setstate__(
        TaskState(id="x", fn_reference=REF, args=[1], trigger=trigger, mistrigger_grace_time=2)
    )
    assert task.fn is work and task.fn_reference == REF
    assert task.args == (1,) and task.name == "work" and task.mistrigger_grace_time == 2.0
    assert task.max_instances == 1 and task.executor == "default" and task.coalesce is True
    assert task.schedule_state is TaskScheduleState.PENDING
    with pytest.raises(TaskFieldError, match="max_instances"):
        Task.__new__(Task).__setstate__(TaskState(id="y", fn=work, max_instances=0))
    with pytest.raises(TypeError, match="TaskState"):
        Task.__new__(Task).__setstate__(42)  # type: ignore[arg-type]


def test_setstate_with_a_store_counts_as_stored() -> None:
    task = Task.__new__(Task)
    task.__setstate__(TaskState(id="z", fn=work, store="durable"))
    assert task.store_alias == "durable" and not task.pending and task.submitted


def test_pickle_and_copy_of_a_bound_task_give_an_unbound_equal_task() -> None:
    scheduler = AsyncIOScheduler()
    trigger = IntervalTrigger(seconds=5, timezone="UTC")
    task = scheduler.add_task(work, trigger, id="p", args=(1,))
    for clone in (pickle.loads(pickle.dumps(task)), copy.copy(task), copy.deepcopy(task)):
        assert clone == task and clone is not task
        assert clone.fn is work and clone.args == (1,) and clone.trigger == task.trigger
        assert clone.scheduler is None and clone.pending and not clone.submitted


def test_pickle_keeps_a_partial_and_a_bound_method_as_themselves() -> None:
    task = pickle.loads(pickle.dumps(Task(fn=functools.partial(work, 3))))
    assert task.fn() == 3  # type: ignore[misc]
    task = pickle.loads(pickle.dumps(Task(fn=Holder().method)))
    assert task.fn() == 1  # type: ignore[misc]


def test_asyncz_type_names() -> None:
    from asyncz.tasks.base import TaskState as BaseTaskState
    from asyncz.tasks.types import DecoratedFn, TaskType

    assert BaseTaskState is TaskState and TaskType is Task and DecoratedFn.__bound__ is not None


def test_tasks_are_weakly_referenceable() -> None:
    task = Task(fn=work)
    ref = weakref.ref(task)
    del task
    gc.collect()
    assert ref() is None


def test_get_run_times_takes_either_argument_order() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=10, start_at=start, timezone="UTC")
    task = Task(fn=work, trigger=trigger, next_run_time=start)
    now = start + timedelta(seconds=25)
    expected = [start, start + timedelta(seconds=10), start + timedelta(seconds=20)]
    assert task.get_run_times(now, UTC) == task.get_run_times(UTC, now) == expected
    assert task.get_run_times(now) == expected
    with pytest.raises(TypeError, match="current time"):
        task.get_run_times(UTC, UTC)
    with pytest.raises(TypeError, match="tzinfo"):
        task.get_run_times(now, "UTC")  # type: ignore[arg-type]


def test_snapshot_has_asyncz_fields_and_ours() -> None:
    run_at = datetime(2030, 1, 1, tzinfo=UTC)
    task = Task(id="i", fn=work, trigger=DateTrigger(run_at), next_run_time=run_at)
    task.bind(None, "default")
    info = task.snapshot()
    assert isinstance(info, TaskInfo)
    assert info.callable_name == "work" and info.callable_reference == REF
    assert info.trigger_alias == "date" and info.trigger_name == "DateTrigger"
    assert info.trigger_description == info.trigger == str(task.trigger)
    assert info.store_alias == info.store == "default"
    assert info.schedule_state is TaskScheduleState.SCHEDULED
    assert info.schedule_state.value == "scheduled" and info.schedule_state == "scheduled"
    assert (info.pending, info.paused, info.submitted) == (False, False, True)
    with pytest.raises(AttributeError):
        info.name = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"max_instances": 0}, "max_instances must be a positive integer."),
        ({"max_instances": None}, "max_instances must be a positive integer."),
        ({"mistrigger_grace_time": -1}, "mistrigger_grace_time must be either None"),
        ({"name": ""}, "name must be a non empty string."),
        ({"executor": 1}, "executor must be a string."),
        ({"trigger": "foo"}, "Expected a trigger instance, got str instead."),
        ({"next_run_time": 1}, "Unsupported type for next_run_time: int."),
        ({"scheduler": 1}, "The task scheduler may not be changed."),
        ({"id": "other"}, "The task ID may not be changed."),
    ],
)
def test_bad_updates_raise_one_error_caught_as_asyncz_and_as_asyncz_did(
    changes: dict[str, Any], words: str
) -> None:
    task = Task(fn=work, id="u", max_instances=2)
    with pytest.raises(TaskFieldError) as info:
        task.update_task(**changes)
    error = info.value
    assert isinstance(error, TypeError) and isinstance(error, ValueError)
    assert isinstance(error, AsynczException)
    assert str(error).startswith(words)
    assert repr(next(iter(changes.values()))) in _notes(error)  # the value, in a note
    assert task.max_instances == 2  # nothing applied


def test_a_deleted_or_cleared_name_comes_back_from_the_callable() -> None:
    task = Task(fn=work, name="custom")
    del task.name
    task.update_task(fn=work)
    assert task.name == "work"
    task.update_task(name=None)
    assert task.name == "work"
