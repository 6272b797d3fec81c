from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from asyncz.exceptions import AsynczException, SchedulerLookupError
from asyncz.tasks import Task, TaskFieldError
from asyncz.triggers import IntervalTrigger

UTC = timezone.utc


def job(x: int = 0) -> int:
    return x


def _full_text(error: BaseException) -> str:
    """The message and the notes, as a traceback shows them."""
    return "\n".join([str(error), *getattr(error, "__notes__", ())])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_instances", 0, "a positive integer"),
        ("max_instances", -3, "a positive integer"),
        ("max_instances", True, "a positive integer"),
        ("max_instances", "2", "a positive integer"),
        ("id", "", "non-empty string"),
        ("id", "   ", "non-empty string"),
        ("id", 5, "non-empty string"),
        ("fn", 42, "callable"),
        ("mistrigger_grace_time", -1, "None or a positive"),
        ("mistrigger_grace_time", 0, "None or a positive"),
        ("mistrigger_grace_time", "soon", "None or a positive"),
        ("timeout", 0, "None or a positive"),
        ("coalesce", "yes", "True or False"),
        ("args", "abc", "non-string iterable"),
        ("kwargs", [1, 2], "dict-like"),
        ("kwargs", {1: 2}, "string keys"),
        ("trigger", "interval", "get_next_trigger_time"),
        ("executor", "", "alias of an executor"),
        ("executor", 1, "must be a string"),
        ("name", 3, "non empty string"),
        ("name", "", "non empty string"),
        ("next_run_time", 1, "Unsupported type"),
    ],
)
def test_bad_field_fails_on_construction_naming_field_value_and_valid(
    field: str, value: object, words: str
) -> None:
    # One error type for every bad field: Asyncz raises TypeError, asyncz raised ValueError
    # for values of the right type out of range; both keep catching it.
    with pytest.raises(TaskFieldError) as info:
        Task(**{"fn": job, field: value})
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, AsynczException)
    text = _full_text(info.value)
    assert field in str(info.value)  # the message names the field
    assert words in text
    assert repr(value) in text  # the bad value is named (in a note under the message)


def test_unresolvable_reference_says_why() -> None:
    with pytest.raises(ValueError, match="cannot be resolved"):
        Task(fn="no_such_module_xyz:fn")


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_instances", 0), ("mistrigger_grace_time", -5), ("fn", None.__class__), ("coalesce", 1)],
)
def test_bad_field_fails_on_assignment_and_keeps_old_value(field: str, value: object) -> None:
    task = Task(fn=job, max_instances=2, mistrigger_grace_time=3, coalesce=True)
    before = getattr(task, field)
    if field == "fn":
        value = 42
    with pytest.raises((TypeError, ValueError), match=field):
        setattr(task, field, value)
    assert getattr(task, field) == before


def test_id_is_frozen_and_identity_is_by_id() -> None:
    task = Task(id="a", fn=job)
    with pytest.raises(AttributeError):
        task.id = "b"  # type: ignore[misc]
    assert task == Task(id="a", fn=len)
    assert hash(task) == hash("a")
    assert task != Task(id="b", fn=job)
    assert len({task, Task(id="a", fn=len)}) == 1


def test_defaults_and_conversions() -> None:
    task = Task(fn=job, args=[1], kwargs={"y": 2})
    assert len(task.id) == 32
    assert task.name == "job"
    assert task.args == (1,)
    assert task.kwargs == {"y": 2}
    assert task.executor == "default"
    assert task.mistrigger_grace_time is None
    assert task.coalesce is True
    assert task.max_instances == 1
    assert task.schedule_state == "pending"
    assert Task(fn=job, mistrigger_grace_time=timedelta(seconds=2)).mistrigger_grace_time == 2.0


def test_fn_reference_resolves_and_bookkeeping_stays_out_of_repr() -> None:
    task = Task(fn="tests.core.test_task:job", id="ref")
    assert task.fn is job
    text = repr(task)
    assert "scheduler=" not in text and "pending" not in text and "store_alias" not in text


def test_next_run_time_is_always_aware() -> None:
    task = Task(fn=job, next_run_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    assert task.next_run_time is not None and task.next_run_time.utcoffset() is not None
    task.next_run_time = "2026-06-01T10:00:00+02:00"  # type: ignore[assignment]
    assert task.next_run_time == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    task.next_run_time = datetime(2026, 6, 1, 10, 0)  # naive: placed in a zone, never kept naive
    assert task.next_run_time.utcoffset() is not None


def test_update_task_is_all_or_nothing() -> None:
    task = Task(fn=job, name="before", max_instances=2)
    with pytest.raises(ValueError, match="max_instances"):
        task.update_task(name="after", max_instances=0)
    assert task.name == "before"
    assert task.max_instances == 2
    task.update_task(name="after", max_instances=5)
    assert (task.name, task.max_instances) == ("after", 5)


def test_update_task_rejects_id_change_and_unknown_fields() -> None:
    task = Task(fn=job, id="same")
    with pytest.raises(ValueError, match="ID may not be changed") as info:
        task.update_task(id="other")
    assert "'other'" in _full_text(info.value) and "'same'" in _full_text(info.value)
    task.update_task(id="same")  # not a change
    with pytest.raises(AttributeError, match="valid: "):
        task.update_task(max_instance=3)
    with pytest.raises(ValueError, match="scheduler may not be changed"):
        task.update_task(scheduler=object())
    task.update_task(scheduler=None)  # not a change
    with pytest.raises(AttributeError):
        task.update_task(store_alias="elsewhere")


def test_unbound_task_update_is_local_and_other_methods_say_what_to_do() -> None:
    task = Task(fn=job)
    assert task.update(name="renamed") is task
    assert task.name == "renamed"
    for method in (task.pause, task.resume, task.delete):
        with pytest.raises(SchedulerLookupError, match="add_task"):
            method()
    with pytest.raises(SchedulerLookupError):
        task.reschedule(trigger="interval", seconds=5)


def test_get_run_times_lists_every_due_time_up_to_now() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=10, start_at=start, timezone="UTC")
    task = Task(fn=job, trigger=trigger, next_run_time=start)
    times = task.get_run_times(start + timedelta(seconds=35), UTC)
    assert times == [start + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert task.get_run_times(start - timedelta(seconds=1), UTC) == []


def test_str_shows_state() -> None:
    task = Task(fn=job, name="nightly")
    assert str(task).startswith("nightly (trigger: None, pending")


def test_task_pickles_without_scheduler_state() -> None:
    task = Task(fn=job, id="p", args=(1,), trigger=IntervalTrigger(seconds=5, timezone="UTC"))
    copy = pickle.loads(pickle.dumps(task))
    assert copy == task and copy.args == (1,) and copy.trigger == task.trigger
