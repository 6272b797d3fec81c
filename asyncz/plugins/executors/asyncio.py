"""The ``asyncio`` executor: coroutine functions run as tasks on the scheduler's event loop.

Plain callables run in a bounded thread pool so that a blocking function never stalls the loop.
A plain callable that turns out to return an awaitable has it awaited on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import (
    BaseExecutor,
    is_async_callable,
    run_task_async,
    run_task_sync,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task

__all__ = ["AsyncIOExecutor"]


class AsyncIOExecutor(BaseExecutor):
    """Runs tasks on the scheduler's event loop.

    :param max_workers: threads for plain (non-async) callables; default
        ``min(32, cpu count + 4)`` as in :class:`concurrent.futures.ThreadPoolExecutor`
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be an integer >= 1 or None, got {max_workers!r}")
        super().__init__()
        self.max_workers = max_workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: set[asyncio.Future[Any]] = set()

    def start(self, scheduler: Any, alias: str) -> None:
        loop = getattr(scheduler, "event_loop", None)
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(
                f"the asyncio executor {alias!r} needs a scheduler with an event loop "
                f"(AsyncIOScheduler), got {type(scheduler).__name__}"
            )
        super().start(scheduler, alias)
        self._loop = loop
        # A pool per start, so that the executor can be started again after a shutdown.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix=f"asyncz-{alias}"
        )

    def do_send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError(f"the executor {self.alias!r} has not been started")
        # Launch on the next loop iteration, never inside this call: the scheduler reports
        # TASK_SUBMITTED when this returns, and that must come before the run's own events.
        if _running_loop() is loop:
            loop.call_soon(self._launch, task, run_times)
        else:
            loop.call_soon_threadsafe(self._launch, task, run_times)

    def _launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        loop = self._loop
        assert loop is not None and self._pool is not None
        future: asyncio.Future[Any]
        if is_async_callable(task.fn):
            future = loop.create_task(run_task_async(self.scheduler, task, run_times, self.logger))
        else:
            future = loop.run_in_executor(
                self._pool,
                run_task_sync,
                self.scheduler,
                task,
                run_times,
                self.logger,
                self._await_on_loop,
            )
        self._running.add(future)
        future.add_done_callback(functools.partial(self._done, task_id=task.id))

    def _await_on_loop(self, awaitable: Awaitable[Any]) -> Any:
        assert self._loop is not None

        async def wait() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self._loop).result()

    def _done(self, future: asyncio.Future[Any], task_id: str) -> None:
        self._running.discard(future)
        self.run_finished(task_id)
        if not future.cancelled() and future.exception() is not None:
            self.logger.error("Run of task %r ended abnormally: %r", task_id, future.exception())

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with ``wait`` (and called from outside the loop) wait for running work."""
        loop, pool = self._loop, self._pool
        self._loop, self._pool = None, None
        if loop is None:
            return
        running = list(self._running)
        on_loop = _running_loop() is loop
        if running and loop.is_running() and not loop.is_closed():
            if not wait:
                for future in running:
                    loop.call_soon_threadsafe(future.cancel)
            elif not on_loop:

                async def drain() -> None:
                    await asyncio.gather(*running, return_exceptions=True)

                asyncio.run_coroutine_threadsafe(drain(), loop).result()
        if pool is not None:
            # On the loop thread we cannot block; threads finish in the background.
            pool.shutdown(wait=wait and not on_loop, cancel_futures=not wait)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("asyncio", AsyncIOExecutor)
