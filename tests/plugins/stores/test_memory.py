from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncz.exceptions import ConflictIdError
from asyncz.stores import MemoryStore
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def job() -> None:
    return None


def make(task_id: str, offset: float | None) -> Task:
    next_time = None if offset is None else T0 + timedelta(seconds=offset)
    return Task(
        id=task_id,
        fn=job,
        trigger=IntervalTrigger(seconds=60, timezone="UTC"),
        next_run_time=next_time,
    )


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.start(None, "default")
    return s


# Ordering, conflicts, updates, leases and releases are the store contract, checked for every
# store in tests/contracts/test_stores.py; what follows is particular to the memory store.


def test_an_unreleased_lease_brings_the_task_back_when_it_expires(store: MemoryStore) -> None:
    store.add_task(make("a", 0))
    store.acquire_due_tasks(T0, "me", 10, lease=30)
    # Out of the heap while leased, but the scheduler is told to look again at the expiry.
    assert store.get_next_run_time() == T0 + timedelta(seconds=30)
    assert store.acquire_due_tasks(T0 + timedelta(seconds=29), "other", 10, 30) == []
    assert [t.id for t in store.acquire_due_tasks(T0 + timedelta(seconds=30), "other", 10, 30)] == [
        "a"
    ]


def test_remove_all_and_restart_keeps_tasks(store: MemoryStore) -> None:
    store.add_task(make("a", 0))
    store.shutdown()
    store.start(None, "default")
    assert [t.id for t in store.get_all_tasks()] == ["a"]
    store.remove_all_tasks()
    assert store.get_all_tasks() == [] and store.get_next_run_time() is None


def test_unknown_options_are_an_error() -> None:
    with pytest.raises(TypeError, match="takes no options, got directory"):
        MemoryStore(directory="/tmp")


def test_heap_is_compacted_after_many_updates(store: MemoryStore) -> None:
    task = make("a", 0)
    store.add_task(task)
    for i in range(5000):
        task.next_run_time = T0 + timedelta(seconds=i)
        store.update_task(task)
    assert len(store._heap) < 2100
    assert store.get_next_run_time() == T0 + timedelta(seconds=4999)


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "update", "delete", "acquire", "release"]),
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.one_of(st.none(), st.integers(-5, 5)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_store_agrees_with_a_plain_model(operations: list[tuple[str, str, int | None]]) -> None:
    """A dict and sorted() are the oracle for ordering, due queries and the next run time."""
    store = MemoryStore()
    store.start(None, "default")
    model: dict[str, datetime | None] = {}
    leased: set[str] = set()
    now = T0
    for op, task_id, offset in operations:
        when = None if offset is None else T0 + timedelta(seconds=offset)
        if op == "add":
            if task_id in model:
                with pytest.raises(ConflictIdError):
                    store.add_task(make(task_id, offset))
            else:
                store.add_task(make(task_id, offset))
                model[task_id] = when
        elif op == "update":
            if task_id in model:
                store.update_task(make(task_id, offset))
                model[task_id] = when
                leased.discard(task_id)
        elif op == "delete":
            if task_id in model:
                store.delete_task(task_id)
                del model[task_id]
                leased.discard(task_id)
        elif op == "acquire":
            due = sorted(
                (t, i) for i, t in model.items() if t is not None and t <= now and i not in leased
            )
            got = store.acquire_due_tasks(now, "me", 2, lease=3600)
            assert [t.id for t in got] == [i for _, i in due[:2]]
            leased.update(t.id for t in got)
        elif op == "release" and task_id in leased:
            store.release_tasks("me", {task_id: when})
            leased.discard(task_id)
            if when is None:
                del model[task_id]
            else:
                model[task_id] = when
        expected = sorted((t is None, t or T0, i) for i, t in model.items())
        assert [t.id for t in store.get_all_tasks()] == [i for _, _, i in expected]
        pending = [t for i, t in model.items() if t is not None and i not in leased]
        lease_end = [now + timedelta(seconds=3600)] if leased else []
        assert store.get_next_run_time() == min(pending + lease_end, default=None)


def test_add_tasks_is_all_or_nothing_and_keeps_the_order(store: MemoryStore) -> None:
    store.add_task(make("taken", 5))
    with pytest.raises(ConflictIdError, match="'taken'"):
        store.add_tasks([make("a", 1), make("taken", 2)])
    with pytest.raises(ConflictIdError, match="'twice'"):
        store.add_tasks([make("twice", 1), make("twice", 2)])
    assert [t.id for t in store.get_all_tasks()] == ["taken"]
    store.add_tasks([make(f"t{i}", offset) for i, offset in enumerate([9, 3, None, 7, 1])])
    assert [t.id for t in store.get_all_tasks()] == ["t4", "t1", "taken", "t3", "t0", "t2"]
    fresh = MemoryStore()
    fresh.start(None, "default")
    fresh.add_tasks([make(f"u{i}", 10 - i) for i in range(10)])  # into an empty heap
    assert [t.id for t in fresh.acquire_due_tasks(T0 + timedelta(seconds=10), "me", 3, 60)] == [
        "u9",
        "u8",
        "u7",
    ]
