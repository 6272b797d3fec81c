"""The ``threadpool`` executor (also under Asyncz's alias ``pool``): a pool of threads.

An async callable sent here is run to completion on an event loop in the worker thread, never
returned un-awaited. A run that outlives its task's timeout cannot be stopped (Python has no
way to kill a thread): it is reported as failed with ``TimeoutError``, stops counting against
``max_instances``, and whatever it does later is logged and discarded.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import Once, run_task_sync
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._pool import BasePoolExecutor

__all__ = ["ThreadPoolExecutor"]


class ThreadPoolExecutor(BasePoolExecutor):
    """Runs tasks in a :class:`concurrent.futures.ThreadPoolExecutor`.

    :param max_workers: threads (default 10)
    :param pool_kwargs: ``thread_name_prefix``, ``initializer``, ``initargs`` for the pool
    :param cancel_futures: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    :param overwrite_wait: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    """

    pool_options = frozenset({"thread_name_prefix", "initializer", "initargs"})

    def __init__(
        self,
        max_workers: int = 10,
        pool_kwargs: Mapping[str, Any] | None = None,
        cancel_futures: bool = False,
        overwrite_wait: bool | None = None,
    ) -> None:
        super().__init__(max_workers, pool_kwargs, cancel_futures, overwrite_wait)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: set[concurrent.futures.Future[Any]] = set()

    def start(self, scheduler: Any, alias: str) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        # A new pool per start: a shut-down pool refuses work, and restarting must work.
        options = {"thread_name_prefix": f"asyncz-{alias}", **self.pool_kwargs}
        self._pool = concurrent.futures.ThreadPoolExecutor(self.max_workers, **options)
        super().start(scheduler, alias)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        # With a timeout, the watchdog may uncount the submission before the thread returns.
        release = Once(functools.partial(self.run_finished, task.id)) if task.timeout else None
        future = pool.submit(
            run_task_sync, self.scheduler, task, run_times, self.logger, release=release
        )
        self._futures.add(future)
        future.add_done_callback(functools.partial(self._done, task, run_times, release))

    def _done(
        self,
        task: Task,
        run_times: Sequence[datetime],
        release: Once | None,
        future: concurrent.futures.Future[Any],
    ) -> None:
        self._futures.discard(future)
        cancelled = future.cancelled()
        if cancelled:
            self.report_not_run(task, run_times, "the executor was shut down before they started")
        if release is not None:
            release()
        else:
            self.run_finished(task.id)
        exc = None if cancelled else future.exception()
        if exc is not None:  # a BaseException such as SystemExit escaped the task
            self.logger.error("Run of task %r ended abnormally: %r", task.name, exc)

    def cancel_not_started(self) -> None:
        for future in list(self._futures):
            future.cancel()  # its done callback reports and uncounts it

    def close_pool(self, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Counted work is over (when waiting); threads abandoned at a timeout are not
            # joined here, or one hung task would hang shutdown forever.
            pool.shutdown(wait=False)


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("threadpool", ThreadPoolExecutor)
    register("pool", ThreadPoolExecutor)
