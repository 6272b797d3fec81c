"""The shared run logic in asyncz.core.execution: async detection, the watchdog, frames,
instance accounting and Asyncz's reporting hooks."""

from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from asyncz.core.execution import (
    BaseExecutor,
    Once,
    Watchdog,
    is_async_callable,
    new_run_id,
    strip_traceback,
)
from asyncz.events import TASK_EXECUTED, TaskExecutionEvent
from asyncz.exceptions import MaximumInstancesError
from asyncz.tasks import Task
from tests.plugins.executors import jobs


def test_async_detection() -> None:
    assert is_async_callable(jobs.async_add)
    assert is_async_callable(functools.partial(jobs.async_add, 1))
    assert is_async_callable(functools.partial(functools.partial(jobs.async_add, 1), 2))
    assert is_async_callable(jobs.AsyncCallable())
    assert is_async_callable(jobs.decorated_async)
    assert not is_async_callable(jobs.add)
    assert not is_async_callable(functools.partial(jobs.add, 1))
    assert not is_async_callable(jobs.AsyncCallable)  # the class: calling it makes an instance
    assert not is_async_callable(jobs.hidden_async)  # undetectable; its result is awaited


def test_run_ids_are_unique() -> None:
    ids = {new_run_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_strip_traceback_clears_chained_exceptions() -> None:
    def inner() -> None:
        marker = jobs.Marker()  # noqa: F841
        raise KeyError("inner")

    try:
        try:
            inner()
        except KeyError as exc:
            raise ValueError("outer") from exc
    except ValueError as exc:
        caught = exc
    assert caught.__cause__ is not None and caught.__cause__.__traceback__ is not None
    strip_traceback(caught)
    assert caught.__traceback__ is None and caught.__cause__.__traceback__ is None


def test_watchdog_fires_once_unless_cancelled_first() -> None:
    dog = Watchdog()
    fired = threading.Event()
    kept = dog.set(0.01, fired.set)
    assert fired.wait(5)
    assert kept.cancel() is False  # too late: it has gone off
    silent = threading.Event()
    cancelled = dog.set(0.05, silent.set)
    assert cancelled.cancel() is True
    time.sleep(0.1)  # past the deadline: nothing may fire
    assert not silent.is_set()


def test_watchdog_orders_deadlines_and_forgets_cancelled_alarms() -> None:
    dog = Watchdog()
    seen: list[int] = []
    done = threading.Event()
    for delay, tag in ((0.06, 3), (0.02, 1), (0.04, 2)):
        dog.set(delay, functools.partial(seen.append, tag))
    dog.set(0.08, done.set)
    for _ in range(1000):  # frequent runs with long timeouts that finish in time
        dog.set(3600, lambda: None).cancel()
    assert done.wait(5)
    assert seen == [1, 2, 3]
    assert len(dog._heap) < 100


def test_once_runs_its_function_once_across_threads() -> None:
    calls: list[int] = []
    once = Once(lambda: calls.append(1))
    threads = [threading.Thread(target=once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]


class _Recording:
    identity = "rec"

    def __init__(self) -> None:
        self.events: list[Any] = []

    def wants_event(self, code: int) -> bool:
        return True

    def dispatch_event(self, event: Any) -> None:
        self.events.append(event)


class _Inline(BaseExecutor):
    """An Asyncz-style executor: overrides do_send_task and reports through the old hooks."""

    def do_send_task(self, task: Task, run_times: list[datetime]) -> None:
        event = TaskExecutionEvent(
            code=TASK_EXECUTED, task_id=task.id, scheduled_run_time=run_times[0]
        )
        if task.kwargs.get("fail"):
            try:
                raise RuntimeError("executor trouble")
            except RuntimeError:
                self.run_task_error(task.id)
        else:
            self.run_task_success(task.id, [event])


def test_an_asyncz_style_executor_keeps_working() -> None:
    scheduler = _Recording()
    executor = _Inline()
    executor.start(scheduler, "inline")
    now = datetime.now(timezone.utc)
    task = Task(fn=jobs.add, id="x", args=(1, 2))
    executor.send_task(task, [now])
    executor.send_task(task, [now])  # the first run already uncounted itself
    executor.send_task(Task(fn=jobs.add, id="y", kwargs={"fail": True}), [now])
    assert [e.task_id for e in scheduler.events] == ["x", "x"]
    assert executor.running_count == 0 and executor.wait_idle(0)


def test_instance_counting_never_goes_negative_and_needs_a_start() -> None:
    executor = BaseExecutor()
    task = Task(fn=jobs.add, id="z")
    with pytest.raises(RuntimeError, match="not running"):
        executor.send_task(task, [datetime.now(timezone.utc)])
    executor.run_finished("z")  # a stray call must not corrupt the count
    assert executor.running_instances("z") == 0 and executor.running_count == 0

    class Holds(BaseExecutor):
        def launch(self, task: Task, run_times: Any) -> None:
            pass  # never finishes

    holds = Holds()
    holds.start(_Recording(), "holds")
    holds.send_task(task, [datetime.now(timezone.utc)])
    with pytest.raises(MaximumInstancesError):
        holds.send_task(task, [datetime.now(timezone.utc)])
    assert holds.wait_idle(0.01) is False
    holds.run_finished("z")
    assert holds.wait_idle(0) is True


def test_a_restart_does_not_wait_for_a_hand_over_scheduled_on_a_dead_loop() -> None:
    import asyncio

    launched: list[str] = []

    class Records(BaseExecutor):
        def launch(self, task: Task, run_times: Any) -> None:
            launched.append(task.id)
            self.run_finished(task.id)

    class OnLoop(_Recording):
        def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
            super().__init__()
            self.event_loop = loop

    dead = asyncio.new_event_loop()  # never runs: its callbacks never happen
    executor = Records()
    executor.start(OnLoop(dead), "e")
    executor.send_task(Task(fn=jobs.add, id="first"), [datetime.now(timezone.utc)])
    executor.shutdown(wait=False)  # the queued run is reported as not run
    dead.close()
    executor.start(OnLoop(None), "e")  # no loop now: hand-overs happen at once
    executor.send_task(Task(fn=jobs.add, id="second"), [datetime.now(timezone.utc)])
    assert launched == ["second"]
