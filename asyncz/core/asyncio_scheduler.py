"""The asyncio schedulers: ``AsyncIOScheduler`` and ``NativeAsyncIOScheduler``.

Here: choosing or starting the event loop (the caller's, or one of its own in a daemon thread),
``start``, the order of a shutdown from any thread or from the loop itself (``shutdown``,
``async with``, the ASGI lifespan), and the loop: ``_main`` sleeps until the earliest next run
time over all stores on a precise alarm (:mod:`asyncz.core.timing`: one wake-up, never early, no
spinning), is woken early by ``wakeup``, and ``_run_pass`` runs the due-task pass, in a worker
thread for blocking stores, then submits the runs. The pass for a moment starts a little before
it (1.5 times its usual duration on the loop, twice in a worker thread) and the runs are
submitted at the moment itself, after a second, short precise sleep, so the pass's own time is
not added to the runs' lateness.

Not here: the pass itself and the shutdown steps (:mod:`asyncz.core.engine`), configuration
(:mod:`asyncz.core.scheduler_config`), the task API (:mod:`asyncz.core.task_api`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from asyncz.core.base_scheduler import BaseScheduler
from asyncz.core.config import coerce_options
from asyncz.core.converters import maybe_ref
from asyncz.core.execution import is_async_callable, run_task_async, run_task_sync
from asyncz.core.scheduler_common import (
    ALARM_KIND,
    MAX_IO_LEAD_SECONDS,
    MAX_SLEEP_SECONDS,
    THREAD_ALARM_HORIZON_SECONDS,
    UTC,
    SchedulerState,
)
from asyncz.core.timing import Alarm, LoopAlarm, epoch_ns, make_alarm

__all__ = ["AsyncIOScheduler", "NativeAsyncIOScheduler"]

#: A pass on the loop (memory stores) starts this many times its smoothed duration early.
PASS_LEAD_FACTOR = 1.5


class AsyncIOScheduler(BaseScheduler):
    """A scheduler driven by an asyncio event loop.

    ``start()`` uses the event loop running in the calling thread; when none runs (or with
    ``isolated_event_loop=True``) it runs its own loop in a daemon thread. Store I/O of
    blocking stores runs in a worker thread so a slow store never stalls the loop.

    Options (keyword arguments), besides
    :class:`~asyncz.core.base_scheduler.BaseScheduler`'s:

    - ``event_loop``: a loop (or ``"module:attr"`` reference) to use instead of the running one
    - ``isolated_event_loop``: always run on a loop of its own, in its own thread
    """

    default_executor_alias: ClassVar[str] = "asyncio"
    option_names: ClassVar[frozenset[str]] = BaseScheduler.option_names | {
        "event_loop",
        "isolated_event_loop",
    }

    def __init__(self, global_config: Mapping[str, Any] | None = None, **options: Any) -> None:
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None
        self._owns_loop = False
        self._wakeup_event: asyncio.Event | None = None
        self._main_task: asyncio.Future[None] | None = None
        self._io_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._shutdown_runs: set[asyncio.Future[Any]] = set()
        # None while the loop is awake: every change must then be seen before it sleeps.
        self._sleep_until: datetime | None = None
        # The loop's precise wake-up (asyncz.core.timing), while its loop task runs.
        self._alarm: Alarm | None = None
        # How long a pass over blocking stores takes (smoothed), and how early to begin one.
        self._io_seconds = 0.005
        self._pass_seconds = 0.0
        self._io_lead = 0.0
        self._pass_in_flight = False
        self._starting = False
        super().__init__(global_config, **options)

    def _setup(self, options: dict[str, Any]) -> None:
        options = coerce_options(options)
        loop = maybe_ref(options.get("event_loop"))
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"event_loop must be an asyncio event loop, got {loop!r}")
        self._given_loop: asyncio.AbstractEventLoop | None = loop
        isolated = options.get("isolated_event_loop", False)
        if not isinstance(isolated, bool):
            raise TypeError(f"isolated_event_loop must be True or False, got {isolated!r}")
        self._isolated = isolated
        super()._setup(options)

    # -- the event loop --------------------------------------------------------------------

    def _choose_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._given_loop
        if loop is None and not self._isolated:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            return self._start_loop_thread()
        self._owns_loop = False
        self._loop_thread_id = threading.get_ident() if loop.is_running() else None
        return loop

    def _start_loop_thread(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._loop_thread_id = threading.get_ident()
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._owns_loop = True
        self._loop_thread = threading.Thread(target=run, name="asyncz-scheduler", daemon=True)
        self._loop_thread.start()
        ready.wait()
        return loop

    def _stop_loop_thread(self) -> None:
        thread, self._loop_thread = self._loop_thread, None
        if thread is None or self.event_loop is None:
            return
        self.event_loop.call_soon_threadsafe(self.event_loop.stop)
        if thread is not threading.current_thread():
            thread.join()

    @property
    def event_loop_thread(self) -> threading.Thread | None:
        """The thread running the scheduler's own event loop, if it runs one."""
        return self._loop_thread

    def _in_loop_thread(self) -> bool:
        return self._loop_thread_id == threading.get_ident()

    def _spawn_main(self) -> None:
        if self.event_loop is None or self._main_task is not None:
            # Queued on a loop that only ran later: the scheduler was shut down meanwhile, or
            # started again and its loop task is already there.
            return
        self._loop_thread_id = threading.get_ident()
        self._wakeup_event = asyncio.Event()
        self._main_task = self.event_loop.create_task(
            self._main(self.event_loop, self._wakeup_event)
        )

    def _begin_start(self, paused: bool) -> bool:
        """Count a start; True when this one has to start the scheduler."""
        if self._start_count:
            self._start_count += 1
            return False
        # Counted at once: a start() awaited concurrently (NativeAsyncIOScheduler) only counts.
        self._start_count = 1
        self._starting = True
        self._io_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="asyncz-store-io"
        )
        return True

    def _after_start(self, paused: bool) -> None:
        self._starting = False
        if paused:
            self.state = SchedulerState.PAUSED

    def start(self, paused: bool = False) -> bool:
        """Start the scheduler; returns False for a nested call, which only counts (every
        start needs its shutdown)."""
        with self._lock:
            if not self._begin_start(paused):
                return False
            self.event_loop = self._choose_loop()
            try:
                self._start_components()
            except BaseException:
                self._abort_start()
                raise
            self._after_start(paused)
            if self._in_loop_thread():
                self._spawn_main()
            else:
                self.event_loop.call_soon_threadsafe(self._spawn_main)
        return True

    def _abort_start(self) -> None:
        self._start_count = 0
        self._starting = False
        self.state = SchedulerState.STOPPED
        self._stop_loop_thread()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=False)
            self._io_pool = None
        self.event_loop = None

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop the scheduler once every :meth:`start` has been matched by a shutdown.

        Running work finishes first with ``wait`` (up to ``timeout`` seconds), then tasks with
        the ``shutdown`` trigger run, then stores close. Called from the scheduler's own event
        loop, it cannot block that loop: running async work and async shutdown tasks then go on
        by themselves — use ``async with scheduler`` or :class:`NativeAsyncIOScheduler` to
        await them.
        """
        if not self._mark_stopped():
            return False
        loop = self.event_loop
        if loop is None or not loop.is_running() or self._in_loop_thread():
            self._shutdown_on_loop(wait, timeout)
            return True
        main = self._main_task
        self.wakeup()
        if main is not None:
            asyncio.run_coroutine_threadsafe(_wait_quietly(main), loop).result()
        self._shutdown_executors(wait, timeout)
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn):
                asyncio.run_coroutine_threadsafe(
                    run_task_async(self, task, [datetime.now(UTC)], self.logger), loop
                ).result()
            else:
                run_task_sync(self, task, [datetime.now(UTC)], self.logger)
            self._finish_shutdown_task(task, alias)
        self._shutdown_stores()
        self._cleanup()
        return True

    def _shutdown_on_loop(self, wait: bool, timeout: float | None) -> None:
        self.wakeup()
        main = self._main_task
        if self._pass_in_flight and main is not None and not main.done():
            # A store pass runs in a worker thread; its runs are off the schedule already and
            # must still start: finish the shutdown when the loop task ends, right after it.
            main.add_done_callback(lambda _: self._finish_shutdown_on_loop(wait, timeout))
            return
        self._finish_shutdown_on_loop(wait, timeout)

    def _finish_shutdown_on_loop(self, wait: bool, timeout: float | None) -> None:
        self._shutdown_executors(wait, timeout)
        loop = self.event_loop
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn) and loop is not None and loop.is_running():
                future = loop.create_task(
                    run_task_async(self, task, [datetime.now(UTC)], self.logger)
                )
                self._shutdown_runs.add(future)
                future.add_done_callback(self._shutdown_runs.discard)
            else:
                run_task_sync(self, task, [datetime.now(UTC)], self.logger)
            self._finish_shutdown_task(task, alias)
        self._shutdown_stores()
        self._cleanup()

    async def _shutdown_async(self, wait: bool, timeout: float | None) -> bool:
        """The shutdown an ``await`` can afford: nothing blocks the loop, everything is awaited."""
        loop = asyncio.get_running_loop()
        if self.event_loop is not None and loop is not self.event_loop:
            # The scheduler runs on another loop: the synchronous path may block a thread.
            return await loop.run_in_executor(None, AsyncIOScheduler.shutdown, self, wait, timeout)
        if not self._mark_stopped():
            return False
        self.wakeup()
        if self._main_task is not None:
            await _wait_quietly(self._main_task)
        await loop.run_in_executor(None, self._shutdown_executors, wait, timeout)
        for task, alias in self._shutdown_tasks():
            if is_async_callable(task.fn):
                await run_task_async(self, task, [datetime.now(UTC)], self.logger)
            else:
                await loop.run_in_executor(
                    None, run_task_sync, self, task, [datetime.now(UTC)], self.logger
                )
            self._finish_shutdown_task(task, alias)
        await loop.run_in_executor(None, self._shutdown_stores)
        self._cleanup()
        return True

    def _cleanup(self) -> None:
        self._sleep_until = None
        self._shutdown_finished()
        if self._owns_loop:
            self._stop_loop_thread()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=False)
            self._io_pool = None
        self.event_loop = None
        self._main_task = None
        self._wakeup_event = None
        self.started_at = None

    def stop(self, wait: bool = True, timeout: float | None = None) -> bool:
        """The same as :meth:`shutdown` (the name the Asyncz task pages use)."""
        return self.shutdown(wait, timeout)

    def __enter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    async def __aenter__(self) -> AsyncIOScheduler:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown_async(True, None)

    def asgi(self, app: Any = None, handle_lifespan: bool = False, wait: bool = False) -> Any:
        """Wrap an ASGI app so that the scheduler starts and stops with its lifespan.

        ``handle_lifespan=True`` answers the lifespan protocol for apps that do not speak it.
        Without ``app`` it returns a decorator.
        """
        from asyncz.core.lifespan import LifespanApp

        if app is None:
            return lambda inner: LifespanApp(inner, self, handle_lifespan, wait)
        return LifespanApp(app, self, handle_lifespan, wait)

    async def _lifespan_start(self) -> None:
        self.start()

    async def _lifespan_stop(self, wait: bool) -> None:
        await self._shutdown_async(wait, None)

    # -- waking and sleeping ---------------------------------------------------------------

    def wakeup(self, when: datetime | None = None) -> None:
        sleep_until = self._sleep_until
        if when is not None and sleep_until is not None and when >= sleep_until:
            return  # the loop wakes up by then anyway
        event, loop = self._wakeup_event, self.event_loop
        if event is None or loop is None:
            return
        if self._in_loop_thread():
            event.set()
        else:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop has closed: nothing left to wake

    async def _main(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        alarm = make_alarm(loop, ALARM_KIND, THREAD_ALARM_HORIZON_SECONDS)
        self._alarm = alarm
        try:
            await self._run_loop(loop, event, alarm)
        finally:
            if self._alarm is alarm:
                self._alarm = None
            alarm.close()

    async def _run_loop(
        self, loop: asyncio.AbstractEventLoop, event: asyncio.Event, alarm: Alarm
    ) -> None:
        moment: datetime | None = None  # what the next pass is for; None: for now
        # A shutdown, or a shutdown and a new start, replaces the event: then this loop is done.
        while self.running and self._wakeup_event is event:
            event.clear()
            self._sleep_until = None
            earliest: datetime | None = None
            if self.state == SchedulerState.RUNNING:
                try:
                    earliest = await self._run_pass(loop, moment)
                except Exception:
                    # Never let the loop die quietly while the scheduler says it runs.
                    self.logger.exception("Error in the scheduler loop; retrying later")
                    retry = timedelta(seconds=self.store_retry_interval)
                    earliest = datetime.now(UTC) + retry
            moment = None
            if not self.running:  # shut down while the pass ran
                break
            if earliest is None:
                await event.wait()
                continue
            if earliest <= datetime.now(UTC):
                # More is due at once (a store had more than one batch): let the runs just
                # submitted start before the next batch, so thousands of due tasks never pile up
                # as pending asyncio tasks (that would cost memory, and garbage-collector time).
                await asyncio.sleep(0)
                continue
            self._sleep_until = earliest
            # A pass over blocking stores takes time: start it that much before the moment.
            begin = earliest - timedelta(seconds=self._io_lead)
            sleep = (begin - datetime.now(UTC)).total_seconds()
            if sleep > 0:
                timer = _Timer(event)
                if sleep > MAX_SLEEP_SECONDS:
                    # Far off: the loop's own timer, and a wall-clock check when it fires.
                    handle = loop.call_later(MAX_SLEEP_SECONDS, timer.fire)
                    try:
                        await event.wait()
                    finally:
                        handle.cancel()
                    continue
                # One wake-up, at the moment and never before it (see asyncz.core.timing).
                alarm.arm(epoch_ns(begin), timer.fire)
                try:
                    await event.wait()
                finally:
                    alarm.cancel()
                if not timer.fired:
                    continue  # a change: look at the stores again
            moment = earliest

    async def _run_pass(
        self, loop: asyncio.AbstractEventLoop, moment: datetime | None = None
    ) -> datetime | None:
        """One pass over the stores, for ``moment`` (default: now): tasks due by then are
        acquired, and their runs start no earlier than it. Returns when the loop must look
        again (None: no need)."""
        now = datetime.now(UTC)
        if moment is None or moment < now:
            moment = now
        with self._lock:
            stores = list(self._stores.values())
        blocking = any(getattr(store, "blocking", True) for store in stores)
        polls = [p for p in (getattr(s, "poll_interval", None) for s in stores) if p]
        if blocking and self._io_pool is not None:
            began = time.perf_counter()
            self._pass_in_flight = True
            try:
                submissions, earliest, more = await loop.run_in_executor(
                    self._io_pool, self.process_due, moment
                )
            finally:
                self._pass_in_flight = False
            self._learn_io_time(time.perf_counter() - began)
        else:
            began = time.perf_counter()
            submissions, earliest, more = self.process_due(moment)
            self._learn_pass_time(time.perf_counter() - began)
        # Acquired ahead of time: never start a run before it is due.
        if submissions and datetime.now(UTC) < moment:
            await self._sleep_until_moment(loop, moment)
        # Also after a shutdown that came during the pass: every shutdown path lets a pass in
        # flight finish before it closes the executors, since these runs are already taken
        # off the stores' schedules.
        for task, alias, run_times, coalesced in submissions:
            self.submit(task, alias, run_times, coalesced)
        if more:
            return datetime.now(UTC)
        if polls:
            # Other processes may change these stores without telling us.
            poll_at = datetime.now(UTC) + timedelta(seconds=min(polls))
            earliest = poll_at if earliest is None else min(earliest, poll_at)
        return earliest

    async def _sleep_until_moment(self, loop: asyncio.AbstractEventLoop, moment: datetime) -> None:
        """Sleep precisely until ``moment``; a change does not interrupt this sleep."""
        alarm = self._alarm or LoopAlarm(loop)
        when_ns = epoch_ns(moment)
        # Every alarm checks the clock before it calls back; looking again costs nothing.
        while time.time_ns() < when_ns:
            woken = loop.create_future()
            alarm.arm(when_ns, functools.partial(_resolve, woken))
            try:
                await woken
            finally:
                alarm.cancel()

    def _learn_io_time(self, seconds: float) -> None:
        """Keep a smoothed pass duration, to start the next blocking pass that much early."""
        self._io_seconds = 0.8 * self._io_seconds + 0.2 * seconds
        self._io_lead = min(max(2 * self._io_seconds, 0.001), MAX_IO_LEAD_SECONDS)

    def _learn_pass_time(self, seconds: float) -> None:
        """The same for a pass on the loop (memory stores): a few hundred microseconds after a
        wake-up, with cold caches, that would otherwise be added to every run's lateness."""
        self._pass_seconds = 0.8 * self._pass_seconds + 0.2 * seconds
        self._io_lead = min(PASS_LEAD_FACTOR * self._pass_seconds, MAX_IO_LEAD_SECONDS)


class _Timer:
    """Wakes the loop and remembers that it was the timer, not a change, that did."""

    __slots__ = ("event", "fired")

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.event.set()


class NativeAsyncIOScheduler(AsyncIOScheduler):
    """An :class:`AsyncIOScheduler` whose ``start()`` and ``shutdown()`` are awaited.

    It always runs on the running event loop, and its shutdown waits for running work and
    async shutdown tasks without ever blocking that loop.
    """

    async def start(self, paused: bool = False) -> bool:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._begin_start(paused):
                return False
            self.event_loop = loop
            self._owns_loop = False
            self._loop_thread_id = threading.get_ident()
        try:
            # Starting stores may do I/O (creating tables): not on the loop.
            await loop.run_in_executor(None, self._start_components)
        except BaseException:
            self._abort_start()
            raise
        with self._lock:
            self._after_start(paused)
            self._spawn_main()
        return True

    async def shutdown(  # type: ignore[override]
        self, wait: bool = True, timeout: float | None = None
    ) -> bool:
        return await self._shutdown_async(wait, timeout)

    async def stop(  # type: ignore[override]
        self, wait: bool = True, timeout: float | None = None
    ) -> bool:
        return await self._shutdown_async(wait, timeout)

    def __enter__(self) -> NativeAsyncIOScheduler:
        raise TypeError("NativeAsyncIOScheduler starts asynchronously: use 'async with'")

    async def __aenter__(self) -> NativeAsyncIOScheduler:
        await self.start()
        return self

    async def _lifespan_start(self) -> None:
        await self.start()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_quietly(future: asyncio.Future[None]) -> None:
    try:
        await future
    except Exception:
        logging.getLogger("asyncz.schedulers").exception("The scheduler loop failed")
