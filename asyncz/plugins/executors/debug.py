"""The ``debug`` executor: runs tasks inline, one at a time, in the order they were submitted.

For tests and debugging: everything happens on the scheduler's own thread (its event loop), so
a breakpoint in a task stops the scheduler right there. Plain callables block the loop while
they run; coroutines are awaited before the next submission starts. Runs start after
``send_task`` returns, so ``TASK_SUBMITTED`` is reported before the run's events (Asyncz's debug
executor reports them the other way round).

A coroutine is cancelled at its timeout; a plain callable cannot be interrupted inline, so one
that overruns its timeout is reported as failed with ``TimeoutError`` when it returns.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import BaseExecutor, run_task_async, run_task_sync, running_loop
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task

__all__ = ["DebugExecutor"]


class DebugExecutor(BaseExecutor):
    """Runs every task inline on the scheduler's thread, in submission order."""

    def __init__(self) -> None:
        super().__init__()
        self._backlog: collections.deque[tuple[Task, Sequence[datetime]]] = collections.deque()
        self._consumer: asyncio.Task[None] | None = None

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        loop = self._loop
        if loop is None or running_loop() is not loop:
            # No loop to run on (or shutting down from another thread): run right here.
            try:
                run_task_sync(self.scheduler, task, run_times, self.logger)
            finally:
                self.run_finished(task.id)
            return
        self._backlog.append((task, run_times))
        if self._consumer is None or self._consumer.done():
            # One consumer keeps the order: a coroutine finishes before the next run starts.
            self._consumer = loop.create_task(self._consume())

    async def _consume(self) -> None:
        backlog = self._backlog
        while backlog:
            task, run_times = backlog.popleft()
            try:
                await run_task_async(self.scheduler, task, run_times, self.logger)
            except asyncio.CancelledError:
                self.run_finished(task.id)
                raise
            except BaseException:
                self.logger.exception("Run of task %r ended abnormally", task.name)
            self.run_finished(task.id)

    def shutdown(self, wait: bool = True) -> None:
        """With ``wait`` (from outside the loop), finish the backlog; without, drop it."""
        if not self.accepting:
            return
        self._accepting = False
        loop = self._loop
        alive = loop is not None and loop.is_running() and not loop.is_closed()
        if not wait:
            dropped = self.take_queued() + list(self._backlog)
            self._backlog.clear()
            self.not_run(dropped, "the executor was shut down before they started")
        elif not alive:
            # Nothing will run on that loop again: run what is left right here, in order.
            for task, run_times in list(self._backlog) + self.take_queued():
                try:
                    run_task_sync(self.scheduler, task, run_times, self.logger)
                finally:
                    self.run_finished(task.id)
            self._backlog.clear()
        elif running_loop() is loop:
            # On the loop itself we cannot block: launch what is queued and let it finish.
            self._flush()
        else:
            assert loop is not None
            # Queued submissions are launched on the loop, then waited for from here.
            asyncio.run_coroutine_threadsafe(_call(self._flush), loop).result()
            self.wait_idle()


async def _call(fn: Any) -> None:
    fn()


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("debug", DebugExecutor)
