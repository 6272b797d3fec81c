"""The ``asyncio`` executor: coroutine functions run as tasks on the scheduler's event loop.

Plain callables run in a bounded thread pool so that a blocking function never stalls the loop.
A plain callable that turns out to return an awaitable (a coroutine function behind a decorator
that hides it) has that awaitable run on the scheduler's loop, where its resources live.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import (
    BaseExecutor,
    Once,
    WorkerThreads,
    is_async_callable,
    run_awaitable,
    run_task_async,
    run_task_sync,
    running_loop,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task

__all__ = ["AsyncIOExecutor"]


class AsyncIOExecutor(BaseExecutor):
    """Runs tasks on the scheduler's event loop.

    :param max_workers: threads for plain (non-async) callables; default
        ``min(32, cpu count + 4)`` as in :class:`concurrent.futures.ThreadPoolExecutor`

    ``shutdown(wait=True)`` called from outside the loop waits for coroutines and threads;
    called *on* the loop it cannot block the loop its coroutines need, so running work is left
    to finish on its own (and is still reported). ``shutdown(wait=False)`` reports runs not yet
    started as not run; running ones carry on while the loop runs.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be an integer >= 1 or None, got {max_workers!r}")
        super().__init__()
        self.max_workers = max_workers
        self._pool: WorkerThreads | None = None
        # Running coroutine tasks: asyncio keeps only weak references.
        self._tasks: set[asyncio.Future[Any]] = set()
        # fn -> whether it is async; a task's callable rarely changes, the check is not free.
        self._kinds: dict[Any, bool] = {}

    def start(self, scheduler: Any, alias: str) -> None:
        loop = getattr(scheduler, "event_loop", None)
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(
                f"the asyncio executor {alias!r} needs a scheduler with an event loop "
                f"(AsyncIOScheduler), got {type(scheduler).__name__}"
            )
        if self._pool is not None:
            self._pool.close()
        # Threads per start, so that the executor can be started again after a shutdown.
        workers = self.max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool = WorkerThreads(self._run_in_thread, workers, f"asyncz-{alias}")
        super().start(scheduler, alias)

    def do_send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        if self._is_async(task.fn) and self._loop is not None and running_loop() is self._loop:
            # A new asyncio task takes its first step on a later loop turn anyway, after the
            # scheduler has reported TASK_SUBMITTED: no need to wait for the batched hand-over,
            # which would cost the run another loop turn of lateness.
            self.launch(task, run_times)
            return
        super().do_send_task(task, run_times)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        if self._is_async(task.fn):
            loop = self._loop
            assert loop is not None
            self._tasks.add(loop.create_task(self._run_on_loop(task, run_times)))
            return
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        # With a timeout, the watchdog may uncount the submission before the thread returns.
        release = Once(functools.partial(self.run_finished, task.id)) if task.timeout else None
        pool.submit((task, run_times, release))

    def _is_async(self, fn: Any) -> bool:
        try:
            return self._kinds[fn]
        except KeyError:
            pass
        except TypeError:  # unhashable callable
            return is_async_callable(fn)
        if len(self._kinds) > 1024:
            self._kinds.clear()  # many one-off callables: do not keep them all alive
        kind = self._kinds[fn] = is_async_callable(fn)
        return kind

    async def _run_on_loop(self, task: Task, run_times: Sequence[datetime]) -> None:
        # The bookkeeping is done here rather than in a done callback: a callback costs every
        # run one more trip through the loop's ready queue (a tenth of a no-op run's cost).
        try:
            await run_task_async(self.scheduler, task, run_times, self.logger)
        except Exception as exc:
            self.logger.error("Run of task %r ended abnormally: %r", task.id, exc)
        finally:
            self._tasks.discard(asyncio.current_task())
            self.run_finished(task.id)

    def _run_in_thread(self, item: tuple[Task, Sequence[datetime], Once | None]) -> None:
        task, run_times, release = item
        try:
            run_task_sync(
                self.scheduler, task, run_times, self.logger, self._await_on_loop, release=release
            )
        finally:
            if release is not None:
                release()
            else:
                self.run_finished(task.id)

    def _await_on_loop(self, awaitable: Awaitable[Any]) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return run_awaitable(awaitable)
        return asyncio.run_coroutine_threadsafe(_await(awaitable), loop).result()

    def shutdown(self, wait: bool = True) -> None:
        if not self.accepting:
            return
        self._accepting = False
        loop, pool = self._loop, self._pool
        self._pool = None
        queued = self.take_queued()
        alive = loop is not None and loop.is_running() and not loop.is_closed()
        on_loop = alive and running_loop() is loop
        if not wait:
            self.not_run(queued, "the executor was shut down before they started")
            if pool is not None:
                for task, run_times, release in pool.take_pending():
                    self.report_not_run(
                        task, run_times, "the executor was shut down before they started"
                    )
                    (release or functools.partial(self.run_finished, task.id))()
                pool.close()
            return
        if queued:
            # Coroutine tasks may only be created on the loop's own thread.
            if on_loop or not alive:
                self._pool = pool
                for task, run_times in queued:
                    self._launch_or_release(task, run_times)
                self._pool = None
            else:
                assert loop is not None
                asyncio.run_coroutine_threadsafe(self._launch_all(pool, queued), loop).result()
        if alive and not on_loop:
            self.wait_idle()
        # Threads of runs abandoned at their timeout are not waited for.
        if pool is not None:
            pool.close()

    async def _launch_all(
        self,
        pool: WorkerThreads | None,
        queued: list[tuple[Task, Sequence[datetime]]],
    ) -> None:
        self._pool = pool
        try:
            for task, run_times in queued:
                self._launch_or_release(task, run_times)
        finally:
            self._pool = None


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("asyncio", AsyncIOExecutor)
