"""The rest of the Asyncz scheduler API: configuration, decorators, run now, inspection,
shutdown tasks, awaitable schedulers, context managers and the ASGI lifespan."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, ClassVar

import pytest

from asyncz.events import TASK_EXECUTED, TASK_SUBMITTED
from asyncz.exceptions import (
    MaximumInstancesError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    UnknownAliasError,
)
from asyncz.locks import FileLockProtected
from asyncz.schedulers import AsyncIOScheduler, NativeAsyncIOScheduler
from asyncz.stores import MemoryStore
from asyncz.triggers import BaseTrigger, DateTrigger

UTC = timezone.utc


def noop() -> None:
    return None


class AtShutdown(BaseTrigger):
    """Stands in for the ``shutdown`` trigger plugin: the engine goes by the alias."""

    alias: ClassVar[str] = "shutdown"

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1}

    def __setstate__(self, state: dict[str, Any]) -> None:
        return None


# -- configuration ---------------------------------------------------------------------------


def test_global_config_flat_style_with_string_coercion() -> None:
    scheduler = AsyncIOScheduler(
        global_config={
            "asyncz.timezone": "UTC",
            "asyncz.identity": "node-7",
            "asyncz.task_defaults.coalesce": "false",
            "asyncz.task_defaults.max_instances": "9",
            "asyncz.task_defaults.mistrigger_grace_time": "30",
            "asyncz.stores.default.type": "memory",
            "asyncz.executors.default.type": "asyncio",
            "asyncz.executors.default.max_workers": "4",
            "asyncz.startup_delay": "0.5",
            "unrelated.key": "ignored",
        }
    )
    assert scheduler.identity == "node-7"
    assert scheduler.task_defaults == {
        "coalesce": False,
        "max_instances": 9,
        "mistrigger_grace_time": 30.0,
        "timeout": None,
    }
    assert scheduler.lookup_executor("default").max_workers == 4  # type: ignore[attr-defined]
    assert scheduler.startup_delay == 0.5


def test_global_config_nested_style_and_keyword_options_win() -> None:
    scheduler = AsyncIOScheduler(
        global_config={
            "asyncz.stores": {"default": {"type": "memory"}, "other": {"type": "memory"}},
            "asyncz.task_defaults": {"max_instances": 2},
            "asyncz.timezone": "Europe/Berlin",
        },
        timezone="UTC",
    )
    assert scheduler.get_scheduler_info().store_aliases == ("default", "other")
    assert scheduler.task_defaults["max_instances"] == 2
    assert scheduler.get_scheduler_info().timezone == "UTC"


@pytest.mark.parametrize(
    ("config", "error", "words"),
    [
        ({"asyncz.task_defaults.coalesce": "maybe"}, ValueError, "not a boolean"),
        ({"asyncz.task_defaults.max_instances": "many"}, ValueError, "not an integer"),
        ({"asyncz.timezon": "UTC"}, TypeError, "unknown scheduler option"),
        ({"asyncz.startup_delay": "-1"}, ValueError, "startup_delay"),
        ({"asyncz.lock_path": 5}, TypeError, "lock_path"),
    ],
)
def test_bad_global_config(config: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        AsyncIOScheduler(global_config=config)


def test_setup_only_while_stopped_and_replaces_stores() -> None:
    scheduler = AsyncIOScheduler(stores={"a": {"type": "memory"}})
    scheduler.setup(stores={"b": {"type": "memory"}})
    assert scheduler.get_scheduler_info().store_aliases == ("b",)
    scheduler.start()
    try:
        with pytest.raises(SchedulerAlreadyRunningError):
            scheduler.setup(timezone="UTC")
    finally:
        scheduler.shutdown()


def test_lock_path_defaults_startup_delay_and_logger_name() -> None:
    scheduler = AsyncIOScheduler(lock_path="/tmp/asyncz_{pgrp}_{store}.lock", logger_name="x")
    assert scheduler.startup_delay == 1.0
    assert scheduler.logger.name == "asyncz.schedulers.x"


# -- decorators ------------------------------------------------------------------------------


def test_add_task_as_a_decorator() -> None:
    scheduler = AsyncIOScheduler()

    @scheduler.add_task("interval", seconds=5)
    def first() -> None:
        return None

    @scheduler.add_task(trigger="interval", minutes=1, id="fixed", max_instances=2)
    def second() -> None:
        return None

    assert callable(first) and first.__name__ == "first"  # returned unchanged
    task = first.asyncz_tasks[0]  # type: ignore[attr-defined]
    assert task.fn is first and str(task.trigger) == "interval[0:00:05]"
    fixed = scheduler.get_task("fixed")
    assert fixed is not None and fixed.fn is second and fixed.max_instances == 2
    decorator = scheduler.add_task(trigger="interval", seconds=1, id="fixed")
    decorator(noop)  # an explicit id replaces
    assert scheduler.get_task("fixed").fn is noop  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="needs a callable"):
        decorator(42)  # type: ignore[arg-type]


# -- run now, inspection ---------------------------------------------------------------------


def test_run_task_now_keeps_or_advances_the_schedule(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_EXECUTED | TASK_SUBMITTED)
        with pytest.raises(SchedulerNotRunningError):
            scheduler.run_task("x")
        scheduler.start()
        try:
            task = scheduler.add_task(noop, "interval", hours=1, id="hourly")
            before = task.next_run_time
            assert scheduler.run_task("hourly") is task
            await rec.wait_for(lambda: rec.codes(TASK_EXECUTED))
            assert task.next_run_time == before  # forced: the schedule is untouched
            assert rec.codes(TASK_SUBMITTED)[0].source == "manual"
            assert scheduler.run_task("hourly", force=False) is task
            once = scheduler.add_task(
                noop, DateTrigger("2020-01-01T00:00:00+00:00"), id="late", next_run_time=None
            )
            scheduler.update_task("late", next_run_time=datetime(2020, 1, 1, tzinfo=UTC))
            scheduler.pause()  # keep the loop from running it first
            assert scheduler.run_task("late", remove_finished=False) is once
            assert once.paused
            await rec.wait_for(lambda: any(e.task_id == "late" for e in rec.codes(TASK_EXECUTED)))
            scheduler.update_task("late", next_run_time=datetime(2020, 1, 1, tzinfo=UTC))
            assert scheduler.run_task("late") is None
            assert scheduler.get_task("late") is None
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_run_task_respects_max_instances() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def hold() -> None:
            await release.wait()

        scheduler = AsyncIOScheduler()
        scheduler.start()
        try:
            scheduler.add_task(hold, "interval", hours=1, id="h")
            scheduler.run_task("h")
            with pytest.raises(MaximumInstancesError, match="'h'"):
                scheduler.run_task("h")
            release.set()
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_task_infos_filter_and_sort() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    try:
        scheduler.add_task(noop, "interval", hours=2, id="b", name="Billing report")
        scheduler.add_task(noop, "interval", hours=1, id="a", name="Archive")
        scheduler.add_task(noop, "date", run_at="2031-01-01T00:00:00+00:00", id="c")
        scheduler.pause_task("c")
        ids = [i.id for i in scheduler.get_task_infos()]
        assert ids == ["a", "b", "c"]
        assert [i.id for i in scheduler.get_task_infos(sort_by="id", descending=True)] == [
            "c",
            "b",
            "a",
        ]
        assert [i.id for i in scheduler.get_task_infos(schedule_state="paused")] == ["c"]
        assert [i.id for i in scheduler.get_task_infos(trigger="interval")] == ["a", "b"]
        assert [i.id for i in scheduler.get_task_infos(q="billing")] == ["b"]
        info = scheduler.get_task_info("a")
        assert info is not None and info.trigger == "interval[1:00:00]"
        assert info.callable_name == "noop" and info.store == "default"
        with pytest.raises(ValueError, match="sort_by='when' is not one of"):
            scheduler.get_task_infos(sort_by="when")
        with pytest.raises(ValueError, match="schedule_state"):
            scheduler.get_task_infos(schedule_state="sleeping")
        counts = scheduler.get_scheduler_info().task_counts
        assert counts == {"pending": 0, "scheduled": 2, "paused": 1, "total": 3}
    finally:
        scheduler.shutdown()


def test_preview_task_runs_changes_nothing() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    task = scheduler.add_task(
        noop, "interval", minutes=10, start_at=start, end_at=start + timedelta(minutes=25), id="p"
    )
    preview = scheduler.preview_task_runs("p", count=5, now=start)
    assert preview is not None
    assert preview.run_times == (
        start,
        start + timedelta(minutes=10),
        start + timedelta(minutes=20),
    )
    assert preview.exhausted
    assert task.next_run_time is None and task.pending
    short = scheduler.preview_task_runs("p", count=2, now=start)
    assert short is not None and not short.exhausted
    assert scheduler.preview_task_runs("missing") is None
    with pytest.raises(ValueError, match="between 1 and 50"):
        scheduler.preview_task_runs("p", count=0)


def test_scheduler_info() -> None:
    scheduler = AsyncIOScheduler(identity="me", timezone="Europe/Berlin")
    info = scheduler.get_scheduler_info()
    assert (info.identity, info.state_label, info.running, info.started_at) == (
        "me",
        "stopped",
        False,
        None,
    )
    scheduler.start()
    try:
        info = scheduler.get_scheduler_info()
        assert info.running and info.state_label == "running"
        assert info.executor_aliases == ("default",) and info.store_aliases == ("default",)
        assert info.timezone == "Europe/Berlin" and info.uptime_seconds is not None
    finally:
        scheduler.shutdown()


# -- shutdown ----------------------------------------------------------------------------------


def test_shutdown_tasks_run_once_at_shutdown_sync_and_async() -> None:
    ran: list[str] = []

    async def async_cleanup() -> None:
        await asyncio.sleep(0.01)
        ran.append("async")

    scheduler = AsyncIOScheduler()
    scheduler.add_task(lambda: ran.append("sync"), AtShutdown(), id="s1")
    scheduler.add_task(async_cleanup, AtShutdown(), id="s2")
    scheduler.start()
    assert ran == []
    assert scheduler.get_task("s1").next_run_time is None  # type: ignore[union-attr]
    scheduler.shutdown()
    assert sorted(ran) == ["async", "sync"]
    assert scheduler.get_tasks() == []  # they ran; they are gone


def test_stop_is_shutdown_and_restart_works() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(noop, "interval", hours=1, id="k")
    scheduler.start()
    assert scheduler.stop() is True
    assert not scheduler.running
    with scheduler:
        assert scheduler.running and scheduler.get_task("k") is not None
    assert not scheduler.running


def test_shutdown_timeout_stops_waiting() -> None:
    started = threading.Event()
    release = threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(10)

    scheduler = AsyncIOScheduler()
    scheduler.add_task(stuck)
    scheduler.start()
    assert started.wait(5)
    scheduler.shutdown(wait=True, timeout=0.2)  # returns although the run goes on
    assert not scheduler.running
    release.set()


def test_native_scheduler_awaits_running_work_and_shutdown_tasks() -> None:
    async def main() -> None:
        done: list[str] = []
        began = asyncio.Event()

        async def work() -> None:
            began.set()
            await asyncio.sleep(0.2)
            done.append("work")

        async def cleanup() -> None:
            done.append("cleanup")

        scheduler = NativeAsyncIOScheduler()
        scheduler.add_task(work)
        scheduler.add_task(cleanup, AtShutdown())
        assert await scheduler.start() is True
        await asyncio.wait_for(began.wait(), 2)
        assert await scheduler.shutdown() is True
        assert done == ["work", "cleanup"]
        with pytest.raises(TypeError, match="async with"), scheduler:
            pass
        async with scheduler:
            assert scheduler.running
        assert not scheduler.running

    asyncio.run(main())


def test_async_with_waits_for_running_work() -> None:
    async def main() -> None:
        done: list[bool] = []
        began = asyncio.Event()

        async def work() -> None:
            began.set()
            await asyncio.sleep(0.2)
            done.append(True)

        async with AsyncIOScheduler() as scheduler:
            scheduler.add_task(work)
            await asyncio.wait_for(began.wait(), 2)
        assert done == [True]

    asyncio.run(main())


# -- lock_path and startup_delay -------------------------------------------------------------


def test_store_is_processed_only_while_its_lock_can_be_taken(tmp_path: Path) -> None:
    ran = threading.Event()
    path = str(tmp_path / "asyncz_{store}.lock")
    holder = FileLockProtected(path.replace("{store}", "default"))
    scheduler = AsyncIOScheduler(lock_path=path, startup_delay=0, store_retry_interval=0.2)
    scheduler.add_listener(lambda e: ran.set(), TASK_EXECUTED)
    with holder.protected() as got:
        assert got
        scheduler.add_task(noop)
        scheduler.start()
        try:
            assert not ran.wait(0.5)  # another "process" holds the store's lock
        finally:
            pass
    try:
        assert ran.wait(3)  # picked up at the next retry once the lock is free
    finally:
        scheduler.shutdown()


def test_startup_delay_pushes_first_runs() -> None:
    scheduler = AsyncIOScheduler(startup_delay=30)
    task = scheduler.add_task(noop, "interval", seconds=1)
    scheduler.start()
    try:
        assert task.next_run_time is not None
        assert task.next_run_time - datetime.now(UTC) > timedelta(seconds=25)
    finally:
        scheduler.shutdown()


# -- ASGI lifespan -------------------------------------------------------------------------------


async def lifespan_exchange(app: Any) -> list[dict[str, Any]]:
    """Play the server's side of the ASGI lifespan protocol."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        inbox.put_nowait(message)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    return sent


def test_asgi_lifespan_with_an_app_that_speaks_it() -> None:
    async def main() -> None:
        seen: list[bool] = []
        scheduler = AsyncIOScheduler()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            assert scope["type"] == "lifespan"
            while True:
                message = await receive()
                seen.append(scheduler.running)
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return

        sent = await lifespan_exchange(scheduler.asgi(app))
        assert seen == [True, False]
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]

    asyncio.run(main())


def test_asgi_lifespan_handled_for_an_app_that_does_not() -> None:
    async def main() -> None:
        scheduler = NativeAsyncIOScheduler()
        http_calls: list[str] = []

        @scheduler.asgi(handle_lifespan=True)
        async def app(scope: Any, receive: Any, send: Any) -> None:
            http_calls.append(scope["type"])

        await app({"type": "http"}, None, None)
        sent = await lifespan_exchange(app)
        assert http_calls == ["http"]
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert not scheduler.running

    asyncio.run(main())


def test_a_failed_start_leaves_the_scheduler_stopped_and_the_tasks_pending() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(noop, "interval", hours=1, id="kept")
    scheduler.add_task(noop, "interval", hours=1, id="lost-store", store="nowhere")
    with pytest.raises(KeyError, match="no store with the alias 'nowhere'"):
        scheduler.start()
    assert not scheduler.running and scheduler.event_loop is None
    pending = {task.id: task.schedule_state for task in scheduler.get_tasks()}
    assert pending["lost-store"] == "pending"
    scheduler.delete_task("lost-store")
    scheduler.start()  # fixed: starting again works
    try:
        assert scheduler.get_task("kept") is not None
        assert scheduler.get_task("kept").schedule_state == "scheduled"  # type: ignore[union-attr]
    finally:
        scheduler.shutdown()


def test_a_task_a_store_cannot_keep_is_refused_before_start_too(tmp_path: Path) -> None:
    from asyncz.exceptions import SerializationError

    scheduler = AsyncIOScheduler(stores={"default": {"type": "file", "directory": str(tmp_path)}})
    with pytest.raises(SerializationError, match="lambda"):
        scheduler.add_task(lambda: None, "interval", seconds=5, id="lam")
    assert scheduler.get_tasks() == []  # refused, not kept to fail at start
    scheduler.add_task(noop, "interval", seconds=5, id="ok")
    scheduler.start()
    try:
        assert scheduler.get_task("ok") is not None
    finally:
        scheduler.shutdown()


def test_a_store_alias_that_is_not_a_string_is_named() -> None:
    scheduler = AsyncIOScheduler()
    scheduler.add_task(noop, "interval", hours=1, id="t")
    with pytest.raises(TypeError, match="store instance alias must be a non-empty string, got 3"):
        scheduler.preview_task_runs("t", 3)  # type: ignore[arg-type]


def test_pending_tasks_are_stored_in_one_bulk_call_where_the_store_has_one(
    tmp_path: Path,
) -> None:
    from asyncz.stores import SQLAlchemyStore

    database = f"sqlite:///{tmp_path / 'tasks.sqlite'}"
    calls: list[int] = []

    class Counting(SQLAlchemyStore):
        def add_tasks(self, tasks: Any) -> None:
            calls.append(len(tasks))
            super().add_tasks(tasks)

    scheduler = AsyncIOScheduler(stores={"default": Counting(database=database)})
    for i in range(5):
        scheduler.add_task(noop, "interval", hours=1, id=f"t{i}")
    scheduler.start()
    try:
        assert calls == [5]
        assert sorted(t.id for t in scheduler.get_tasks()) == [f"t{i}" for i in range(5)]
    finally:
        scheduler.shutdown()

    # Next start: two of them are stored already; the bulk add fails as a whole and the
    # tasks go one by one, the stored ones kept as they are.
    again = AsyncIOScheduler(stores={"default": Counting(database=database)})
    again.add_task(noop, "interval", hours=2, id="t0")
    again.add_task(noop, "interval", hours=1, id="t1")
    again.add_task(noop, "interval", hours=1, id="new")
    again.start()
    try:
        assert calls[:2] == [5, 3]  # the bulk call (one by one after it may use it too)
        ids = sorted(t.id for t in again.get_tasks())
        assert ids == ["new", "t0", "t1", "t2", "t3", "t4"]
        assert str(again.get_task("t0").trigger) == "interval[1:00:00]"  # type: ignore[union-attr]
    finally:
        again.shutdown()


def test_a_lock_path_that_cannot_be_locked_fails_start() -> None:
    scheduler = AsyncIOScheduler(lock_path="/nonexistent-dir/asyncz-{store}.lock")
    with pytest.raises(ValueError, match=re.escape("lock_path='/nonexistent-dir/asyncz-{store}")):
        scheduler.start()
    assert not scheduler.running


def test_a_failed_setup_changes_nothing() -> None:
    scheduler = AsyncIOScheduler(
        identity="me",
        timezone="UTC",
        stores={"default": {"type": "memory"}, "extra": MemoryStore()},
    )
    with pytest.raises(UnknownAliasError):
        scheduler.setup(
            timezone="Asia/Tokyo", identity="other", stores={"default": {"type": "nope"}}
        )
    info = scheduler.get_scheduler_info()
    assert (info.identity, info.timezone, info.store_aliases) == ("me", "UTC", ("default", "extra"))


def test_concurrent_awaited_starts_start_once() -> None:
    async def main() -> None:
        scheduler = NativeAsyncIOScheduler()
        assert sorted(await asyncio.gather(scheduler.start(), scheduler.start())) == [False, True]
        assert await scheduler.shutdown() is False
        assert await scheduler.shutdown() is True
        assert not scheduler.running

    asyncio.run(main())


def test_a_start_queued_on_a_loop_that_runs_only_after_shutdown_does_nothing() -> None:
    # Started from outside a given loop that is not running yet: the loop task is queued on
    # that loop. Shut down (and started again) before the loop runs, the stale queued start
    # must neither fail nor make a second loop task.
    loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        scheduler = AsyncIOScheduler(event_loop=loop)
        scheduler.start(paused=True)
        scheduler.shutdown(wait=False)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert errors == []
        assert not scheduler.running and scheduler.event_loop is None
        # Started again, then the loop runs: one loop task, whatever was queued before.
        scheduler.start(paused=True)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert errors == []
        assert len([t for t in asyncio.all_tasks(loop) if not t.done()]) == 1
        scheduler.shutdown(wait=False)
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()


def test_a_startup_delay_holds_back_tasks_already_due_at_start() -> None:
    # A one-off task whose time has passed (or a next_run_time given in the past) waits out the
    # startup delay like the rest, so schedulers starting together on one store do not each
    # run it before the others have seen it.
    async def main() -> None:
        scheduler = AsyncIOScheduler(timezone="UTC", startup_delay=30)
        past = datetime.now(timezone.utc) - timedelta(hours=1)
        scheduler.add_task(print, "date", run_at=past, id="late")
        scheduler.add_task(print, "interval", hours=1, next_run_time=past, id="given")
        scheduler.add_task(print, "interval", hours=1, id="computed")
        scheduler.start(paused=True)
        try:
            assert scheduler.started_at is not None
            earliest = scheduler.started_at + timedelta(seconds=30)
            for task_id in ("late", "given", "computed"):
                task = scheduler.get_task(task_id)
                assert task is not None and task.next_run_time is not None
                assert task.next_run_time >= earliest, task_id
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(main())
