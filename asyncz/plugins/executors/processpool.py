"""The ``processpool`` executor: runs tasks in worker processes started with ``spawn``.

Our own small pool rather than :class:`concurrent.futures.ProcessPoolExecutor`, because that one
cannot do what this executor promises: when one of its workers dies, *every* pending run fails
and the pool is unusable, and it cannot stop one run that overstays its timeout. Here each
worker has its own pipe and the parent knows which run each worker holds, so:

* a worker that dies (killed, segfault, ``os._exit``) fails only the run it held, reported as
  ``TASK_ERROR`` with :class:`WorkerProcessDied`; it is replaced and later runs proceed;
* a run past its task's timeout has its worker killed and is reported with ``TimeoutError``;
* tasks travel by ``"module:qualname"`` reference (a ``functools.partial`` of such a callable
  too), never as pickled code; arguments and return values are pickled;
* logging in a worker is sent to the parent and handled by the parent's loggers of the same name.

Workers start lazily (none until a run needs one, at most ``max_workers``) and are reused. One
supervisor thread in the parent dispatches runs, reads results and watches worker sentinels.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import selectors
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncz.core import events
from asyncz.core.converters import obj_to_ref
from asyncz.core.execution import (
    Alarm,
    RunReporter,
    new_run_id,
    timeout_message,
    watchdog,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._pool import BasePoolExecutor
from asyncz.plugins.executors._worker import worker_main

__all__ = ["ProcessPoolExecutor", "WorkerProcessDied"]

_PICKLE = pickle.HIGHEST_PROTOCOL
#: A worker whose last run was shorter than this gets its next run sent before it is done
#: with the current one, so no round trip through the parent stands between two short runs.
SEND_AHEAD_BELOW_SECONDS = 0.005


class WorkerProcessDied(RuntimeError):
    """The worker process running a task's run ended before the run did."""

    def __init__(self, message: str, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.exitcode))


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "an unknown exit status"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


# -- the parent side -------------------------------------------------------------------------


def _reference(fn: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The reference a worker imports ``fn`` by, plus arguments a partial binds."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        args = fn.args + args
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    return obj_to_ref(fn), args, kwargs


class _Submission:
    """One ``send_task`` call: its run times, and the run in progress."""

    __slots__ = (
        "alarm",
        "args",
        "error",
        "index",
        "kwargs",
        "ref",
        "reporter",
        "run_id",
        "run_times",
        "start",
        "started_at",
        "task",
        "timed_out",
    )

    def __init__(self, task: Task, run_times: Sequence[datetime], reporter: RunReporter) -> None:
        self.task = task
        self.run_times = run_times
        self.reporter = reporter
        self.index = 0
        self.ref = ""
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.run_id = ""
        self.started_at: datetime | None = None
        self.start = 0.0
        self.alarm: Alarm | None = None
        self.timed_out = False


class _Worker:
    __slots__ = (
        "conn",
        "done",
        "job",
        "job_id",
        "last_duration",
        "pid",
        "process",
        "queued",
        "ready",
        "retiring",
        "sentinel",
    )

    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.sentinel: int = process.sentinel
        self.pid: int | None = process.pid
        self.ready = False
        self.retiring = False
        #: the run the worker is on, and its job id
        self.job: _Submission | None = None
        self.job_id = 0
        #: runs sent ahead, which the worker starts when the current one is done
        self.queued: collections.deque[tuple[int, _Submission]] = collections.deque()
        self.done = 0
        #: seconds the last finished run took, as the parent saw it
        self.last_duration = float("inf")


class _Supervisor:
    """Owns the worker processes of one start of the executor; one thread runs it."""

    def __init__(self, executor: ProcessPoolExecutor, context: Any) -> None:
        self.executor = executor
        self.context = context
        self.max_workers = executor.max_workers
        options = executor.pool_kwargs
        self.initializer = options.get("initializer")
        self.initargs = tuple(options.get("initargs", ()))
        self.max_tasks_per_child: int | None = options.get("max_tasks_per_child")
        self.lock = threading.Lock()
        self.pending: collections.deque[_Submission] = collections.deque()
        self.workers: list[_Worker] = []
        self.stopping = False
        self.job_ids = itertools.count(1)
        self.refs: dict[int, tuple[Any, tuple[str, tuple[Any, ...], dict[str, Any]]]] = {}
        # Touched by the supervisor thread only: it registers and unregisters the workers.
        self.selector = selectors.DefaultSelector()
        self.wake_reader, self.wake_writer = os.pipe()
        # Guards the write end: once closed, its number may belong to another file.
        self.wake_lock = threading.Lock()
        os.set_blocking(self.wake_reader, False)
        os.set_blocking(self.wake_writer, False)
        self.selector.register(self.wake_reader, selectors.EVENT_READ, None)
        self.wake_sent = False
        self.thread = threading.Thread(
            target=self._main, name=f"asyncz-{executor.alias}-supervisor", daemon=True
        )
        self.thread.start()

    # -- called from other threads -----------------------------------------------------------

    def submit(self, task: Task, run_times: Sequence[datetime]) -> None:
        executor = self.executor
        job = _Submission(task, run_times, RunReporter(executor.scheduler, task, executor.logger))
        try:
            job.ref, job.args, job.kwargs = self._reference(task.fn)
            job.args += task.args
            job.kwargs = {**job.kwargs, **task.kwargs}
        except Exception as exc:
            # Reported by the supervisor, as the run's outcome, after TASK_SUBMITTED.
            job.error = exc
        with self.lock:
            self.pending.append(job)
        self.wake()

    def _reference(self, fn: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        cached = self.refs.get(id(fn))
        if cached is not None and cached[0] is fn:
            return cached[1]
        found = _reference(fn)
        if len(self.refs) > 1024:
            self.refs.clear()
        self.refs[id(fn)] = (fn, found)
        return found

    def wake(self) -> None:
        # One byte is enough to wake the supervisor; skip the write while one is unread.
        if not self.wake_sent:
            self.wake_sent = True
            with self.wake_lock:
                if self.wake_writer < 0:
                    return  # the supervisor has ended
                try:
                    os.write(self.wake_writer, b"!")
                except OSError:
                    pass  # the pipe is full: the supervisor wakes anyway

    def stop(self, cancel: bool) -> list[_Submission]:
        """Finish once running work is done; with ``cancel``, return the runs not started."""
        with self.lock:
            self.stopping = True
            dropped = list(self.pending) if cancel else []
            if cancel:
                self.pending.clear()
        self.wake()
        return dropped

    def on_timeout(self, worker: _Worker, job: _Submission, run_id: str) -> None:
        """The watchdog's call: the run is over its time, so its worker is killed."""
        with self.lock:
            if worker.job is not job or job.run_id != run_id:
                return  # finished meanwhile
            job.timed_out = True
        try:
            worker.process.kill()
        except Exception:
            self.executor.logger.exception("Could not kill worker process %s", worker.pid)

    # -- the supervisor thread ---------------------------------------------------------------

    def _main(self) -> None:
        try:
            while True:
                self._dispatch()
                with self.lock:
                    if self.stopping and not self.pending and not any(w.job for w in self.workers):
                        break
                for key, _ in self.selector.select():
                    if key.data is None:
                        self._drain_wake_pipe()
                        continue
                    kind, worker = key.data
                    if worker not in self.workers:
                        continue  # gone earlier in this round
                    if kind == "conn":
                        self._receive(worker)
                    else:
                        # Read what the worker sent before it died: a finished run is not lost.
                        # Polled: a process the task started may hold the pipe open.
                        conn = worker.conn
                        while not conn.closed and conn.poll() and self._receive(worker):
                            pass
                        self._died(worker)
        except Exception:
            self.executor.logger.exception("The process pool supervisor failed")
        finally:
            self._close()

    def _drain_wake_pipe(self) -> None:
        # Clear the flag after draining: clearing first would let a byte written after the
        # clear be drained here, leaving the flag set and no byte to wake us for the next one.
        try:
            while os.read(self.wake_reader, 4096):
                pass
        except BlockingIOError:
            pass
        self.wake_sent = False

    def _spawn(self) -> None:
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        level = logging.getLogger().getEffectiveLevel()
        process = self.context.Process(
            target=worker_main,
            args=(child_conn, level, self.initializer, self.initargs),
            name=f"asyncz-{self.executor.alias}-worker",
            # Daemonic, so an interpreter exit without shutdown() does not wait on workers.
            daemon=True,
        )
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self.selector.register(parent_conn, selectors.EVENT_READ, ("conn", worker))
        self.selector.register(worker.sentinel, selectors.EVENT_READ, ("sentinel", worker))
        with self.lock:
            self.workers.append(worker)

    def _dispatch(self) -> None:
        """Hand pending runs to ready idle workers, starting workers as needed."""
        while True:
            spawn = False
            with self.lock:
                if not self.pending:
                    return
                worker = None
                if self.pending[0].error is None:  # a run that cannot start needs no worker
                    worker = next(
                        (w for w in self.workers if w.ready and w.job is None and not w.retiring),
                        None,
                    )
                    if worker is None:
                        # Start a worker if the pool has room and the runs waiting outnumber
                        # the workers already starting; otherwise queue the run behind a
                        # short one, or wait for a worker to free up.
                        starting = sum(1 for w in self.workers if not w.ready)
                        if len(self.workers) < self.max_workers and starting < len(self.pending):
                            spawn = True
                        else:
                            worker = self._send_ahead_to(self.pending[0])
                            if worker is None:
                                return
                job = None if spawn else self.pending.popleft()
            if job is None:
                # Outside the lock: starting a process takes a while, and send_task (on the
                # scheduler's loop) and the watchdog take that lock.
                self._spawn()
            else:
                self._start_run(job, worker)

    def _send_ahead_to(self, job: _Submission) -> _Worker | None:
        """A busy worker that can take ``job`` next, so it need not wait for a round trip.

        Only behind a run of a worker whose last run was short, and never with a timeout on
        either run: a run sent ahead cannot move to a worker that frees up sooner, and its
        timeout must count from when it starts. (Call with the lock held.)
        """
        if job.task.timeout is not None:
            return None
        per_child = self.max_tasks_per_child
        for worker in self.workers:
            current = worker.job
            if (
                current is not None
                and not worker.queued
                and not worker.retiring
                and worker.last_duration < SEND_AHEAD_BELOW_SECONDS
                and current.task.timeout is None
                and (not per_child or worker.done + 2 <= per_child)
            ):
                return worker
        return None

    def _start_run(self, job: _Submission, worker: _Worker | None) -> None:
        reporter = job.reporter
        run_time = job.run_times[job.index]
        if job.error is not None:
            run_id = new_run_id()
            reporter.failed(run_time, run_id, None, time.perf_counter(), job.error)
            return self._advance(job)
        if reporter.missed(run_time):
            return self._advance(job)
        assert worker is not None
        job_id = next(self.job_ids)
        try:
            data = pickle.dumps((job_id, job.ref, job.args, job.kwargs), _PICKLE)
        except Exception as exc:
            error = TypeError(f"the task's arguments cannot be sent to a worker process: {exc}")
            reporter.failed(run_time, new_run_id(), None, time.perf_counter(), error)
            return self._advance(job)
        job.run_id = new_run_id()
        job.timed_out = False
        with self.lock:
            ahead = worker.job is not None
            if ahead:
                job.start = 0.0  # not started: see _finish_run
                worker.queued.append((job_id, job))
            else:
                worker.job = job
                worker.job_id = job_id
        if not ahead:
            self._began(worker, job)
        try:
            worker.conn.send_bytes(data)
        except OSError:
            pass  # the worker has died: its sentinel reports the run
        return None

    def _began(self, worker: _Worker, job: _Submission) -> None:
        """``job`` is now the run its worker is on: report the start, arm its timeout."""
        reporter = job.reporter
        job.started_at = reporter.started_at()
        reporter.emit(
            events.TASK_STARTED,
            job.run_times[job.index],
            run_id=job.run_id,
            started_at=job.started_at,
        )
        job.start = time.perf_counter()
        timeout = job.task.timeout
        if timeout is not None:
            job.alarm = watchdog().set(
                timeout, functools.partial(self.on_timeout, worker, job, job.run_id)
            )

    def _advance(self, job: _Submission) -> None:
        """One run of ``job`` is over: queue its next run, or finish the submission."""
        job.index += 1
        if job.index < len(job.run_times):
            with self.lock:
                self.pending.appendleft(job)  # a submission's runs stay in order
        else:
            self.executor.run_finished(job.task.id)

    def _receive(self, worker: _Worker) -> bool:
        """Read and handle one message from ``worker``; False if there was none to read."""
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            return False  # the sentinel reports the death
        try:
            message = pickle.loads(data)
        except Exception as exc:
            job = self._take_job(worker)
            if job is not None:
                error = TypeError(f"the run's outcome could not be read back: {exc!r}")
                self._finish_run(worker, job, error=error)
            return True
        kind = message[0]
        if kind == "log":
            record = logging.makeLogRecord(message[1])
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        elif kind == "done":
            _, job_id, ok, value, formatted = message
            if job_id != worker.job_id:
                return True
            job = self._take_job(worker)
            worker.done += 1
            if self.max_tasks_per_child and worker.done >= self.max_tasks_per_child:
                self._retire(worker)
            if job is not None:
                worker.last_duration = time.perf_counter() - job.start
                if ok:
                    self._finish_run(worker, job, value=value)
                else:
                    formatted = f"{formatted}(raised in worker process {worker.pid})\n"
                    self._finish_run(worker, job, error=value, formatted=formatted)
        elif kind == "ready":
            worker.ready = True
            worker.pid = message[1]
        return True

    def _take_job(self, worker: _Worker) -> _Submission | None:
        """Take the run ``worker`` was on; a run sent ahead becomes the one it is on."""
        with self.lock:
            job, worker.job, worker.job_id = worker.job, None, 0
            if worker.queued:
                worker.job_id, worker.job = worker.queued.popleft()
        if job is not None and job.alarm is not None:
            job.alarm.cancel()
            job.alarm = None
        return job

    def _finish_run(
        self,
        worker: _Worker,
        job: _Submission,
        *,
        value: Any = None,
        error: BaseException | None = None,
        formatted: str | None = None,
    ) -> None:
        reporter = job.reporter
        run_time = job.run_times[job.index]
        try:
            if error is None:
                reporter.executed(run_time, job.run_id, job.started_at, job.start, value)
            else:
                reporter.failed(run_time, job.run_id, job.started_at, job.start, error, formatted)
        finally:
            self._advance(job)
            following = worker.job
            if following is not None and following.start == 0.0:
                # The run sent ahead has started in the worker: report it after this one's end.
                self._began(worker, following)

    def _retire(self, worker: _Worker) -> None:
        worker.retiring = True
        try:
            worker.conn.send(None)
        except OSError:
            pass

    def _died(self, worker: _Worker) -> None:
        worker.process.join(timeout=1)
        exitcode = worker.process.exitcode
        with self.lock:
            self.workers.remove(worker)
            # Runs sent ahead never started: they go back to the front of the line, in order.
            for _, queued in reversed(worker.queued):
                queued.run_id = ""
                self.pending.appendleft(queued)
            worker.queued.clear()
        self.selector.unregister(worker.conn)
        self.selector.unregister(worker.sentinel)
        job = self._take_job(worker)
        worker.conn.close()
        if job is not None:
            if job.timed_out:
                what = "its worker process was killed"
                exc: BaseException = TimeoutError(timeout_message(job.task, job.run_id, what))
            else:
                exc = WorkerProcessDied(
                    f"the worker process (pid {worker.pid}) running run {job.run_id} of task "
                    f"{job.task.name!r} died with {_describe_exit(exitcode)}; a new worker "
                    "takes its place",
                    exitcode,
                )
            self._finish_run(worker, job, error=exc, formatted=f"{type(exc).__name__}: {exc}\n")
        elif not worker.ready and not worker.retiring and not self.stopping:
            self._failed_start(worker, exitcode)

    def _failed_start(self, worker: _Worker, exitcode: int | None) -> None:
        """A worker died before it was ready: fail one waiting run, so that a worker that can
        never start (a failing initializer, an unimportable main module) cannot spin."""
        with self.lock:
            job = self.pending.popleft() if self.pending else None
        if job is None:
            return
        error = WorkerProcessDied(
            f"a worker process could not start ({_describe_exit(exitcode)}); check the pool's "
            "initializer and that the main module is importable (guard it with "
            "`if __name__ == '__main__':`)",
            exitcode,
        )
        job.run_id = new_run_id()
        job.started_at = None
        job.start = time.perf_counter()
        self._finish_run(worker, job, error=error, formatted=f"WorkerProcessDied: {error}\n")

    def _close(self) -> None:
        with self.lock:
            workers, self.workers = list(self.workers), []
            leftover = list(self.pending)
            self.pending.clear()
        for worker in workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)
            worker.conn.close()
            # Only when the supervisor itself failed: the run it was on and those sent ahead.
            while worker.job is not None:
                job = self._take_job(worker)
                if job is not None:
                    leftover.append(job)
        for job in leftover:
            self.executor.not_run(
                [(job.task, job.run_times[job.index :])], "the process pool stopped"
            )
        self.selector.close()
        os.close(self.wake_reader)
        with self.wake_lock:
            os.close(self.wake_writer)
            self.wake_writer = -1


class ProcessPoolExecutor(BasePoolExecutor):
    """Runs tasks in worker processes (``spawn`` start method by default).

    :param max_workers: the most worker processes (default 10), started as runs need them
    :param pool_kwargs: ``mp_context`` (a start method name or a multiprocessing context;
        default ``"spawn"``), ``initializer`` and ``initargs`` (run in each worker before its
        first task; both must pickle), ``max_tasks_per_child`` (replace a worker after this
        many runs)
    :param cancel_futures: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    :param overwrite_wait: see :class:`~asyncz.executors.pool.BasePoolExecutor`

    The task's callable must be importable by ``"module:qualname"`` (a module-level function,
    a classmethod or staticmethod, or a ``functools.partial`` of one); its arguments and return
    value must pickle. Otherwise the run is reported as ``TASK_ERROR`` saying so.
    """

    pool_options = frozenset({"mp_context", "initializer", "initargs", "max_tasks_per_child"})

    def __init__(
        self,
        max_workers: int = 10,
        pool_kwargs: Mapping[str, Any] | None = None,
        cancel_futures: bool = False,
        overwrite_wait: bool | None = None,
    ) -> None:
        super().__init__(max_workers, pool_kwargs, cancel_futures, overwrite_wait)
        context = self.pool_kwargs.get("mp_context", "spawn")
        if isinstance(context, str):
            context = multiprocessing.get_context(context)
        if not callable(getattr(context, "Process", None)):
            raise TypeError(
                f"pool_kwargs['mp_context'] must be a start method name or a multiprocessing "
                f"context, got {context!r}"
            )
        self._context = context
        per_child = self.pool_kwargs.get("max_tasks_per_child")
        if per_child is not None and (
            isinstance(per_child, bool) or not isinstance(per_child, int) or per_child < 1
        ):
            raise ValueError(
                f"pool_kwargs['max_tasks_per_child'] must be an integer >= 1 or None, "
                f"got {per_child!r}"
            )
        initializer = self.pool_kwargs.get("initializer")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"pool_kwargs['initializer'] must be callable, got {initializer!r}")
        self._supervisor: _Supervisor | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        if self._supervisor is not None:
            self._supervisor.stop(cancel=False)
        self._supervisor = _Supervisor(self, self._context)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        supervisor = self._supervisor
        if supervisor is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        supervisor.submit(task, run_times)

    def cancel_not_started(self) -> None:
        supervisor = self._supervisor
        if supervisor is not None:
            dropped = supervisor.stop(cancel=True)
            self.not_run(
                [(job.task, job.run_times[job.index :]) for job in dropped],
                "the executor was shut down before they started",
            )

    def close_pool(self, wait: bool) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.stop(cancel=False)
            if wait:
                supervisor.thread.join()

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for monitoring and tests)."""
        supervisor = self._supervisor
        if supervisor is None:
            return []
        with supervisor.lock:
            return [w.pid for w in supervisor.workers if w.pid is not None and w.ready]


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("processpool", ProcessPoolExecutor)
