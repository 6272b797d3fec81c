"""Running tasks: the executors' base class, and one submission's runs reported as events.

Shared by every executor so that all of them report the same way: per run time, either
``TASK_MISSED`` (later than the task's grace time, or cancelled before it started) or
``TASK_STARTED`` followed by exactly one of ``TASK_EXECUTED``/``TASK_ERROR``, all carrying the
run id, the scheduled and actual start and the duration. Events are built only when a listener
wants them. Exception frames are cleared once the traceback is formatted so that a task failing
every few milliseconds does not keep every failed run's locals alive.

Timeouts (``Task.timeout``): a coroutine is cancelled; a thread cannot be stopped, so the
:class:`Watchdog` reports the run as failed with ``TimeoutError`` when its time is up and the
submission stops counting against ``max_instances`` (whatever the thread does later is logged and
discarded); a run that can neither be cancelled nor watched (a plain callable run inline) is
reported as timed out after the fact.

Here: detecting async callables, run ids, :class:`RunReporter`, ``run_task_sync`` and
``run_task_async`` with their timeout handling, and :class:`BaseExecutor` (``max_instances``
accounting, the batched hand-over). Not here: the threads these use, the watchdog and
:class:`WorkerThreads` (and :class:`Once`), which are in :mod:`asyncz.core.threads` and
re-exported from this module.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import inspect
import itertools
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from asyncz.core import events
from asyncz.core.errors import MaximumInstancesError, strip_traceback
from asyncz.core.threads import Alarm, Once, Watchdog, WorkerThreads, watchdog

if TYPE_CHECKING:
    from asyncz.core.task import Task

__all__ = [
    "Alarm",
    "BaseExecutor",
    "Once",
    "RunReporter",
    "Watchdog",
    "WorkerThreads",
    "await_with_timeout",
    "is_async_callable",
    "launches_after_step",
    "new_run_id",
    "run_task_async",
    "run_awaitable",
    "run_coroutine_task",
    "run_task",
    "run_task_sync",
    "running_loop",
    "strip_traceback",
    "timeout_message",
    "watchdog",
]

UTC = timezone.utc
_run_counter = itertools.count(1)
# Run ids must differ between processes sharing a store, and be cheap to make.
_run_prefix = f"{os.getpid():x}-{int(time.time() * 1000):x}-"

#: how an awaitable a thread run produced is run to its result (it is already wrapped in the
#: run's timeout, if any)
AwaitResult = Callable[[Awaitable[Any]], Any]


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
    if inspect.isclass(fn) or inspect.isfunction(fn) or inspect.ismethod(fn):
        return False  # calling a class makes an instance, whatever its __call__ is
    call = getattr(fn, "__call__", None)  # noqa: B004 - instances with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


# The process-wide watchdog (see asyncz.core.threads), bound once for the run loops.
_watchdog = watchdog()


# -- reporting -------------------------------------------------------------------------------

_OUTCOMES = events.TASK_STARTED | events.TASK_EXECUTED | events.TASK_ERROR


class RunReporter:
    """Builds and dispatches one submission's events (only when somebody listens).

    For executors that run tasks their own way (the process pool) but report like the others.
    """

    __slots__ = ("identity", "logger", "scheduler", "store", "task")

    def __init__(self, scheduler: Any, task: Task, logger: logging.Logger) -> None:
        self.scheduler = scheduler
        self.task = task
        self.store = task.store_alias
        self.identity = getattr(scheduler, "identity", None)
        self.logger = logger

    def wants(self, code: int) -> bool:
        scheduler = self.scheduler
        return scheduler is not None and bool(scheduler.wants_event(code))

    def emit(self, code: int, run_time: datetime, **fields: Any) -> None:
        scheduler = self.scheduler
        if scheduler is None or not scheduler.wants_event(code):
            return
        scheduler.dispatch_event(
            events.TaskExecutionEvent(
                code=code,
                alias=self.store,
                task_id=self.task.id,
                store=self.store,
                scheduler_identity=self.identity,
                scheduled_run_time=run_time,
                **fields,
            )
        )

    def started_at(self) -> datetime | None:
        """The actual start, read from the clock only if an event will carry it."""
        return datetime.now(UTC) if self.wants(_OUTCOMES) else None

    def missed(self, run_time: datetime) -> bool:
        grace = self.task.mistrigger_grace_time
        if grace is None:
            return False
        now = datetime.now(UTC)
        if (now - run_time).total_seconds() <= grace:
            return False
        self.logger.warning(
            "Run time of task %r was missed by %s",
            self.task.name or self.task.id,
            now - run_time,
            extra={"task_id": self.task.id},
        )
        self.emit(events.TASK_MISSED, run_time)
        return True

    def not_run(self, run_times: Iterable[datetime], why: str) -> None:
        """Runs that will never start (cancelled by shutdown, behind a hung run, ...)."""
        count = 0
        for run_time in run_times:
            count += 1
            self.emit(events.TASK_MISSED, run_time)
        if count:
            self.logger.warning("%d run(s) of task %r not run: %s", count, self.task.name, why)

    def executed(
        self,
        run_time: datetime,
        run_id: str,
        started_at: datetime | None,
        start: float,
        result: Any,
    ) -> None:
        if self.wants(events.TASK_EXECUTED):
            self.emit(
                events.TASK_EXECUTED,
                run_time,
                run_id=run_id,
                started_at=started_at,
                duration=time.perf_counter() - start,
                return_value=result,
            )

    def failed(
        self,
        run_time: datetime,
        run_id: str,
        started_at: datetime | None,
        start: float,
        exc: BaseException,
        formatted: str | None = None,
    ) -> None:
        duration = time.perf_counter() - start
        if formatted is None:
            formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        strip_traceback(exc)
        self.logger.error(
            "Task %r (run %s) raised an exception:\n%s",
            self.task.name,
            run_id,
            formatted,
            # Log handlers (the dashboard's among them) can file the line under its run.
            extra={"task_id": self.task.id, "run_id": run_id},
        )
        self.emit(
            events.TASK_ERROR,
            run_time,
            run_id=run_id,
            started_at=started_at,
            duration=duration,
            exception=exc,
            traceback=formatted,
        )

    def timed_out(
        self,
        run_time: datetime,
        run_id: str,
        started_at: datetime | None,
        start: float,
        what_happened: str,
    ) -> None:
        exc = TimeoutError(timeout_message(self.task, run_id, what_happened))
        self.failed(run_time, run_id, started_at, start, exc, f"TimeoutError: {exc}\n")


def timeout_message(task: Task, run_id: str, what_happened: str) -> str:
    """The ``TimeoutError`` message for a run: which run, its limit, what became of it."""
    limit = "its timeout" if task.timeout is None else f"its timeout of {task.timeout:g} s"
    return f"run {run_id} of task {task.name or task.id!r} exceeded {limit}; {what_happened}"


# -- running ---------------------------------------------------------------------------------


def run_task_sync(
    scheduler: Any,
    task: Task,
    run_times: Sequence[datetime],
    logger: logging.Logger,
    await_result: AwaitResult | None = None,
    *,
    release: Callable[[], None] | None = None,
) -> None:
    """Run ``task`` once per run time in this thread.

    A callable that returns an awaitable (a coroutine function, or one hidden behind a
    decorator) has that awaitable run to completion with ``await_result`` — by default on a
    fresh event loop in this thread — never returned un-awaited.

    With a ``Task.timeout`` and a ``release`` callback, the watchdog reports a run that takes
    too long as timed out, reports the submission's later run times as not run, and calls
    ``release`` so the submission stops counting against ``max_instances``; the thread's own
    outcome is then discarded. Without ``release``, an overrun is reported after the fact.
    """
    reporter = RunReporter(scheduler, task, logger)
    fn = task.fn
    assert fn is not None
    args, kwargs, timeout = task.args, task.kwargs, task.timeout
    runner = await_result or run_awaitable
    if timeout is not None and release is not None:
        # Given up at its timeout, this thread is replaced in its pool (if it is in one).
        pool = WorkerThreads.current()
        if pool is not None:
            release = functools.partial(_abandon_thread, pool, threading.current_thread(), release)
    # Nobody listens for run events: skip the clock, the run id and the event objects.
    quiet = not reporter.wants(_OUTCOMES)
    for index, run_time in enumerate(run_times):
        if reporter.missed(run_time):
            continue
        run_id = "" if quiet and timeout is None else new_run_id()
        started_at = None
        if not quiet:
            started_at = datetime.now(UTC)
            reporter.emit(events.TASK_STARTED, run_time, run_id=run_id, started_at=started_at)
        start = time.perf_counter()
        alarm = None
        if timeout is not None and release is not None:
            alarm = _watchdog.set(
                timeout,
                functools.partial(
                    _abandon, reporter, run_times[index:], run_id, started_at, start, release
                ),
            )
        try:
            result = fn(*args, **kwargs)
            if result is not None and inspect.isawaitable(result):
                if timeout is not None:
                    result = await_with_timeout(
                        result, timeout, timeout_message(task, run_id, "cancelled")
                    )
                result = runner(result)
        except BaseException as exc:
            if alarm is not None and not alarm.cancel():
                _late(reporter, run_id, exc)
                return
            reporter.failed(run_time, run_id or new_run_id(), started_at, start, exc)
            if not isinstance(exc, Exception):
                raise
            continue
        if alarm is not None and not alarm.cancel():
            _late(reporter, run_id, None)
            return
        if timeout is not None and alarm is None and time.perf_counter() - start > timeout:
            reporter.timed_out(run_time, run_id, started_at, start, "it ran to completion")
            continue
        if not quiet:
            reporter.executed(run_time, run_id, started_at, start, result)


def _abandon(
    reporter: RunReporter,
    run_times: Sequence[datetime],
    run_id: str,
    started_at: datetime | None,
    start: float,
    release: Callable[[], None],
) -> None:
    """The watchdog's side of a thread run that outlived its timeout."""
    try:
        reporter.timed_out(
            run_times[0],
            run_id,
            started_at,
            start,
            "a thread cannot be stopped, so it was abandoned and its outcome will be discarded",
        )
        reporter.not_run(run_times[1:], f"run {run_id} before them timed out")
    finally:
        release()


def _abandon_thread(
    pool: WorkerThreads, thread: threading.Thread, release: Callable[[], None]
) -> None:
    pool.abandon(thread)
    release()


def _late(reporter: RunReporter, run_id: str, exc: BaseException | None) -> None:
    if exc is not None:
        strip_traceback(exc)
    reporter.logger.warning(
        "Run %s of task %r finished after its timeout had been reported (%s); outcome discarded",
        run_id,
        reporter.task.name,
        "returned" if exc is None else f"raised {exc!r}",
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def await_with_timeout(awaitable: Awaitable[Any], timeout: float | None, message: str) -> Any:
    """Await ``awaitable``; past ``timeout`` seconds cancel it and raise ``TimeoutError(message)``.

    A ``TimeoutError`` the awaitable raises itself passes through unchanged.
    """
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        try:
            async with asyncio.timeout(timeout) as scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise TimeoutError(message) from None
            raise
    else:  # pragma: no cover - Python 3.10
        future = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            future.cancel()
            await asyncio.gather(future, return_exceptions=True)
            raise TimeoutError(message)
        return future.result()


def run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` to completion on a fresh event loop in this (worker) thread."""
    return asyncio.run(_await(awaitable))


async def run_task_async(
    scheduler: Any, task: Task, run_times: Sequence[datetime], logger: logging.Logger
) -> None:
    """Run ``task`` once per run time on the running loop.

    A coroutine is cancelled at its timeout. A plain callable is called inline (it blocks the
    loop: the debug executor's way); if it overruns its timeout it is reported after the fact.
    """
    reporter = RunReporter(scheduler, task, logger)
    fn = task.fn
    assert fn is not None
    args, kwargs, timeout = task.args, task.kwargs, task.timeout
    # Nobody listens for run events: skip the clock, the run id and the event objects.
    quiet = not reporter.wants(_OUTCOMES)
    for run_time in run_times:
        if reporter.missed(run_time):
            continue
        run_id = "" if quiet and timeout is None else new_run_id()
        started_at = None
        if not quiet:
            started_at = datetime.now(UTC)
            reporter.emit(events.TASK_STARTED, run_time, run_id=run_id, started_at=started_at)
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
            if result is not None and inspect.isawaitable(result):
                if timeout is None:
                    result = await result
                else:
                    result = await await_with_timeout(
                        result, timeout, timeout_message(task, run_id, "cancelled")
                    )
        except BaseException as exc:
            reporter.failed(run_time, run_id or new_run_id(), started_at, start, exc)
            if not isinstance(exc, Exception):
                raise
            continue
        if timeout is not None and time.perf_counter() - start > timeout:
            reporter.timed_out(run_time, run_id, started_at, start, "it ran to completion")
            continue
        if not quiet:
            reporter.executed(run_time, run_id, started_at, start, result)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- the base class --------------------------------------------------------------------------


#: Launches held back until a scheduler step without an event loop has reported its submissions
#: (see :func:`launches_after_step`); ``None`` outside such a step.
_held_launches: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "asyncz_held_launches", default=None
)


@contextlib.contextmanager
def launches_after_step() -> Iterator[None]:
    """Hold back what executors without an event loop would launch during the block, and
    launch it when the block ends: so ``TASK_SUBMITTED``, reported after ``send_task``
    returns, still comes before the run's own events in a scheduler that has no loop."""
    held: list[Callable[[], None]] = []
    token = _held_launches.set(held)
    try:
        yield
    finally:
        _held_launches.reset(token)
        for launch in held:
            launch()


class BaseExecutor:
    """What every built-in executor shares; a plugin may inherit from it, or not.

    * ``max_instances``: :meth:`send_task` counts running submissions per task and raises
      :class:`MaximumInstancesError` at the limit; :meth:`run_finished` uncounts one.
    * The hand-over: the default :meth:`do_send_task` queues the runs and starts them (with
      :meth:`launch`) once the scheduler's current step is over — on the scheduler's event loop
      when it has one — because the scheduler reports ``TASK_SUBMITTED`` after ``send_task``
      returns and that must come before the run's ``TASK_STARTED``. One loop callback starts a
      whole batch.
    * Shutdown: :meth:`wait_idle` blocks until no counted submission is left; queued runs are
      started (``wait``) or reported as not run.

    An Asyncz-style executor that overrides :meth:`do_send_task` and reports with
    :meth:`run_task_success`/:meth:`run_task_error` keeps working.
    """

    def __init__(self) -> None:
        self.alias: str | None = None
        self.scheduler: Any = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._instances: dict[str, int] = {}
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: collections.deque[tuple[Task, Sequence[datetime]]] = collections.deque()
        self._flush_pending = False
        self._accepting = False
        self._logger: logging.Logger | None = None

    @property
    def logger(self) -> logging.Logger:
        logger = self._logger
        if logger is None:
            logger = logging.getLogger(f"asyncz.executors.{self.alias or type(self).__name__}")
            self._logger = logger
        return logger

    @property
    def accepting(self) -> bool:
        """Whether the executor is started and not shut down."""
        return self._accepting

    def start(self, scheduler: Any, alias: str) -> None:
        """Bind to ``scheduler`` under the instance alias ``alias``; also after a shutdown."""
        self.scheduler = scheduler
        self.alias = alias
        self._logger = logging.getLogger(f"asyncz.executors.{alias}")
        loop = getattr(scheduler, "event_loop", None)
        self._loop = loop if isinstance(loop, asyncio.AbstractEventLoop) else None
        # A flush scheduled on a loop that has since gone away never runs: do not wait for it.
        self._flush_pending = False
        self._accepting = True

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, return when running work has finished.

        Without ``wait``, runs not yet started are reported as not run (``TASK_MISSED``).
        """
        if not self._accepting:
            return
        self._accepting = False
        queued = self.take_queued()
        if wait:
            for task, run_times in queued:
                self._launch_or_release(task, run_times)
            self.wait_idle()
        else:
            self.not_run(queued, "the executor was shut down before they started")

    # -- counting --------------------------------------------------------------------------

    def running_instances(self, task_id: str) -> int:
        """How many submissions of ``task_id`` count against its max_instances now."""
        return self._instances.get(task_id, 0)

    @property
    def running_count(self) -> int:
        """How many submissions (of all tasks) count against max_instances now."""
        return self._running

    def send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        if not self._accepting:
            raise RuntimeError(
                f"the executor {self.alias or type(self).__name__!r} is not running "
                "(not started, or shut down)"
            )
        if not run_times:
            return  # nothing to run (Asyncz's executors accept an empty submission too)
        with self._lock:
            running = self._instances.get(task.id, 0)
            if running >= task.max_instances:
                raise MaximumInstancesError(task.id, task.max_instances)
            self._instances[task.id] = running + 1
            self._running += 1
        try:
            self.do_send_task(task, run_times)
        except BaseException:
            self.run_finished(task.id)
            raise

    def run_finished(self, task_id: str) -> None:
        """A submission of ``task_id`` has finished: it stops counting against max_instances."""
        with self._lock:
            left = self._instances.get(task_id, 0) - 1
            if left > 0:
                self._instances[task_id] = left
            elif self._instances.pop(task_id, None) is None:
                return  # not counted (a bug elsewhere): never go below zero
            self._running -= 1
            if not self._running:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no submission counts against max_instances; False on ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    # -- handing over ----------------------------------------------------------------------

    def do_send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        """Queue the runs; they are launched once the scheduler's current step is over."""
        self._queued.append((task, run_times))
        if self._flush_pending:
            return
        self._flush_pending = True
        loop = self._loop
        if loop is not None:
            try:
                if running_loop() is loop:
                    loop.call_soon(self._flush)
                else:
                    loop.call_soon_threadsafe(self._flush)
                return
            except RuntimeError:
                pass  # the loop is closed: launch from here
        held = _held_launches.get()
        if held is not None:
            held.append(self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        queued = self._queued
        while queued:
            try:
                task, run_times = queued.popleft()
            except IndexError:  # taken by a concurrent shutdown
                break
            self._launch_or_release(task, run_times)

    def _launch_or_release(self, task: Task, run_times: Sequence[datetime]) -> None:
        try:
            self.launch(task, run_times)
        except Exception:
            # getattr: reporting a task that could not start must not fail on the task too.
            self.logger.exception(
                "Could not start task %r; its runs are skipped", getattr(task, "name", task.id)
            )
            self.not_run([(task, run_times)], "they could not start")

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        """Start the runs of one submission; call :meth:`run_finished` when all are done."""
        raise NotImplementedError(f"{type(self).__name__} must implement launch or do_send_task")

    def take_queued(self) -> list[tuple[Task, Sequence[datetime]]]:
        """Remove and return the submissions handed over but not launched yet."""
        taken = []
        while self._queued:
            try:
                taken.append(self._queued.popleft())
            except IndexError:
                break
        return taken

    def not_run(self, submissions: Iterable[tuple[Task, Sequence[datetime]]], why: str) -> None:
        """Report whole submissions as not run (``TASK_MISSED``) and uncount them."""
        for task, run_times in submissions:
            try:
                self.report_not_run(task, run_times, why)
            finally:
                self.run_finished(task.id)

    def report_not_run(self, task: Task, run_times: Iterable[datetime], why: str) -> None:
        """Report runs that will never start as ``TASK_MISSED`` (and log why)."""
        RunReporter(self.scheduler, task, self.logger).not_run(run_times, why)

    # -- Asyncz's reporting API ------------------------------------------------------------

    def run_task_success(self, task_id: str, task_events: Iterable[events.SchedulerEvent]) -> None:
        """Asyncz's hook for a finished submission: uncount it and dispatch its events."""
        self.run_finished(task_id)
        if self.scheduler is not None:
            for event in task_events:
                self.scheduler.dispatch_event(event)

    def run_task_error(self, task_id: str) -> None:
        """Asyncz's hook for a submission that failed outside the task: uncount and log it."""
        self.run_finished(task_id)
        self.logger.error("Error running task %r", task_id, exc_info=True)


class _EventList:
    """Takes a scheduler's place in a run to keep its events (see :func:`run_task`)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def wants_event(self, code: int) -> bool:
        return True

    def dispatch_event(self, event: Any) -> None:
        self.events.append(event)


def _logger(logger: logging.Logger | str) -> logging.Logger:
    return logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)


def run_task(
    task: Task, store_alias: str | None, run_times: Sequence[datetime], logger: logging.Logger | str
) -> list[Any]:
    """Run ``task`` once per run time in this thread and return the events of the runs
    (Asyncz's ``asyncz.executors.base.run_task``; executors report to their scheduler)."""
    collected = _EventList()
    run_task_sync(collected, task, run_times, _logger(logger))
    return collected.events


async def run_coroutine_task(
    task: Task, store_alias: str | None, run_times: Sequence[datetime], logger: logging.Logger | str
) -> list[Any]:
    """:func:`run_task` for a coroutine function, awaited on the running loop."""
    collected = _EventList()
    await run_task_async(collected, task, run_times, _logger(logger))
    return collected.events
