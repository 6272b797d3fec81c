from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncz.exceptions import ConflictIdError, TaskLookupError
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


def test_order_is_by_run_time_then_id_with_paused_last(store: MemoryStore) -> None:
    for task_id, offset in [
        ("c", 5),
        ("paused-a", None),
        ("b", 5),
        ("a", 10),
        ("z", -1),
        ("paused-0", None),
    ]:
        store.add_task(make(task_id, offset))
    assert [t.id for t in store.get_all_tasks()] == ["z", "b", "c", "a", "paused-0", "paused-a"]
    assert store.get_next_run_time() == T0 - timedelta(seconds=1)
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(seconds=5))] == ["z", "b", "c"]


def test_added_tasks_are_bound_to_the_store(store: MemoryStore) -> None:
    task = make("a", 0)
    store.add_task(task)
    assert task.store_alias == "default" and not task.pending and task.submitted


def test_conflicts_and_missing_ids(store: MemoryStore) -> None:
    store.add_task(make("a", 0))
    with pytest.raises(ConflictIdError, match="'a' already exists"):
        store.add_task(make("a", 1))
    with pytest.raises(TaskLookupError, match="'nope'"):
        store.update_task(make("nope", 1))
    with pytest.raises(TaskLookupError):
        store.delete_task("nope")
    assert store.lookup_task("nope") is None


def test_update_reorders_and_delete_removes(store: MemoryStore) -> None:
    a, b = make("a", 1), make("b", 2)
    store.add_task(a)
    store.add_task(b)
    a.next_run_time = T0 + timedelta(seconds=3)
    store.update_task(a)
    assert store.get_next_run_time() == T0 + timedelta(seconds=2)
    store.delete_task("b")
    assert store.get_next_run_time() == T0 + timedelta(seconds=3)
    a.next_run_time = None
    store.update_task(a)
    assert store.get_next_run_time() is None
    assert [t.id for t in store.get_all_tasks()] == ["a"]


def test_acquire_takes_due_tasks_in_order_up_to_limit(store: MemoryStore) -> None:
    for i in range(5):
        store.add_task(make(f"t{i}", i))
    store.add_task(make("later", 100))
    got = store.acquire_due_tasks(T0 + timedelta(seconds=10), "me", limit=3, lease=30)
    assert [t.id for t in got] == ["t0", "t1", "t2"]
    got = store.acquire_due_tasks(T0 + timedelta(seconds=10), "me", limit=10, lease=30)
    assert [t.id for t in got] == ["t3", "t4"]
    assert store.acquire_due_tasks(T0 + timedelta(seconds=10), "other", 10, 30) == []


def test_release_sets_next_run_time_or_deletes(store: MemoryStore) -> None:
    store.add_task(make("a", 0))
    store.add_task(make("b", 0))
    store.acquire_due_tasks(T0, "me", 10, 30)
    assert store.get_next_run_time() == T0 + timedelta(seconds=30)  # the lease expiry
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60), "b": None})
    assert store.lookup_task("b") is None
    assert store.get_next_run_time() == T0 + timedelta(seconds=60)


def test_leased_tasks_are_skipped_until_the_lease_expires(store: MemoryStore) -> None:
    store.add_task(make("a", 0))
    assert [t.id for t in store.acquire_due_tasks(T0, "one", 10, lease=30)] == ["a"]
    assert store.acquire_due_tasks(T0 + timedelta(seconds=29), "two", 10, 30) == []
    got = store.acquire_due_tasks(T0 + timedelta(seconds=31), "two", 10, 30)
    assert [t.id for t in got] == ["a"]
    # The first owner lost the lease: its late release must not overwrite anything.
    store.release_tasks("one", {"a": None})
    assert store.lookup_task("a") is not None


def test_a_change_during_a_lease_wins_over_the_release(store: MemoryStore) -> None:
    task = make("a", 0)
    store.add_task(task)
    store.acquire_due_tasks(T0, "me", 10, 30)
    task.next_run_time = T0 + timedelta(hours=1)  # e.g. rescheduled by the user
    store.update_task(task)
    store.release_tasks("me", {"a": T0 + timedelta(seconds=60)})
    assert store.lookup_task("a").next_run_time == T0 + timedelta(hours=1)
    store.acquire_due_tasks(T0 + timedelta(hours=2), "me", 10, 30)
    store.delete_task("a")
    store.release_tasks("me", {"a": T0 + timedelta(hours=3)})
    assert store.lookup_task("a") is None


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
