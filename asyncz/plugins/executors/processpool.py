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

import asyncio
import collections
import functools
import inspect
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncz.core import events
from asyncz.core.converters import obj_to_ref, ref_to_obj
from asyncz.core.execution import (
    Alarm,
    RunReporter,
    new_run_id,
    strip_traceback,
    timeout_message,
    watchdog,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._pool import BasePoolExecutor

__all__ = ["ProcessPoolExecutor", "WorkerProcessDied"]

_PICKLE = pickle.HIGHEST_PROTOCOL


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


# -- the worker side (runs in the child process) ---------------------------------------------


class _PipeLogHandler(logging.Handler):
    """Sends each record to the parent as plain data (message formatted, no live objects)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            state = dict(record.__dict__)
            state["msg"] = record.getMessage()
            state["args"] = None
            if record.exc_info:
                state["exc_text"] = record.exc_text or logging.Formatter().formatException(
                    record.exc_info
                )
            state["exc_info"] = None
            state.pop("message", None)
            try:
                data = pickle.dumps(("log", state), _PICKLE)
            except Exception:
                # Something passed in ``extra`` does not pickle: send the standard fields.
                plain = logging.makeLogRecord({}).__dict__
                data = pickle.dumps(
                    ("log", {k: v for k, v in state.items() if k in plain}), _PICKLE
                )
            self._send(data)
        except Exception:
            self.handleError(record)


def _error_message(job_id: int, exc: BaseException) -> bytes:
    formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    strip_traceback(exc)
    try:
        data = pickle.dumps(("done", job_id, False, exc, formatted), _PICKLE)
        pickle.loads(data)  # an exception that pickles but cannot be rebuilt would fail later
        return data
    except Exception:
        stand_in = RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        return pickle.dumps(("done", job_id, False, stand_in, formatted), _PICKLE)


def _worker_main(
    conn: multiprocessing.connection.Connection,
    log_level: int,
    initializer: Callable[..., Any] | None,
    initargs: Sequence[Any],
) -> None:
    """A worker's life: announce readiness, then run one job per message until told to stop."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()

    def send(data: bytes) -> None:
        with send_lock:  # tasks may log from their own threads
            conn.send_bytes(data)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_PipeLogHandler(send))
    root.setLevel(log_level)
    if initializer is not None:
        initializer(*initargs)
    send(pickle.dumps(("ready", os.getpid()), _PICKLE))
    functions: dict[str, Any] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            return
        job_id, ref, args, kwargs = message
        try:
            fn = functions.get(ref)
            if fn is None:
                fn = functions[ref] = ref_to_obj(ref)
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except BaseException as exc:
            data = _error_message(job_id, exc)
        else:
            try:
                data = pickle.dumps(("done", job_id, True, result, None), _PICKLE)
            except Exception as exc:
                data = _error_message(
                    job_id,
                    TypeError(
                        f"the return value ({type(result).__qualname__}) cannot be sent back "
                        f"to the scheduler's process: {exc}"
                    ),
                )
            del result
        send(data)


async def _await(awaitable: Any) -> Any:
    return await awaitable


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
    __slots__ = ("conn", "done", "job", "job_id", "pid", "process", "ready", "retiring", "sentinel")

    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.sentinel: int = process.sentinel
        self.pid: int | None = process.pid
        self.ready = False
        self.retiring = False
        self.job: _Submission | None = None
        self.job_id = 0
        self.done = 0


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
        self.wake_reader, self.wake_writer = multiprocessing.Pipe(duplex=False)
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
            try:
                self.wake_writer.send_bytes(b"")
            except OSError:
                pass  # the supervisor has ended

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
                    workers = list(self.workers)
                by_conn = {id(w.conn): w for w in workers}
                by_sentinel = {w.sentinel: w for w in workers}
                waitables: list[Any] = [self.wake_reader]
                waitables += [w.conn for w in workers]
                waitables += [w.sentinel for w in workers]
                for ready in multiprocessing.connection.wait(waitables):
                    if ready is self.wake_reader:
                        # Drain, then clear: clearing first would let a byte written after
                        # the clear be drained here, leaving the flag set and no byte to
                        # wake us for the next submission.
                        while self.wake_reader.poll():
                            self.wake_reader.recv_bytes()
                        self.wake_sent = False
                    elif isinstance(ready, int):
                        worker = by_sentinel[ready]
                        if worker in self.workers:
                            self._receive(worker)
                            self._died(worker)
                    else:
                        worker = by_conn[id(ready)]
                        if worker in self.workers:
                            self._receive(worker)
        except Exception:
            self.executor.logger.exception("The process pool supervisor failed")
        finally:
            self._close()

    def _spawn(self) -> None:
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        level = logging.getLogger().getEffectiveLevel()
        process = self.context.Process(
            target=_worker_main,
            args=(child_conn, level, self.initializer, self.initargs),
            name=f"asyncz-{self.executor.alias}-worker",
            # Daemonic, so an interpreter exit without shutdown() does not wait on workers.
            daemon=True,
        )
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
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
                        # the workers already starting; otherwise wait for one to free up.
                        starting = sum(1 for w in self.workers if not w.ready)
                        if len(self.workers) >= self.max_workers or starting >= len(self.pending):
                            return
                        spawn = True
                job = None if spawn else self.pending.popleft()
            if job is None:
                # Outside the lock: starting a process takes a while, and send_task (on the
                # scheduler's loop) and the watchdog take that lock.
                self._spawn()
            else:
                self._start_run(job, worker)

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
        job.started_at = reporter.started_at()
        job.timed_out = False
        reporter.emit(events.TASK_STARTED, run_time, run_id=job.run_id, started_at=job.started_at)
        job.start = time.perf_counter()
        with self.lock:
            worker.job = job
            worker.job_id = job_id
        timeout = job.task.timeout
        if timeout is not None:
            job.alarm = watchdog().set(
                timeout, functools.partial(self.on_timeout, worker, job, job.run_id)
            )
        try:
            worker.conn.send_bytes(data)
        except OSError:
            pass  # the worker has died: its sentinel reports the run
        return None

    def _advance(self, job: _Submission) -> None:
        """One run of ``job`` is over: queue its next run, or finish the submission."""
        job.index += 1
        if job.index < len(job.run_times):
            with self.lock:
                self.pending.appendleft(job)  # a submission's runs stay in order
        else:
            self.executor.run_finished(job.task.id)

    def _receive(self, worker: _Worker) -> None:
        conn = worker.conn
        while True:
            try:
                if not conn.poll():
                    return
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the sentinel reports the death
            try:
                message = pickle.loads(data)
            except Exception as exc:
                job = self._take_job(worker)
                if job is not None:
                    error = TypeError(f"the run's outcome could not be read back: {exc!r}")
                    self._finish_run(job, error=error)
                continue
            kind = message[0]
            if kind == "log":
                record = logging.makeLogRecord(message[1])
                logger = logging.getLogger(record.name)
                if logger.isEnabledFor(record.levelno):
                    logger.handle(record)
            elif kind == "done":
                _, job_id, ok, value, formatted = message
                if job_id != worker.job_id:
                    continue
                job = self._take_job(worker)
                worker.done += 1
                if self.max_tasks_per_child and worker.done >= self.max_tasks_per_child:
                    self._retire(worker)
                if job is not None:
                    if ok:
                        self._finish_run(job, value=value)
                    else:
                        formatted = f"{formatted}(raised in worker process {worker.pid})\n"
                        self._finish_run(job, error=value, formatted=formatted)
            elif kind == "ready":
                worker.ready = True
                worker.pid = message[1]

    def _take_job(self, worker: _Worker) -> _Submission | None:
        with self.lock:
            job, worker.job, worker.job_id = worker.job, None, 0
        if job is not None and job.alarm is not None:
            job.alarm.cancel()
            job.alarm = None
        return job

    def _finish_run(
        self,
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
            self._finish_run(job, error=exc, formatted=f"{type(exc).__name__}: {exc}\n")
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
        self._finish_run(job, error=error, formatted=f"WorkerProcessDied: {error}\n")

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
            job = self._take_job(worker)
            if job is not None:  # only when the supervisor itself failed
                leftover.append(job)
        for job in leftover:
            self.executor.not_run(
                [(job.task, job.run_times[job.index :])], "the process pool stopped"
            )
        self.wake_reader.close()
        self.wake_writer.close()


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
