"""RecordReader's fast paths: the same tasks as the checked path, and no laxer.

Loading many due tasks takes a fast path (a record exactly as task_to_record writes it; trigger
state exactly as the trigger's __getstate__ writes it). These tests pin that a record the fast
path does not take still loads (or fails) as before, and that sharing trigger objects between
identical states never hands two tasks the same object.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncz.core.errors import TaskRestoreError
from asyncz.core.records import RecordReader, task_to_record
from asyncz.plugins.stores.sqlalchemy.store import SQLAlchemyStore
from asyncz.tasks import Task
from asyncz.triggers import CronTrigger, IntervalTrigger

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def job(*args: object, **kwargs: object) -> None:
    return None


def record(**fields: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "id": "a",
        "fn": job,
        "trigger": IntervalTrigger(seconds=5, start_at=T0, timezone="Europe/Berlin"),
        "next_run_time": T0,
    }
    options.update(fields)
    return task_to_record(Task(**options))


def same_task(a: Task, b: Task) -> None:
    for name in (
        "id", "name", "fn", "args", "kwargs", "trigger", "executor", "coalesce",
        "max_instances", "mistrigger_grace_time", "timeout", "next_run_time",
        "scheduler", "store_alias", "pending", "submitted", "decorator_options",
    ):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name
    assert a.next_run_time is not None and b.next_run_time is not None
    assert a.next_run_time.tzinfo == b.next_run_time.tzinfo
    assert type(a.mistrigger_grace_time) is type(b.mistrigger_grace_time)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"mistrigger_grace_time": 3},  # an int: the checked path makes it a float
        {"timeout": 2.5, "mistrigger_grace_time": 1.5},
        {"name": None},  # named after the callable
        {"kwargs": {"k": 1}, "args": [1, 2]},
    ],
)
def test_fast_and_checked_paths_agree(change: dict[str, Any]) -> None:
    data = record()
    data.update(change)
    reader = RecordReader(scheduler="s", store_alias="default")
    fast = reader.task(dict(data), 1795867200123456)
    checked = reader._checked_task(dict(data), 1795867200123456)
    same_task(fast, checked)
    assert fast.trigger is not checked.trigger
    assert (fast.scheduler, fast.store_alias, fast.pending, fast.submitted) == (
        "s",
        "default",
        False,
        True,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"coalesce": 1}, "coalesce"),
        ({"mistrigger_grace_time": 0.0}, "mistrigger_grace_time"),
        ({"timeout": float("nan")}, "timeout"),
        ({"id": "  "}, "'id'"),
        ({"executor": ""}, "executor"),
        ({"kwargs": {1: 2}}, "kwargs"),
        ({"max_instances": True}, "max_instances"),
        ({"name": 5}, "'name'"),
    ],
)
def test_what_the_fast_path_refuses_the_checked_path_explains(
    change: dict[str, Any], reason: str
) -> None:
    data = record()
    data.update(change)
    with pytest.raises(TaskRestoreError, match=reason):
        RecordReader().task(data)


def interval_state(**changes: Any) -> dict[str, Any]:
    state = IntervalTrigger(seconds=90, start_at=T0, timezone="Europe/Berlin").__getstate__()
    state.update(changes)
    return state


def restored(state: dict[str, Any]) -> IntervalTrigger:
    trigger = object.__new__(IntervalTrigger)
    trigger.__setstate__(state)
    return trigger


def test_interval_restore_matches_the_constructor() -> None:
    made = IntervalTrigger(
        seconds=90, start_at=T0, end_at=T0 + timedelta(days=1), timezone="Europe/Berlin"
    )
    back = restored(made.__getstate__())
    assert back == made and repr(back) == repr(made)
    assert back.start_at.tzinfo is made.start_at.tzinfo
    assert back.get_next_trigger_time(UTC, None, T0) == made.get_next_trigger_time(UTC, None, T0)
    jittered = IntervalTrigger(seconds=90, start_at=T0, jitter=2, timezone="UTC")
    assert restored(jittered.__getstate__()) == jittered


def version_1_state(**changes: Any) -> dict[str, Any]:
    """An interval trigger's state as asyncz wrote it before state version 2."""
    state = {
        "version": 1,
        "interval_us": 90_000_000,
        "start_at": T0.astimezone(ZoneInfo("Europe/Berlin")).isoformat(),
        "end_at": None,
        "timezone": "Europe/Berlin",
        "jitter": None,
    }
    state.update(changes)
    return state


def test_interval_restore_leaves_odd_state_to_the_constructor() -> None:
    with pytest.raises(ValueError, match="before start_at"):
        restored(interval_state(end_us=interval_state()["start_us"] - 1))
    with pytest.raises(ValueError, match="positive"):
        restored(interval_state(interval_us=0))
    with pytest.raises(ValueError, match="not a known time zone"):
        restored(interval_state(timezone="Mars/Olympus"))
    for bad in ("2026-03-29", 1.5, True, 10**30):
        with pytest.raises(ValueError, match=r"start_us must be whole microseconds.*got"):
            restored(interval_state(start_us=bad))
    with pytest.raises(ValueError, match="jitter"):
        restored(interval_state(jitter=90.0))  # not smaller than the interval
    with pytest.raises(KeyError):
        state = interval_state()
        del state["start_us"]
        restored(state)
    with pytest.raises(ValueError, match="state version"):
        restored(interval_state(version=3))


def test_interval_state_of_version_1_is_still_read() -> None:
    made = IntervalTrigger(seconds=90, start_at=T0, timezone="Europe/Berlin")
    back = restored(version_1_state())
    assert back == made and repr(back) == repr(made)
    assert back.__getstate__()["version"] == 2
    ended = restored(version_1_state(end_at=(T0 + timedelta(days=1)).isoformat(), jitter=2.0))
    assert ended.end_at == T0 + timedelta(days=1) and ended.jitter == 2.0
    # A naive start (written by hand) is placed by the DST rule, as by the constructor.
    naive = restored(version_1_state(start_at="2026-03-29T02:30:00"))
    assert naive.start_at.isoformat() == "2026-03-29T03:00:00+02:00"
    with pytest.raises(ValueError, match="ISO 8601"):
        restored(version_1_state(start_at="yesterday"))
    with pytest.raises(ValueError, match="before start_at"):
        restored(version_1_state(end_at=(T0 - timedelta(seconds=1)).isoformat()))


def test_a_bad_trigger_state_is_a_restore_error() -> None:
    data = record()
    data["trigger"] = ["interval", interval_state(interval_us="soon")]
    with pytest.raises(TaskRestoreError, match="cannot be rebuilt"):
        RecordReader().task(data)


def test_repeated_states_are_shared_but_every_task_has_its_own_trigger() -> None:
    cron = CronTrigger.from_crontab("*/5 * * * *", timezone="UTC")
    reader = RecordReader()
    tasks = [reader.task(record(id=f"c{i}", trigger=cron)) for i in range(50)]
    triggers = [t.trigger for t in tasks]
    assert len({id(t) for t in triggers}) == 50
    assert all(t == cron and repr(t) == repr(cron) for t in triggers)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert {t.get_next_trigger_time(UTC, None, start) for t in triggers} == {
        cron.get_next_trigger_time(UTC, None, start)
    }


def test_distinct_states_stop_being_keyed_but_all_load() -> None:
    reader = RecordReader()
    triggers = [
        IntervalTrigger(seconds=60, start_at=T0 + timedelta(microseconds=i), timezone="UTC")
        for i in range(100)
    ]
    tasks = [reader.task(record(id=f"i{i}", trigger=t)) for i, t in enumerate(triggers)]
    assert [t.trigger for t in tasks] == triggers
    assert "interval" in reader._no_sharing and not reader._triggers


def test_a_broken_record_among_many_is_quarantined_not_deleted(tmp_path: Any) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    tasks = [
        Task(id=f"t{i:03}", fn=job, trigger=IntervalTrigger(seconds=60), next_run_time=T0)
        for i in range(200)
    ]
    store.add_tasks(tasks)
    broken = store.encode_task(
        Task(id="t100", fn=job, trigger=IntervalTrigger(seconds=60), next_run_time=T0)
    ).replace(b"test_record_reader:job", b"test_record_reader:jub")  # renamed
    assert store.engine is not None
    with store.engine.begin() as conn:
        conn.execute(store.table.update().where(store.table.c.id == "t100").values(state=broken))
    fresh = SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.db'}")
    due = fresh.get_due_tasks(T0)
    assert len(due) == 199 and "t100" not in {t.id for t in due}
    assert set(fresh.get_quarantined()) == {"t100"}
    assert "moved or renamed" in fresh.get_quarantined()["t100"]
    assert len(list(fresh.iter_records())) == 200  # left in the store
    store.shutdown()
    fresh.shutdown()


def test_restored_tasks_are_plain_tasks_with_their_hooks() -> None:
    task = RecordReader(scheduler=None, store_alias="default").task(record())
    assert type(task) is Task
    with pytest.raises(AttributeError):
        task.id = "b"  # still frozen
    with pytest.raises(ValueError, match="max_instances"):
        task.max_instances = 0  # still validated
    task.mistrigger_grace_time = 3  # still converted
    assert task.mistrigger_grace_time == 3.0


def test_the_general_constructor_path_gives_the_same_task() -> None:
    from asyncz.core import records

    values = ("a", "n", job, (1,), {"k": 2}, IntervalTrigger(seconds=5, start_at=T0))
    values += ("default", False, 2, 1.5, None, T0, None, "default")
    same_task(records._restored_task(*values), records._general_task(*values))
