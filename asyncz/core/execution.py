"""Running tasks: the executors' base class, and one submission's run reported as events.

Shared by every executor so that all of them report the same way: per run time, either
``TASK_MISSED`` (later than the task's grace time) or ``TASK_STARTED`` followed by
``TASK_EXECUTED``/``TASK_ERROR``, all carrying the run id, the scheduled and actual start and the
duration. Exception frames are cleared once the traceback is formatted so that a task failing
every few milliseconds does not keep every failed run's locals alive.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from asyncz.core import events
from asyncz.core.errors import MaximumInstancesError

if TYPE_CHECKING:
    from asyncz.core.task import Task

__all__ = [
    "BaseExecutor",
    "is_async_callable",
    "new_run_id",
    "run_task_async",
    "run_task_sync",
]

UTC = timezone.utc
_run_counter = itertools.count(1)
# Run ids must differ between processes sharing a store, and be cheap to make.
_run_prefix = f"{os.getpid():x}-{int(time.time() * 1000):x}-"


def new_run_id() -> str:
    """An id unique to one run of a task, process-wide and across processes."""
    return f"{_run_prefix}{next(_run_counter):x}"


def is_async_callable(fn: Any) -> bool:
    """True for coroutine functions, including ones behind partials, decorators or __call__."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
            continue
        if inspect.iscoroutinefunction(fn):
            return True
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None and wrapped is not fn:
            fn = wrapped
            continue
        break
    call = getattr(fn, "__call__", None)  # noqa: B004 - instances with an async __call__
    return (
        not inspect.isfunction(fn)
        and not inspect.ismethod(fn)
        and (call is not None and inspect.iscoroutinefunction(call))
    )


class _Reporter:
    """Builds and dispatches one submission's events (only when somebody listens)."""

    __slots__ = ("identity", "logger", "scheduler", "store", "task")

    def __init__(self, scheduler: Any, task: Task, logger: logging.Logger) -> None:
        self.scheduler = scheduler
        self.task = task
        self.store = task.store_alias
        self.identity = getattr(scheduler, "identity", None)
        self.logger = logger

    def emit(self, code: int, run_time: datetime, **fields: Any) -> None:
        scheduler = self.scheduler
        if scheduler is None or not scheduler.wants_event(code):
            return
        scheduler.dispatch_event(
            events.TaskExecutionEvent(
                code=code,
                task_id=self.task.id,
                store=self.store,
                scheduler_identity=self.identity,
                scheduled_run_time=run_time,
                **fields,
            )
        )

    def missed(self, run_time: datetime, now: datetime) -> bool:
        grace = self.task.mistrigger_grace_time
        if grace is None or (now - run_time).total_seconds() <= grace:
            return False
        self.logger.warning(
            "Run time of task %r was missed by %s", self.task.name or self.task.id, now - run_time
        )
        self.emit(events.TASK_MISSED, run_time)
        return True

    def failed(
        self,
        run_time: datetime,
        run_id: str,
        started_at: datetime,
        start: float,
        exc: BaseException,
    ) -> None:
        duration = time.perf_counter() - start
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.logger.error(
            "Task %r (run %s) raised an exception:\n%s", self.task.name, run_id, formatted
        )
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
        self.emit(
            events.TASK_ERROR,
            run_time,
            run_id=run_id,
            started_at=started_at,
            duration=duration,
            exception=exc,
            traceback=formatted,
        )


def run_task_sync(
    scheduler: Any,
    task: Task,
    run_times: Sequence[datetime],
    logger: logging.Logger,
    await_result: Callable[[Awaitable[Any]], Any] | None = None,
) -> None:
    """Run ``task`` once per run time in this thread.

    A plain callable that returns an awaitable (a coroutine function hidden behind a decorator
    without ``functools.wraps``) has that awaitable run to completion with ``await_result``,
    or on a fresh event loop, never returned un-awaited.
    """
    reporter = _Reporter(scheduler, task, logger)
    fn = task.fn
    assert fn is not None
    for run_time in run_times:
        if reporter.missed(run_time, datetime.now(UTC)):
            continue
        run_id = new_run_id()
        started_at = datetime.now(UTC)
        reporter.emit(events.TASK_STARTED, run_time, run_id=run_id, started_at=started_at)
        start = time.perf_counter()
        try:
            result = fn(*task.args, **task.kwargs)
            if inspect.isawaitable(result):
                result = await_result(result) if await_result else _run_awaitable(result)
        except BaseException as exc:
            reporter.failed(run_time, run_id, started_at, start, exc)
            if not isinstance(exc, Exception):
                raise
            continue
        reporter.emit(
            events.TASK_EXECUTED,
            run_time,
            run_id=run_id,
            started_at=started_at,
            duration=time.perf_counter() - start,
            return_value=result,
        )


async def run_task_async(
    scheduler: Any, task: Task, run_times: Sequence[datetime], logger: logging.Logger
) -> None:
    """Run a coroutine-function ``task`` once per run time on the running loop."""
    reporter = _Reporter(scheduler, task, logger)
    fn = task.fn
    assert fn is not None
    for run_time in run_times:
        if reporter.missed(run_time, datetime.now(UTC)):
            continue
        run_id = new_run_id()
        started_at = datetime.now(UTC)
        reporter.emit(events.TASK_STARTED, run_time, run_id=run_id, started_at=started_at)
        start = time.perf_counter()
        try:
            result = fn(*task.args, **task.kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            reporter.failed(run_time, run_id, started_at, start, exc)
            if not isinstance(exc, Exception):
                raise
            continue
        reporter.emit(
            events.TASK_EXECUTED,
            run_time,
            run_id=run_id,
            started_at=started_at,
            duration=time.perf_counter() - start,
            return_value=result,
        )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _run_awaitable(awaitable: Awaitable[Any]) -> Any:
    return asyncio.run(_await(awaitable))


class BaseExecutor:
    """Helpers for executors: ``max_instances`` accounting and the instance alias.

    Subclasses implement :meth:`do_send_task` and call :meth:`run_finished` when a submission
    (all its run times) is done.
    """

    def __init__(self) -> None:
        self.alias: str | None = None
        self.scheduler: Any = None
        self._instances_lock = threading.Lock()
        self._instances: dict[str, int] = {}

    @property
    def logger(self) -> logging.Logger:
        import logging

        return logging.getLogger(f"asyncz.executors.{self.alias or type(self).__name__}")

    def start(self, scheduler: Any, alias: str) -> None:
        self.scheduler = scheduler
        self.alias = alias

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, return when running work has finished."""

    def running_instances(self, task_id: str) -> int:
        """How many submissions of ``task_id`` are running now."""
        return self._instances.get(task_id, 0)

    def send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        with self._instances_lock:
            running = self._instances.get(task.id, 0)
            if running >= task.max_instances:
                raise MaximumInstancesError(task.id, task.max_instances)
            self._instances[task.id] = running + 1
        try:
            self.do_send_task(task, run_times)
        except BaseException:
            self.run_finished(task.id)
            raise

    def do_send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement do_send_task")

    def run_finished(self, task_id: str) -> None:
        """A submission of ``task_id`` has finished: it stops counting against max_instances."""
        with self._instances_lock:
            left = self._instances.get(task_id, 0) - 1
            if left > 0:
                self._instances[task_id] = left
            else:
                self._instances.pop(task_id, None)
