"""A running scheduler around one executor, with helpers to send runs and await outcomes.

Real time only in short, bounded waits: every wait is for an event, with a deadline."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from asyncz.core.plugins import default_registry
from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_MISSED, TASK_STARTED
from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task

UTC = timezone.utc
OUTCOMES = TASK_EXECUTED | TASK_ERROR | TASK_MISSED
_ids = itertools.count(1)


def executor_aliases() -> list[str]:
    """Every registered executor plugin alias — ours and any installed third party's."""
    return [provider.alias for provider in default_registry().providers("executor")]


def make_executor(alias: str, **options: Any) -> Any:
    return default_registry().resolve("executor", alias)(**options)


class Recorder:
    """Collects events from any thread; lets the test await a condition with a deadline."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)
        try:
            self._loop.call_soon_threadsafe(self._changed.set)
        except RuntimeError:
            pass  # the test's loop has finished

    def of(self, task_id: str, mask: int = OUTCOMES) -> list[Any]:
        with self._lock:
            return [
                e for e in self.events if getattr(e, "task_id", None) == task_id and e.code & mask
            ]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds: re-checked on every event, and every 10 ms for
        conditions on state that changes without an event (instance counts)."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.01)
                except asyncio.TimeoutError:
                    pass

        await asyncio.wait_for(wait(), timeout)

    async def outcomes(self, task_id: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        await self.wait_for(lambda: len(self.of(task_id)) >= count, timeout)
        return self.of(task_id)


class Harness:
    """An AsyncIOScheduler on the running loop with ``executor`` as its default executor."""

    def __init__(self, executor: Any, **scheduler_options: Any) -> None:
        self.executor = executor
        self.scheduler = AsyncIOScheduler(
            timezone="UTC", executors={"default": executor}, **scheduler_options
        )
        self.rec = Recorder()
        self.scheduler.add_listener(self.rec)

    async def __aenter__(self) -> Harness:
        self.scheduler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.scheduler.running:
            # From a thread: shutdown(wait=True) on the loop could not wait for coroutines.
            await asyncio.to_thread(self.scheduler.shutdown)

    def task(self, fn: Any, *args: Any, **options: Any) -> Task:
        options.setdefault("id", f"t{next(_ids)}")
        return Task(fn=fn, args=args, **options)

    def send(self, task: Task, run_times: Sequence[datetime] | None = None) -> Task:
        self.executor.send_task(task, list(run_times or [datetime.now(UTC)]))
        return task

    def run(self, fn: Any, *args: Any, **options: Any) -> Task:
        return self.send(self.task(fn, *args, **options))

    async def outcome(self, task: Task, timeout: float = 10.0) -> Any:
        return (await self.rec.outcomes(task.id, 1, timeout))[0]

    def started(self, task: Task) -> list[Any]:
        return self.rec.of(task.id, TASK_STARTED)


def past(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
