"""The Redis store's cluster contract, phase 2: run records written by the fire script (one
script call per pass), their keys whatever the ids hold, reruns, and retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.runs import ERROR_SUMMARY_MAX, Fire, RunOutcome
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend
from tests.plugins.stores.test_redis_cluster import FakeScheduler

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make(task_id: str, offset: float | None, **fields: Any) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else at(offset),
        **fields,
    )


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    pytest.importorskip("redis")
    with make_backend("redis", tmp_path) as b:
        yield b


@pytest.fixture
def stores(backend: Backend) -> Iterator[Any]:
    made: list[Any] = []

    def new(**options: Any) -> Any:
        store = backend.make(notify=False, **options)
        store.start(FakeScheduler(), "default")
        made.append(store)
        return store

    yield new
    for store in made:
        store.shutdown()


@pytest.fixture
def store(stores: Any) -> Any:
    return stores()


class Counting:
    """Wraps a registered script and counts its calls."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.script(*args, **kwargs)


def outcome(task_id: str, when: datetime, instance: str = "me", **fields: Any) -> RunOutcome:
    return RunOutcome(
        task_id=task_id,
        scheduled_at=when,
        instance=instance,
        status=fields.pop("status", "succeeded"),
        **fields,
    )


def test_a_pass_is_one_script_call(store: Any) -> None:
    store.add_tasks([make(f"t{i:03d}", 0) for i in range(300)])
    tasks = store.acquire_due_tasks(at(1), "me", 1000, 30)
    store._fire = Counting(store._fire)
    store._finish = Counting(store._finish)
    fires = [Fire(task_id=t.id, next_run_time=at(60), run_times=[at(0)]) for t in tasks]
    result = store.fire_tasks("me", fires)
    assert store._fire.calls == 1
    assert sorted(result) == [t.id for t in tasks]
    assert all(list(r.started) == [at(0)] for r in result.values())
    store.finish_runs([outcome(t.id, at(0)) for t in tasks])
    assert store._finish.calls == 1
    assert {r.status for r in store.get_runs(limit=1000)} == {"succeeded"}
    assert store.client.hlen(f"{store.runs_key[: -len('runs')]}started_counts") == 0


def test_run_keys_hold_any_id() -> None:
    from asyncz.plugins.stores.redis import parse_run_key, run_key

    # "\x1f" (the separator) cannot be in an id the kernel makes, but a key would still work.
    for task_id in ["a", "a|b", "3:abc", "x\x1fy", "日本", "report ", "|\x1f|"]:
        for us in [0, 1795867200000001, -5]:
            assert parse_run_key(run_key(task_id, us)) == (task_id, us)
            assert parse_run_key(run_key(task_id, us).encode()) == (task_id, us)


def test_runs_of_ids_that_look_alike_stay_apart(store: Any) -> None:
    look_alike = ["abc", "3:abc", "ab", "a", "a|b", "a b", "abc ", "ABC"]
    store.add_tasks([make(task_id, 0) for task_id in look_alike])
    store.acquire_due_tasks(at(1), "owner|x", 100, 30)
    fires = [
        Fire(task_id=task_id, next_run_time=at(60), run_times=[at(0), at(n + 1)], max_instances=9)
        for n, task_id in enumerate(look_alike)
    ]
    assert len(store.fire_tasks("owner|x", fires)) == len(look_alike)
    for n, task_id in enumerate(look_alike):
        runs = store.get_runs(task_id)
        assert [(r.task_id, r.scheduled_at) for r in runs] == [
            (task_id, at(n + 1)),
            (task_id, at(0)),
        ]
        assert {r.instance for r in runs} == {"owner|x"}
    # every task's, newest first, ties by id
    assert [(r.scheduled_at, r.task_id) for r in store.get_runs(limit=100)] == sorted(
        [(at(n + 1), i) for n, i in enumerate(look_alike)], reverse=True
    ) + [(at(0), i) for i in sorted(look_alike)]


def test_the_newest_runs_are_cut_after_ties_by_id(store: Any) -> None:
    names = ["e", "b", "d", "a", "c"]
    store.add_tasks([make(name, 0) for name in names] + [make("z", 0)])
    store.acquire_due_tasks(at(1), "me", 10, 30)
    fires = [Fire(task_id=n, next_run_time=at(60), run_times=[at(0)]) for n in names]
    fires.append(Fire(task_id="z", next_run_time=at(60), run_times=[at(5)]))
    store.fire_tasks("me", fires)
    assert [r.task_id for r in store.get_runs(limit=3)] == ["z", "a", "b"]
    assert [r.task_id for r in store.get_runs(limit=1)] == ["z"]
    assert store.get_runs(limit=0) == []


def test_max_instances_counts_a_fire_as_one_submission(store: Any) -> None:
    store.add_task(make("t", 0))
    store.acquire_due_tasks(at(1), "me", 10, 30)
    fire = Fire(
        task_id="t", next_run_time=at(600), run_times=[at(0), at(1), at(2)], max_instances=2
    )
    # The run times of one fire run one after another in one slot: they start together.
    result = store.fire_tasks("me", [fire])["t"]
    assert (list(result.started), list(result.skipped), list(result.duplicates)) == (
        [at(0), at(1), at(2)],
        [],
        [],
    )
    assert [r.status for r in store.get_runs("t")] == ["started", "started", "started"]
    # One of them finished: two still started, which is max_instances: the next fire waits.
    store.finish_runs([outcome("t", at(1), status="failed", error="boom")])
    store.update_task(make("t", 0))
    store.acquire_due_tasks(at(1), "me", 10, 30)
    again = Fire(
        task_id="t", next_run_time=at(600), run_times=[at(2), at(3), at(4)], max_instances=2
    )
    result = store.fire_tasks("me", [again])["t"]
    assert (list(result.started), list(result.skipped), list(result.duplicates)) == (
        [],
        [at(3), at(4)],
        [at(2)],
    )
    # A skipped run never counts: once the others finish, there is room again.
    store.finish_runs([outcome("t", at(0)), outcome("t", at(2))])
    store.update_task(make("t", 0))
    store.acquire_due_tasks(at(1), "me", 10, 30)
    last = Fire(task_id="t", next_run_time=at(600), run_times=[at(5)], max_instances=2)
    assert list(store.fire_tasks("me", [last])["t"].started) == [at(5)]


def test_finish_keeps_the_details(store: Any) -> None:
    store.add_task(make("t", 0))
    store.acquire_due_tasks(at(1), "me", 10, 30)
    store.fire_tasks("me", [Fire(task_id="t", next_run_time=at(60), run_times=[at(0)])])
    (fired,) = store.get_runs("t")
    error = "Traceback ... 日本 \ud800 \x00 tab\t|\x1f" + "x" * 3000
    store.finish_runs(
        [
            outcome(
                "t",
                at(0),
                status="failed",
                run_id="r-1",
                started_at=at(0.25),
                finished_at=at(1.75),
                duration=1.5,
                error=error,
            ),
            outcome("t", at(0), status="succeeded"),  # no longer started: ignored
        ]
    )
    (record,) = store.get_runs("t")
    assert (record.status, record.run_id, record.duration, record.attempt) == (
        "failed",
        "r-1",
        1.5,
        1,
    )
    assert (record.started_at, record.finished_at) == (at(0.25), at(1.75))
    assert record.fired_at == fired.fired_at and record.fired_at is not None
    assert abs((record.fired_at - datetime.now(UTC)).total_seconds()) < 60  # the store's clock
    assert record.error is not None and len(record.error) == ERROR_SUMMARY_MAX
    assert record.error.endswith("x" * 100)


def _kill(store: Any, identity: str) -> None:
    score = store.client.zscore(store.heartbeats_key, identity)
    store.client.zadd(store.heartbeats_key, {identity: int(score) - 60_000_000})


def test_dead_runs_rerun_at_most_once(stores: Any) -> None:
    a, b, c = stores(), stores(), stores()
    for name, store in (("a", a), ("b", b), ("c", c)):
        store.register_instance(name, {})
    a.add_tasks([make("r", 0, on_crash="rerun"), make("gone", 0, on_crash="rerun")])
    a.acquire_due_tasks(at(1), "a", 10, 30)
    a.fire_tasks(
        "a",
        [
            Fire(task_id=i, next_run_time=at(60), run_times=[at(0)], on_crash="rerun")
            for i in ("r", "gone")
        ],
    )
    a.delete_task("gone")
    _kill(b, "a")
    assert b.heartbeat("b", {}, 6) == ["a"]
    assert [(r.status, r.instance) for r in b.get_runs("r")] == [("started", "")]
    taken = {task.id: (task, when) for task, when in b.take_reruns("b", 10)}
    assert taken["r"][1] == at(0)
    assert taken["r"][0].store_version == b.lookup_task("r").store_version
    # A task deleted since its fire (as a one-off task is by the fire itself) is rerun from
    # the record kept with its run.
    assert taken["gone"][1] == at(0)
    assert taken["gone"][0].on_crash == "rerun"
    assert b.lookup_task("gone") is None
    assert c.client.hlen(c.runs_key.removesuffix("runs") + "rerun_tasks") == 0
    # The rerun's scheduler dies too: the second attempt is abandoned, not rerun again.
    _kill(c, "b")
    assert c.heartbeat("c", {}, 6) == ["b"]
    assert [(r.status, r.attempt, r.instance) for r in c.get_runs("r")] == [("abandoned", 2, "b")]
    assert [(r.status, r.attempt) for r in c.get_runs("gone")] == [("abandoned", 2)]
    assert c.take_reruns("c", 10) == []
    assert c.client.hlen(c.runs_key.removesuffix("runs") + "started") == 0
    assert c.client.hlen(c.runs_key.removesuffix("runs") + "started_counts") == 0


def test_a_rerun_of_a_task_that_cannot_be_restored_is_abandoned(stores: Any) -> None:
    a, b = stores(), stores()
    a.register_instance("a", {})
    a.add_task(make("bad", 0, on_crash="rerun"))
    a.acquire_due_tasks(at(1), "a", 10, 30)
    a.fire_tasks(
        "a", [Fire(task_id="bad", next_run_time=at(60), run_times=[at(0)], on_crash="rerun")]
    )
    a.client.hset(a.tasks_key, "bad", b"garbage")
    _kill(b, "a")
    assert b.heartbeat("b", {}, 6) == ["a"]
    assert b.take_reruns("b", 10) == []
    (record,) = b.get_runs("bad")
    assert (record.status, record.attempt, record.instance) == ("abandoned", 2, "b")
    assert record.error is not None and "cannot be restored" in record.error


def test_retention_purges_finished_runs_during_heartbeats(stores: Any) -> None:
    store = stores(run_retention=3600)
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent = now - timedelta(hours=2), now - timedelta(minutes=5)
    store.add_tasks([make(i, -86400 * 30) for i in ("done", "running", "new")])
    store.acquire_due_tasks(now, "me", 10, 30)
    store.fire_tasks(
        "me",
        [
            Fire(task_id="done", next_run_time=at(60), run_times=[old]),
            Fire(task_id="running", next_run_time=at(60), run_times=[old]),
            Fire(task_id="new", next_run_time=at(60), run_times=[recent]),
        ],
    )
    store.finish_runs([outcome("done", old), outcome("new", recent)])
    store.heartbeat("me", {}, 6)
    assert [(r.task_id, r.status) for r in store.get_runs()] == [
        ("new", "succeeded"),
        ("running", "started"),  # never purged while started
    ]
    assert store.get_runs("done") == []
    # At most one pass every few minutes.
    store.finish_runs([outcome("running", old)])
    store.heartbeat("me", {}, 6)
    assert [r.task_id for r in store.get_runs()] == ["new", "running"]
    store.client.hdel(store.runs_key.removesuffix("runs") + "meta", "purged_at")
    store.heartbeat("me", {}, 6)
    assert [r.task_id for r in store.get_runs()] == ["new"]
    keep_all = stores(run_retention=None)
    keep_all.client.hdel(store.runs_key.removesuffix("runs") + "meta", "purged_at")
    keep_all.heartbeat("me", {}, 6)
    assert [r.task_id for r in store.get_runs()] == ["new"]


def test_run_retention_is_checked(backend: Backend) -> None:
    for bad in (0, -1, "7d", True):
        with pytest.raises(ValueError, match="run_retention"):
            backend.make(run_retention=bad)


def test_an_unknown_on_crash_is_refused_before_anything_is_written(store: Any) -> None:
    store.add_task(make("t", 0))
    store.acquire_due_tasks(at(1), "me", 10, 30)
    with pytest.raises(ValueError, match="on_crash"):
        store.fire_tasks("me", [Fire(task_id="t", next_run_time=at(60), on_crash="x,y")])
    assert store.get_runs() == []
    assert store.lookup_task("t").next_run_time == at(0)
