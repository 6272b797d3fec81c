"""The ``threadpool`` executor (also under Asyncz's alias ``pool``): a pool of threads.

An async callable sent here is run to completion on an event loop in the worker thread, never
returned un-awaited. A run that outlives its task's timeout cannot be stopped (Python has no
way to kill a thread): it is reported as failed with ``TimeoutError``, stops counting against
``max_instances``, and whatever it does later is logged and discarded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import Once, WorkerThreads, run_task_sync
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._pool import BasePoolExecutor

__all__ = ["ThreadPoolExecutor"]


class ThreadPoolExecutor(BasePoolExecutor):
    """Runs tasks in a pool of threads.

    :param max_workers: threads (default 10), started as runs need them
    :param pool_kwargs: ``thread_name_prefix``, ``initializer``, ``initargs``
    :param cancel_futures: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    :param overwrite_wait: see :class:`~asyncz.executors.pool.BasePoolExecutor`

    The threads are daemonic, so a run abandoned at its timeout never keeps the interpreter
    from exiting; ``shutdown(wait=True)`` is what lets running work finish.
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
        initializer = self.pool_kwargs.get("initializer")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"pool_kwargs['initializer'] must be callable, got {initializer!r}")
        self._threads: WorkerThreads | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        if self._threads is not None:
            self._threads.close()
        # New threads per start: restarting after a shutdown must work.
        self._threads = WorkerThreads(
            self._run,
            self.max_workers,
            self.pool_kwargs.get("thread_name_prefix") or f"asyncz-{alias}",
            self.pool_kwargs.get("initializer"),
            self.pool_kwargs.get("initargs", ()),
        )
        super().start(scheduler, alias)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        threads = self._threads
        if threads is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        # With a timeout, the watchdog may uncount the submission before the thread returns.
        release = Once(functools.partial(self.run_finished, task.id)) if task.timeout else None
        threads.submit((task, run_times, release))

    def _run(self, item: tuple[Task, Sequence[datetime], Once | None]) -> None:
        task, run_times, release = item
        try:
            run_task_sync(self.scheduler, task, run_times, self.logger, release=release)
        finally:
            if release is not None:
                release()
            else:
                self.run_finished(task.id)

    def cancel_not_started(self) -> None:
        threads = self._threads
        if threads is None:
            return
        for task, run_times, release in threads.take_pending():
            try:
                self.report_not_run(
                    task, run_times, "the executor was shut down before they started"
                )
            finally:
                if release is not None:
                    release()
                else:
                    self.run_finished(task.id)

    def close_pool(self, wait: bool) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            # Counted work is over (when waiting); threads abandoned at a timeout are not
            # joined, or one hung task would hang shutdown forever.
            threads.close()


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("threadpool", ThreadPoolExecutor)
    register("pool", ThreadPoolExecutor)
