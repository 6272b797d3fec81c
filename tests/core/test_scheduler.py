"""The engine. Logic is tested with explicit ``now``; real time only in short, bounded runs that
wait for events (with a deadline), never sleep-and-hope."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asyncz.events import (
    ALL_TASKS_REMOVED,
    SCHEDULER_SHUTDOWN,
    SCHEDULER_START,
    TASK_ADDED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MODIFIED,
    TASK_REMOVED,
    TASK_STARTED,
    TASK_SUBMITTED,
)
from asyncz.exceptions import (
    ConflictIdError,
    SchedulerNotRunningError,
    TaskLookupError,
    UnknownAliasError,
)
from asyncz.executors import AsyncIOExecutor
from asyncz.schedulers import AsyncIOScheduler
from asyncz.stores import MemoryStore
from asyncz.tasks import Task
from asyncz.triggers import DateTrigger, IntervalTrigger

UTC = timezone.utc


def noop() -> None:
    return None


async def async_noop() -> str:
    return "done"


def fails() -> None:
    raise ValueError("task failure")


def in_future(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# -- real runs -------------------------------------------------------------------------------


def test_date_and_interval_tasks_run_on_time(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_EXECUTED | TASK_STARTED)
        once = scheduler.add_task(async_noop, "date", run_at=in_future(0.2), id="once")
        every = scheduler.add_task(noop, "interval", seconds=0.1, id="every")
        scheduler.start()
        try:
            await rec.wait_for(
                lambda: (
                    len([e for e in rec.codes(TASK_EXECUTED) if e.task_id == "every"]) >= 4
                    and any(e.task_id == "once" for e in rec.codes(TASK_EXECUTED))
                )
            )
        finally:
            scheduler.shutdown()
        done = {e.task_id: e for e in rec.codes(TASK_EXECUTED)}
        assert done["once"].return_value == "done"
        for event in rec.codes(TASK_EXECUTED):
            assert event.started_at >= event.scheduled_run_time
            # bounded, generous: this is about "on time", not about a benchmark
            assert event.started_at - event.scheduled_run_time < timedelta(seconds=0.5)
            assert event.duration is not None and event.run_id
        every_times = [
            e.scheduled_run_time for e in rec.codes(TASK_EXECUTED) if e.task_id == "every"
        ]
        gaps = {b - a for a, b in itertools.pairwise(every_times)}
        assert gaps == {timedelta(seconds=0.1)}  # on the grid, no drift
        assert scheduler.get_task("once") is None  # a finished date task is removed
        assert scheduler.get_task("every") is every
        assert once.trigger is not None

    asyncio.run(main())


def test_started_and_executed_share_a_run_id(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler()
        scheduler.add_listener(rec)
        scheduler.add_task(noop, id="now")
        scheduler.start()
        try:
            await rec.wait_for(lambda: rec.codes(TASK_EXECUTED))
        finally:
            scheduler.shutdown()
        started, executed = rec.codes(TASK_STARTED)[0], rec.codes(TASK_EXECUTED)[0]
        assert started.run_id == executed.run_id
        codes = [e.code for e in rec.events]
        assert codes.index(TASK_ADDED) < codes.index(SCHEDULER_START) or TASK_ADDED in codes
        assert codes.index(TASK_SUBMITTED) < codes.index(TASK_EXECUTED)
        assert codes[-1] == SCHEDULER_SHUTDOWN

    asyncio.run(main())


def test_failing_task_reports_error_and_loop_goes_on(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler()
        scheduler.add_listener(rec, TASK_ERROR | TASK_EXECUTED)
        scheduler.add_task(fails, "interval", seconds=0.05, id="bad")
        scheduler.add_task(noop, "interval", seconds=0.05, id="good")
        scheduler.start()
        try:
            await rec.wait_for(
                lambda: len(rec.codes(TASK_ERROR)) >= 3 and len(rec.codes(TASK_EXECUTED)) >= 3
            )
        finally:
            scheduler.shutdown()
        error = rec.codes(TASK_ERROR)[0]
        assert isinstance(error.exception, ValueError)
        assert "task failure" in error.traceback and "Traceback" in error.traceback
        assert error.exception.__traceback__ is None  # frames released

    asyncio.run(main())


def test_adding_a_sooner_task_wakes_the_sleeping_loop(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler()
        scheduler.add_listener(rec, TASK_EXECUTED)
        scheduler.add_task(noop, "date", run_at=in_future(3600), id="far")
        scheduler.start()
        try:
            await asyncio.sleep(0.05)  # the loop is now asleep until the far task
            scheduler.add_task(noop, "date", run_at=in_future(0.1), id="soon")
            await rec.wait_for(lambda: rec.codes(TASK_EXECUTED), timeout=1.0)
        finally:
            scheduler.shutdown()
        assert rec.codes(TASK_EXECUTED)[0].task_id == "soon"

    asyncio.run(main())


def test_idle_scheduler_does_not_poll() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        passes = []
        original = scheduler.process_due

        def counting(now: datetime) -> Any:
            passes.append(now)
            return original(now)

        scheduler.process_due = counting  # type: ignore[method-assign]
        for i in range(100):
            scheduler.add_task(noop, "interval", hours=1, id=f"t{i}")
        scheduler.start()
        try:
            await asyncio.sleep(0.5)
            assert len(passes) == 1
            scheduler.add_task(noop, "interval", hours=2, id="later")  # not sooner: no wake-up
            await asyncio.sleep(0.1)
            assert len(passes) == 1
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_scheduler_in_its_own_thread_from_sync_code() -> None:
    done = threading.Event()
    scheduler = AsyncIOScheduler()
    scheduler.add_listener(lambda e: done.set(), TASK_EXECUTED)
    scheduler.add_task(noop, id="sync")
    assert scheduler.start() is True
    assert scheduler.start() is False  # nested start only counts
    try:
        assert done.wait(2.0)
        assert scheduler.event_loop is not None
    finally:
        assert scheduler.shutdown() is False
        assert scheduler.shutdown() is True
    assert not scheduler.running
    with pytest.raises(SchedulerNotRunningError):
        scheduler.shutdown()


def test_shutdown_waits_for_running_work_when_called_from_another_thread() -> None:
    finished = []
    started = threading.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(True)

    scheduler = AsyncIOScheduler()
    scheduler.add_task(slow)
    scheduler.start()
    assert started.wait(2.0)
    scheduler.shutdown(wait=True)
    assert finished == [True]


def test_restart_keeps_memory_store_tasks() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(noop, "interval", hours=1, id="kept")
    scheduler.start()
    scheduler.shutdown()
    scheduler.start()
    try:
        assert [t.id for t in scheduler.get_tasks()] == ["kept"]
    finally:
        scheduler.shutdown()


def test_max_instances_skips_overlapping_runs(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        release = asyncio.Event()

        async def blocker() -> None:
            await release.wait()

        scheduler = AsyncIOScheduler()
        scheduler.add_listener(rec, TASK_MAX_INSTANCES | TASK_EXECUTED)
        scheduler.add_task(blocker, "interval", seconds=0.05, id="b", max_instances=1)
        scheduler.start()
        try:
            await rec.wait_for(lambda: len(rec.codes(TASK_MAX_INSTANCES)) >= 2)
            release.set()
            await rec.wait_for(lambda: rec.codes(TASK_EXECUTED))
        finally:
            scheduler.shutdown()
        assert rec.codes(TASK_MAX_INSTANCES)[0].task_id == "b"

    asyncio.run(main())


# -- the task API ----------------------------------------------------------------------------


def test_tasks_added_before_start_are_pending_then_stored() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        task = scheduler.add_task(noop, "interval", minutes=5, id="p")
        assert task.pending and task.schedule_state == "pending"
        assert scheduler.get_tasks() == [task]
        with pytest.raises(ConflictIdError):
            scheduler.add_task(noop, id="p")
        scheduler.start()
        try:
            assert not task.pending and task.next_run_time is not None
            assert scheduler.get_task("p") is task
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_task_with_scheduler_argument_registers_itself() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        task = Task(
            id="mine",
            fn=noop,
            scheduler=scheduler,
            trigger=IntervalTrigger(minutes=1),
            max_instances=3,
        )
        assert scheduler.get_task("mine") is task
        scheduler.start()
        try:
            assert task.next_run_time is not None
            other = Task(id="mine2", fn=noop, max_instances=1)
            scheduler.add_task(other, trigger=IntervalTrigger(minutes=2))
            assert scheduler.get_task("mine2") is other
            with pytest.raises(ValueError, match="already been added"):
                scheduler.add_task(other)
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_next_run_time_none_adds_paused_and_resume_computes_from_now() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        scheduler.start()
        try:
            task = scheduler.add_task(noop, "interval", seconds=30, next_run_time=None, id="p")
            assert task.paused and task.schedule_state == "paused"
            before = datetime.now(UTC)
            scheduler.resume_task("p")
            assert task.next_run_time is not None
            assert timedelta(0) < task.next_run_time - before <= timedelta(seconds=31)
            task.pause()
            assert task.paused
            task.resume()
            assert not task.paused
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_update_reschedule_and_delete_through_the_task(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_MODIFIED | TASK_REMOVED | ALL_TASKS_REMOVED)
        scheduler.start()
        try:
            task = scheduler.add_task(noop, "interval", hours=1, id="t", name="first")
            task.update(name="second", max_instances=5, coalesce=False)
            assert (task.name, task.max_instances, task.coalesce) == ("second", 5, False)
            task.reschedule("t", trigger="interval", minutes=5)  # the seed page's call shape
            assert str(task.trigger) == "interval[0:05:00]"
            task.reschedule(trigger="date", run_at="2030-01-01T00:00:00+00:00")
            assert task.next_run_time == datetime(2030, 1, 1, tzinfo=UTC)
            task.reschedule("interval", seconds=7)
            assert str(task.trigger) == "interval[0:00:07]"
            with pytest.raises(ValueError, match="given the task id 'other'"):
                task.reschedule("other", trigger="interval", seconds=1)
            task.delete()
            assert scheduler.get_task("t") is None
            with pytest.raises(TaskLookupError, match="'t'"):
                scheduler.delete_task("t")
            scheduler.add_task(noop, id="x", next_run_time=None)
            scheduler.remove_all_tasks()
            assert scheduler.get_tasks() == []
        finally:
            scheduler.shutdown()
        assert len(rec.codes(TASK_MODIFIED)) == 4
        assert [e.task_id for e in rec.codes(TASK_REMOVED)] == ["t"]
        assert rec.codes(ALL_TASKS_REMOVED)[0].alias is None

    asyncio.run(main())


def test_a_failed_update_changes_nothing() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        scheduler.start()
        try:
            task = scheduler.add_task(noop, "interval", hours=1, id="t", name="keep")
            before = task.next_run_time
            with pytest.raises(ValueError, match="max_instances"):
                scheduler.update_task("t", name="changed", max_instances=0)
            with pytest.raises(KeyError, match="no executor with the alias 'nope'"):
                scheduler.update_task("t", executor="nope")
            assert (task.name, task.max_instances, task.next_run_time) == ("keep", 1, before)
            with pytest.raises(UnknownAliasError):
                scheduler.reschedule_task("t", trigger="crontabz")
            assert task.next_run_time == before
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_bad_input_is_rejected_before_any_store_is_touched() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler()
        scheduler.start()
        try:
            with pytest.raises(UnknownAliasError, match="Did you mean 'interval'"):
                scheduler.add_task(noop, "intervall", seconds=1)
            with pytest.raises(TypeError, match="'minute' \\(did you mean 'minutes'\\?\\)"):
                scheduler.add_task(noop, "interval", minute=5)
            with pytest.raises(ValueError, match="positive"):
                scheduler.add_task(noop, "interval", seconds=0)
            with pytest.raises(KeyError, match="no store with the alias 'other'"):
                scheduler.add_task(noop, store="other")
            with pytest.raises(KeyError, match="no executor"):
                scheduler.add_task(noop, executor="threads")
            with pytest.raises(TypeError, match="trigger instance"):
                scheduler.add_task(noop, DateTrigger(), seconds=3)
            with pytest.raises(ValueError, match="max_instances"):
                scheduler.add_task(noop, max_instances=0)
            with pytest.raises(TypeError, match="callable"):
                scheduler.add_task(42)
            with pytest.raises(TypeError, match="non-empty string"):
                scheduler.get_task(None)  # type: ignore[arg-type]
            assert scheduler.get_tasks() == []
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_configuration_by_instance_alias_and_dict() -> None:
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "memory"}, "second": MemoryStore(), "third": "memory"},
        executors={
            "default": {"class": "asyncz.executors:AsyncIOExecutor", "max_workers": 2},
            "other": AsyncIOExecutor(),
        },
        task_defaults={"coalesce": False, "max_instances": 3},
        timezone="Europe/Berlin",
        identity="node-1",
    )
    task = scheduler.add_task(noop, "interval", seconds=5, store="second", executor="other")
    assert (task.coalesce, task.max_instances) == (False, 3)
    assert str(scheduler.timezone) == "Europe/Berlin"
    assert task.trigger.timezone == scheduler.timezone  # type: ignore[union-attr]
    assert scheduler.identity == "node-1"


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"timezon": "UTC"}, TypeError, "unknown scheduler option"),
        ({"timezone": "Mars/Olympus"}, ValueError, "not a known time zone"),
        ({"stores": {"default": {"type": "memroy"}}}, UnknownAliasError, "Did you mean 'memory'"),
        ({"stores": {"default": {"directory": "/x"}}}, ValueError, "exactly one of 'type'"),
        ({"stores": {"default": 6}}, TypeError, "Expected store instance or dict"),
        ({"executors": {"default": {"type": "asyncio", "max_worker": 1}}}, TypeError, "max_worker"),
        ({"task_defaults": {"timezone": "UTC"}}, ValueError, "unknown task_defaults key"),
        ({"task_defaults": {"max_instances": 0}}, ValueError, "max_instances"),
        ({"identity": "  "}, ValueError, "identity"),
    ],
)
def test_bad_configuration_is_an_error(
    options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        AsyncIOScheduler(**options)


def test_compute_runs_with_injected_now_coalesces_later() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    task = Task(
        fn=noop,
        trigger=IntervalTrigger(seconds=10, start_at=start, timezone="UTC"),
        next_run_time=start,
    )
    runs, next_time = scheduler._compute_runs(task, start + timedelta(seconds=25))
    assert runs == [start, start + timedelta(seconds=10), start + timedelta(seconds=20)]
    assert next_time == start + timedelta(seconds=30)


def test_process_due_acquires_releases_and_reports(utc_now: datetime) -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    store = MemoryStore()
    scheduler.add_store(store)
    scheduler.state = scheduler.state.RUNNING  # drive the pass by hand, with a fixed clock
    store.start(scheduler, "default")
    trigger = IntervalTrigger(seconds=10, start_at=utc_now - timedelta(seconds=30), timezone="UTC")
    store.add_task(
        Task(id="c", fn=noop, trigger=trigger, next_run_time=utc_now - timedelta(seconds=30))
    )
    store.add_task(
        Task(
            id="n",
            fn=noop,
            trigger=trigger,
            coalesce=False,
            next_run_time=utc_now - timedelta(seconds=30),
        )
    )
    store.add_task(
        Task(id="d", fn=noop, trigger=DateTrigger(utc_now, timezone="UTC"), next_run_time=utc_now)
    )
    submissions, earliest, more = scheduler.process_due(utc_now)
    by_id = {task.id: (runs, coalesced) for task, _, runs, coalesced in submissions}
    assert by_id["c"] == ([utc_now], 3)
    assert len(by_id["n"][0]) == 4 and by_id["n"][1] == 0
    assert by_id["d"] == ([utc_now], 0)
    assert earliest == utc_now + timedelta(seconds=10) and not more
    assert store.lookup_task("d") is None  # exhausted: removed
    assert store.lookup_task("c").next_run_time == utc_now + timedelta(seconds=10)


def test_schedulers_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError, match="cannot be serialized"):
        pickle.dumps(AsyncIOScheduler())


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = AsyncIOScheduler()

    def broken(event: Any) -> None:
        raise RuntimeError("listener bug")

    seen: list[Any] = []
    executed = threading.Event()
    scheduler.add_listener(broken)
    scheduler.add_listener(seen.append)
    scheduler.add_listener(lambda e: executed.set(), TASK_EXECUTED)
    scheduler.add_task(noop, id="x")
    scheduler.start()
    assert executed.wait(2.0)
    scheduler.shutdown()
    assert seen and "listener bug" in caplog.text
    assert scheduler.remove_listener(broken) is True
    assert scheduler.remove_listener(broken) is False
    with pytest.raises(ValueError, match="mask"):
        scheduler.add_listener(seen.append, mask=0)


class SlowStore(MemoryStore):
    """A memory store that behaves like a slow database: blocking, 80 ms per acquire."""

    blocking = True

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> Any:
        time.sleep(0.08)
        return super().acquire_due_tasks(now, owner, limit, lease)


def test_a_slow_blocking_store_is_read_ahead_but_no_run_starts_early(
    recorder_factory: Callable[[], Any],
) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler(stores={"default": SlowStore()})
        scheduler.add_listener(rec, TASK_STARTED)
        scheduler.add_task(async_noop, "interval", seconds=0.3, id="tick")
        scheduler.start()
        try:
            await rec.wait_for(lambda: len(rec.codes(TASK_STARTED)) >= 8, timeout=10)
        finally:
            scheduler.shutdown()
        lateness = [
            (e.started_at - e.scheduled_run_time).total_seconds() for e in rec.codes(TASK_STARTED)
        ]
        assert min(lateness) >= 0  # acquired early, started on time or later, never before
        # Once the pass duration is learnt, runs start well within the store's 80 ms.
        settled = sorted(lateness[-5:])
        assert settled[2] < 0.07, lateness

    asyncio.run(main())
