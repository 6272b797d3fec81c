"""The threads behind the executors: the watchdog that enforces timeouts, and worker threads.

Here: :class:`Watchdog` (one daemon thread calling callbacks at deadlines) with its
:class:`Alarm` and the process-wide instance (:func:`watchdog`), :class:`WorkerThreads` (the
lean thread pool the thread executors run tasks in) and :class:`Once` (a one-shot callback).
They know nothing of tasks, events or schedulers.

Not here: running tasks and reporting their runs, and ``BaseExecutor``: those are in
:mod:`asyncz.core.execution` (which re-exports these names).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["Alarm", "Once", "Watchdog", "WorkerThreads", "watchdog"]


# -- the watchdog: one thread that calls back at deadlines ------------------------------------

_PENDING: Final = 0
_CANCELLED: Final = 1
_FIRED: Final = 2


class Alarm:
    """A callback the :class:`Watchdog` calls at a deadline unless it is cancelled first."""

    __slots__ = ("_watchdog", "callback", "state")

    def __init__(self, watchdog: Watchdog, callback: Callable[[], Any]) -> None:
        self._watchdog = watchdog
        self.callback = callback
        self.state = _PENDING

    def cancel(self) -> bool:
        """Stop the alarm. False when it has gone off already (its callback runs or ran):
        the two are decided under one lock, so exactly one side reports the run."""
        return self._watchdog._cancel(self)


class Watchdog:
    """Calls callbacks at deadlines from one daemon thread, started on first use.

    Cheap for the common case of runs that finish in time: setting an alarm is a heap push,
    cancelling is a flag; cancelled alarms are dropped lazily (and all at once when they make up
    most of the heap, so long timeouts on frequent tasks do not grow it without bound).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Alarm]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def set(self, delay: float, callback: Callable[[], Any]) -> Alarm:
        """Call ``callback()`` in ``delay`` seconds (from the watchdog's thread)."""
        alarm = Alarm(self, callback)
        deadline = time.monotonic() + delay
        with self._cond:
            thread = self._thread
            # After a fork the thread object is there but the thread is not.
            if thread is None or self._pid != os.getpid() or not thread.is_alive():
                self._heap = [entry for entry in self._heap if entry[2].state == _PENDING]
                self._cancelled = 0
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="asyncz-watchdog", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._seq), alarm))
            if self._heap[0][2] is alarm:
                self._cond.notify()
        return alarm

    def _cancel(self, alarm: Alarm) -> bool:
        with self._cond:
            if alarm.state != _PENDING:
                return False
            alarm.state = _CANCELLED
            alarm.callback = _nothing  # let go of the run at once, not at the deadline
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].state == _PENDING]
                heapq.heapify(self._heap)
                self._cancelled = 0
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    heap = self._heap
                    while heap and heap[0][2].state != _PENDING:
                        heapq.heappop(heap)
                        self._cancelled = max(0, self._cancelled - 1)
                    if not heap:
                        self._cond.wait()
                        continue
                    delay = heap[0][0] - time.monotonic()
                    if delay <= 0:
                        alarm = heapq.heappop(heap)[2]
                        alarm.state = _FIRED
                        break
                    self._cond.wait(delay)
            try:
                alarm.callback()
            except Exception:
                logging.getLogger("asyncz.executors").exception("A timeout handler failed")
            alarm.callback = _nothing


def _nothing() -> None:
    return None


_watchdog = Watchdog()


def watchdog() -> Watchdog:
    """The process-wide watchdog that enforces run timeouts."""
    return _watchdog


class Once:
    """Calls ``fn`` the first time it is called, never again, from whichever thread is first."""

    __slots__ = ("_fn", "_lock")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self._lock.acquire(blocking=False):  # never released: a one-shot flag
            self._fn()


# -- worker threads --------------------------------------------------------------------------


class WorkerThreads:
    """A small pool of daemon threads that call ``run(item)`` for each submitted item.

    Leaner than :class:`concurrent.futures.ThreadPoolExecutor` for this one job (no future per
    run, one lock round per hand-over), which matters when thousands of runs are due at once.
    Threads start as work needs them, up to ``max_workers``. They are daemonic: a run abandoned
    at its timeout must not keep the interpreter from exiting; the executor's
    ``shutdown(wait=True)`` is what waits for runs that still count.

    :param run: called with each item in a worker thread; it must not raise
    :param initializer: called (with ``initargs``) in each new thread before its first item
    """

    _local = threading.local()

    def __init__(
        self,
        run: Callable[[Any], None],
        max_workers: int,
        name_prefix: str,
        initializer: Callable[..., Any] | None = None,
        initargs: Sequence[Any] = (),
    ) -> None:
        self._run = run
        self._max_workers = max_workers
        self._name_prefix = name_prefix
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._cond = threading.Condition(threading.Lock())
        self._work: collections.deque[Any] = collections.deque()
        self._threads: list[threading.Thread] = []
        # Threads whose run was given up at its timeout: they leave when it returns, and do
        # not count against max_workers meanwhile.
        self._abandoned: set[threading.Thread] = set()
        self._names = itertools.count()
        self._idle = 0
        self._closed = False

    @classmethod
    def current(cls) -> WorkerThreads | None:
        """The pool the calling thread works for, if it is one of a pool's threads."""
        pool: WorkerThreads | None = getattr(cls._local, "pool", None)
        return pool

    def submit(self, item: Any) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker threads have been shut down")
            self._work.append(item)
            if self._idle:
                self._cond.notify()
            else:
                self._grow()

    def abandon(self, thread: threading.Thread) -> None:
        """The run in ``thread`` was given up: another thread may take its place now, and
        ``thread`` leaves the pool when that run returns."""
        with self._cond:
            if thread not in self._threads or thread in self._abandoned:
                return
            self._abandoned.add(thread)
            if self._work and not self._idle and not self._closed:
                self._grow()

    def _grow(self) -> None:
        """Start a thread if the pool has room (call with the lock held)."""
        if len(self._threads) - len(self._abandoned) < self._max_workers:
            thread = threading.Thread(
                target=self._worker,
                name=f"{self._name_prefix}_{next(self._names)}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def take_pending(self) -> list[Any]:
        """Remove and return the items no thread has picked up yet."""
        with self._cond:
            taken = list(self._work)
            self._work.clear()
        return taken

    def close(self) -> None:
        """Stop the threads once the pending items are done (no new items accepted)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def threads(self) -> int:
        return len(self._threads)

    def _worker(self) -> None:
        self._local.pool = self
        me = threading.current_thread()
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except BaseException:
                logging.getLogger("asyncz.executors").exception("A thread initializer failed")
        cond, work, run = self._cond, self._work, self._run
        while True:
            with cond:
                while not work:
                    if self._closed:
                        return
                    self._idle += 1
                    cond.wait()
                    self._idle -= 1
                item = work.popleft()
            try:
                run(item)
            except BaseException:
                logging.getLogger("asyncz.executors").exception("A run ended abnormally")
            del item
            if me in self._abandoned:
                with cond:
                    self._abandoned.discard(me)
                    self._threads.remove(me)
                return
