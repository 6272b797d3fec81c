"""What happens when users change tasks while the loop works on them, when the loop meets
errors, and when the scheduler stops in the middle of a store pass. Each race is made
deterministic with a store that runs the "concurrent" action at the worst moment."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import asyncz.core.engine as engine
from asyncz.events import TASK_EXECUTED, TASK_REMOVED
from asyncz.executors import DebugExecutor
from asyncz.schedulers import AsyncIOScheduler
from asyncz.stores import MemoryStore
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def noop() -> None:
    return None


class MeddlingStore(MemoryStore):
    """A blocking memory store that calls ``meddle`` right after handing out due tasks."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.meddle: Callable[[], None] | None = None
        self.fail_release = 0

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> Any:
        acquired = super().acquire_due_tasks(now, owner, limit, lease)
        if acquired and self.meddle is not None:
            meddle, self.meddle = self.meddle, None
            meddle()
        return acquired

    def release_tasks(self, owner: str, next_run_times: Any) -> Any:
        if self.fail_release and next_run_times:
            self.fail_release -= 1
            raise ConnectionError("the database went away")
        return super().release_tasks(owner, next_run_times)


def run_scheduler(
    store: MeddlingStore, body: Callable[[AsyncIOScheduler, list[Any]], Any], **options: Any
) -> list[Any]:
    seen: list[Any] = []
    scheduler = AsyncIOScheduler(stores={"default": store}, **options)
    scheduler.add_listener(seen.append, TASK_EXECUTED | TASK_REMOVED)
    scheduler.start()
    try:
        body(scheduler, seen)
    finally:
        if scheduler.running:
            scheduler.shutdown()
    return seen


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


def test_a_task_deleted_during_a_pass_does_not_run_and_is_removed_once() -> None:
    store = MeddlingStore()

    def body(scheduler: AsyncIOScheduler, seen: list[Any]) -> None:
        store.meddle = lambda: scheduler.delete_task("d")
        scheduler.add_task(noop, "date", run_at=datetime.now(UTC), id="d")
        scheduler.add_task(
            noop,
            "interval",
            hours=1,
            id="marker",
            next_run_time=datetime.now(UTC) + timedelta(seconds=0.3),
        )
        assert wait_until(lambda: any(e.task_id == "marker" for e in seen))

    seen = run_scheduler(store, body)
    assert [e.task_id for e in seen if e.code == TASK_EXECUTED] == ["marker"]
    assert [e.task_id for e in seen if e.code == TASK_REMOVED] == ["d"]


def test_a_pause_during_a_pass_wins() -> None:
    store = MeddlingStore()

    def body(scheduler: AsyncIOScheduler, seen: list[Any]) -> None:
        task = scheduler.add_task(
            noop, "interval", seconds=5, id="p", next_run_time=datetime.now(UTC)
        )
        store.meddle = lambda: scheduler.pause_task("p")
        scheduler.wakeup()
        scheduler.add_task(
            noop,
            "interval",
            hours=1,
            id="marker",
            next_run_time=datetime.now(UTC) + timedelta(seconds=0.3),
        )
        assert wait_until(lambda: any(e.task_id == "marker" for e in seen))
        assert task.paused and scheduler.get_task("p").paused  # type: ignore[union-attr]

    seen = run_scheduler(store, body)
    assert "p" not in [e.task_id for e in seen if e.code == TASK_EXECUTED]


def test_a_failed_release_runs_nothing_then_the_task_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "LEASE_SECONDS", 0.3)
    store = MeddlingStore()
    store.fail_release = 1

    def body(scheduler: AsyncIOScheduler, seen: list[Any]) -> None:
        scheduler.add_task(noop, "date", run_at=datetime.now(UTC), id="once")
        assert wait_until(lambda: any(e.task_id == "once" for e in seen))
        assert not wait_until(lambda: len(seen) > 2, timeout=0.8)

    seen = run_scheduler(store, body, store_retry_interval=0.2)
    assert [e.task_id for e in seen if e.code == TASK_EXECUTED] == ["once"]


def test_runs_taken_in_a_pass_still_start_when_shutdown_comes_during_it() -> None:
    store = MeddlingStore()
    release = threading.Event()
    ran = threading.Event()
    scheduler = AsyncIOScheduler(stores={"default": store})
    scheduler.add_listener(lambda e: ran.set(), TASK_EXECUTED)

    def stop_in_the_middle() -> None:
        threading.Thread(target=scheduler.shutdown).start()
        release.wait(0.2)  # the shutdown is now waiting for this pass

    store.meddle = stop_in_the_middle
    scheduler.add_task(noop, "date", run_at=datetime.now(UTC), id="once")
    scheduler.start()
    assert ran.wait(3)
    assert wait_until(lambda: not scheduler.running)
    assert store.lookup_task("once") is None  # ran, and its trigger is done


def test_the_same_on_the_loop_thread() -> None:
    async def main() -> None:
        store = MeddlingStore()
        ran = asyncio.Event()
        loop = asyncio.get_running_loop()
        scheduler = AsyncIOScheduler(stores={"default": store})
        scheduler.add_listener(lambda e: loop.call_soon_threadsafe(ran.set), TASK_EXECUTED)
        entered = threading.Event()
        go_on = threading.Event()

        def hold() -> None:
            entered.set()
            go_on.wait(3)

        store.meddle = hold
        scheduler.add_task(noop, "date", run_at=datetime.now(UTC), id="once")
        scheduler.start()
        await loop.run_in_executor(None, entered.wait, 3)
        scheduler.shutdown()  # on the loop, while the pass is in its worker thread
        go_on.set()
        await asyncio.wait_for(ran.wait(), 3)

    asyncio.run(main())


def test_an_error_in_a_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran = threading.Event()
    scheduler = AsyncIOScheduler(store_retry_interval=0.1)
    scheduler.add_listener(lambda e: ran.set(), TASK_EXECUTED)
    original = scheduler.process_due
    calls = []

    def flaky(now: datetime) -> Any:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("a bug in a pass")
        return original(now)

    scheduler.process_due = flaky  # type: ignore[method-assign]
    scheduler.add_task(noop, id="x")
    scheduler.start()
    try:
        assert ran.wait(3)
    finally:
        scheduler.shutdown()
    assert "a bug in a pass" in caplog.text


def test_pausing_or_rescheduling_a_pending_task_survives_start() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_task(noop, "interval", hours=1, id="paused")
    scheduler.add_task(noop, "interval", hours=1, id="moved")
    scheduler.pause_task("paused")
    scheduler.update_task("moved", next_run_time="2031-01-01T00:00:00+00:00")
    scheduler.start()
    try:
        assert scheduler.get_task("paused").paused  # type: ignore[union-attr]
        moved = scheduler.get_task("moved")
        assert moved is not None and moved.next_run_time == datetime(2031, 1, 1, tzinfo=UTC)
    finally:
        scheduler.shutdown()


def test_naive_times_are_in_the_schedulers_zone() -> None:
    scheduler = AsyncIOScheduler(timezone="Asia/Tokyo")
    task = scheduler.add_task(noop, "interval", hours=1, next_run_time=datetime(2030, 1, 1, 12))
    assert task.next_run_time is not None
    assert task.next_run_time.utcoffset() == timedelta(hours=9)
    scheduler.update_task(task.id, next_run_time=datetime(2030, 1, 2, 12))
    assert task.next_run_time.utcoffset() == timedelta(hours=9)


def test_arguments_that_do_not_fit_the_callable_fail_at_add_task() -> None:
    def f(a: int, b: int = 0) -> None:
        return None

    scheduler = AsyncIOScheduler()
    # Asyncz's message, with the signature in the error it is raised from.
    with pytest.raises(ValueError, match="longer than the target callable") as info:
        scheduler.add_task(f, args=(1, 2, 3))
    assert re.search(
        r"do not fit .*f\(a: 'int', b: 'int' = 0\).*too many", str(info.value.__cause__)
    )
    with pytest.raises(
        ValueError, match="does not accept the following keyword arguments: zz"
    ) as info:
        scheduler.add_task(f, args=(1,), kwargs={"zz": 1})
    assert "unexpected keyword argument 'zz'" in str(info.value.__cause__)
    task = scheduler.add_task(f, args=(1,), id="ok")
    with pytest.raises(ValueError, match="have not been supplied: a") as info:
        scheduler.update_task("ok", args=())
    assert "missing a required argument" in str(info.value.__cause__)
    assert task.args == (1,)


def test_due_queries_compare_instants_across_a_repeated_hour() -> None:
    # 02:10 on the second pass (CET) is 40 minutes after 02:30 on the first pass (CEST).
    second_pass = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN)
    first_pass = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    store = MemoryStore()
    store.start(None, "default")
    task = Task(
        id="x",
        fn=noop,
        trigger=IntervalTrigger(hours=1, timezone=BERLIN),
        next_run_time=second_pass,
    )
    store.add_task(task)
    assert store.get_due_tasks(first_pass) == []
    assert task.get_run_times(first_pass, BERLIN) == []
    assert store.acquire_due_tasks(first_pass, "me", 10, 60) == []


class GatedExecutor(DebugExecutor):
    """Holds a run sent from ``manual_thread`` until the loop has submitted a run, which is
    the worst moment for ``run_task`` racing a pass over the same due time."""

    def __init__(self) -> None:
        super().__init__()
        self.manual_thread: int | None = None
        self.scheduled_submitted = threading.Event()

    def send_task(self, task: Task, run_times: Any) -> None:
        if threading.get_ident() == self.manual_thread:
            self.scheduled_submitted.wait(1.0)
            super().send_task(task, run_times)
        else:
            super().send_task(task, run_times)
            self.scheduled_submitted.set()


def test_run_task_during_a_pass_does_not_run_a_due_time_twice() -> None:
    store = MeddlingStore()
    executor = GatedExecutor()
    manual: list[Any] = []

    def body(scheduler: AsyncIOScheduler, seen: list[Any]) -> None:
        def run_by_hand() -> None:
            executor.manual_thread = threading.get_ident()
            manual.append(scheduler.run_task("r", force=False))

        def meddle() -> None:
            # The pass holds "r"; a user runs it by hand from another thread meanwhile.
            thread = threading.Thread(target=run_by_hand)
            thread.start()
            thread.join(0.5)

        store.meddle = meddle
        due = datetime.now(UTC)
        scheduler.add_task(noop, "interval", hours=1, id="r", next_run_time=due)
        assert wait_until(lambda: bool(manual))
        assert not wait_until(lambda: len(executed(seen)) > 1, timeout=0.5)

    def executed(seen: list[Any]) -> list[Any]:
        return [e for e in seen if e.code == TASK_EXECUTED and e.task_id == "r"]

    seen = run_scheduler(store, body, executors={"default": executor})
    assert len(executed(seen)) == 1
    # The hand-made call found the due time taken and the task moved past it.
    (task,) = manual
    assert task is not None and task.next_run_time > datetime.now(UTC)
