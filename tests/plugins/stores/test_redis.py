"""The Redis store's own promises: Asyncz's key names, exact scores, atomic bulk adds, no task
leased twice, and no redis import at plugin discovery."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asyncz.core.errors import ConflictIdError
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def make(task_id: str, offset: float | None) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
    )


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    pytest.importorskip("redis")
    with make_backend("redis", tmp_path) as b:
        yield b


def test_keys_and_exact_scores(backend: Backend) -> None:
    store = backend.make()
    store.start(None, "default")
    prefix = backend.options["key_prefix"]
    store.add_task(make("a", 0.000001))
    store.add_task(make("p", None))
    assert store.tasks_key == f"{prefix}tasks" and store.run_times_key == f"{prefix}run_times"
    assert store.client.zrange(store.run_times_key, 0, -1, withscores=True) == [
        (b"a", 1795867200000001.0)
    ]
    assert sorted(store.client.hkeys(store.tasks_key)) == [b"a", b"p"]
    store.shutdown()


def test_add_tasks_is_all_or_nothing(backend: Backend) -> None:
    store = backend.make()
    store.start(None, "default")
    store.add_task(make("taken", 0))
    with pytest.raises(ConflictIdError, match="'taken'"):
        store.add_tasks([make("new-1", 0), make("taken", 0)])
    assert [t.id for t in store.get_all_tasks()] == ["taken"]
    store.shutdown()


def test_concurrent_schedulers_never_get_the_same_task(backend: Backend) -> None:
    setup = backend.make()
    setup.start(None, "default")
    setup.add_tasks([make(f"t{i:03d}", i % 7) for i in range(200)])
    got: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        store = backend.make()
        store.start(None, "default")
        while tasks := store.acquire_due_tasks(T0 + timedelta(seconds=10), f"w{n}", 9, 60):
            with lock:
                got.extend(t.id for t in tasks)
        store.shutdown()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(got) == [f"t{i:03d}" for i in range(200)]
    setup.shutdown()


def test_plugin_discovery_does_not_import_redis() -> None:
    code = (
        "import sys, json; from asyncz.core.plugins import default_registry; "
        "default_registry().providers('store'); import asyncz.stores; "
        "print(json.dumps(['redis' in sys.modules, 'sqlalchemy' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(out.stdout) == [False, False]


def test_asyncz_style_arguments(backend: Backend) -> None:
    from asyncz.plugins.stores.redis import RedisStore

    store = RedisStore(0, "x.tasks", "x.run_times", host="127.0.0.1", port=6379, notify=False)
    assert (store.tasks_key, store.run_times_key) == ("x.tasks", "x.run_times")
    assert store.client.connection_pool.connection_kwargs["db"] == 0
    by_url = RedisStore(backend.options["url"], key_prefix=backend.options["key_prefix"])
    by_url.start(None, "default")
    by_url.add_task(make("a", 0))
    assert [t.id for t in by_url.get_all_tasks()] == ["a"]
    by_url.shutdown()


def test_due_tasks_come_from_the_index_leased_ones_included(backend: Backend) -> None:
    store = backend.make()
    store.start(None, "default")
    for task_id, offset in [("c", 10), ("a", 0), ("b", 5), ("b2", 5), ("late", 99), ("p", None)]:
        store.add_task(make(task_id, offset))
    # "a" and "b" are handed out: their run times now live in lease_info, not in run_times.
    assert [t.id for t in store.acquire_due_tasks(T0 + timedelta(seconds=5), "me", 2, 30)] == [
        "a",
        "b",
    ]
    due = store.get_due_tasks(T0 + timedelta(seconds=10))
    assert [(t.id, t.next_run_time) for t in due] == [
        ("a", T0),
        ("b", T0 + timedelta(seconds=5)),
        ("b2", T0 + timedelta(seconds=5)),
        ("c", T0 + timedelta(seconds=10)),
    ]
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(seconds=4))] == ["a"]
    # A record that is gone (removed behind the store's back) is skipped, not an error.
    store.client.hdel(store.tasks_key, "c")
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(seconds=10))] == ["a", "b", "b2"]
    store.shutdown()


def test_many_due_tasks_are_read_in_slices_in_order(backend: Backend) -> None:
    # More due tasks than one HMGET slice of the script reads (1,000), with ties and a hole.
    store = backend.make()
    store.start(None, "default")
    store.add_tasks([make(f"t{i:04d}", i // 3) for i in range(2_500)])
    store.client.hdel(store.tasks_key, "t1000")
    due = store.get_due_tasks(T0 + timedelta(seconds=900))
    expected = [f"t{i:04d}" for i in range(2_500) if i // 3 <= 900 and i != 1000]
    assert [t.id for t in due] == expected
    assert all(t.next_run_time == T0 + timedelta(seconds=int(t.id[1:]) // 3) for t in due)
    store.shutdown()
