"""The ``processpool`` executor: runs tasks in worker processes.

Our own small pool rather than :class:`concurrent.futures.ProcessPoolExecutor`, because that one
cannot do what this executor promises: when one of its workers dies, *every* pending run fails
and the pool is unusable, and it cannot stop one run that overstays its timeout. Here each
worker has its own pipe and the parent knows which run each worker holds, so:

* a worker that dies (killed, segfault, ``os._exit``) fails only the run it held, reported as
  ``TASK_ERROR`` with :class:`WorkerProcessDied`; it is replaced and later runs proceed;
* a run past its task's timeout has its worker killed and is reported with ``TimeoutError``;
* a worker that does not start within ``start_timeout``, or stops answering for
  ``answer_timeout`` while it holds a run, is killed; so is that run reported, and
  ``shutdown(wait=True)`` never waits on such a worker for longer than that;
* tasks travel by ``"module:qualname"`` reference (a ``functools.partial`` of such a callable
  too), never as pickled code; arguments and return values are pickled;
* logging in a worker is sent to the parent and handled by the parent's loggers of the same name.

Workers start lazily (none until a run needs one, at most ``max_workers``) and are reused. One
supervisor thread in the parent dispatches runs, reads results and watches worker sentinels.

How workers start (see :func:`choose_start_method`): with ``spawn`` unless the program's main
module is a script a spawned worker would import again, and the platform can fork; then they are
forked by a *fork helper*, itself forked from the scheduler's process when the executor starts.
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
import socket
import sys
import threading
import time
import traceback
import warnings
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
from asyncz.plugins.executors._worker import fork_helper_main, worker_main

__all__ = [
    "ProcessPoolExecutor",
    "WorkerProcessDied",
    "can_fork",
    "choose_start_method",
    "reimported_main",
]

_PICKLE = pickle.HIGHEST_PROTOCOL
#: A worker whose last run was shorter than this gets its next run sent before it is done
#: with the current one, so no round trip through the parent stands between two short runs.
SEND_AHEAD_BELOW_SECONDS = 0.005
#: The exit status of a spawned process that was about to start a process pool while it
#: imported the main script again (see :func:`_refuse_to_start_while_bootstrapping`).
MAIN_REIMPORTED_EXIT = 86
#: The start method name for workers forked by the fork helper.
FORK_HELPER = "fork-helper"
GUARD = 'if __name__ == "__main__":'


class WorkerProcessDied(RuntimeError):
    """The worker process running a task's run ended before the run did (or never started)."""

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


# -- choosing how workers start ----------------------------------------------------------------
#
# ``spawn`` starts a fresh interpreter that imports only what the worker needs, and copies
# nothing from the scheduler's process: the safe default. But it imports the program's main
# module again (as ``__mp_main__``), and so does ``forkserver``, whose server does the same: a
# script without ``if __name__ == "__main__":`` then runs once more in every worker, starts a
# second scheduler there, and the worker never gets to its loop (Asyncz did not have this
# problem on Linux, where its pool forks).
#
# Forking avoids the import, but a fork copies every lock in the state it has at that instant,
# and a lock held by another thread (the scheduler's loop thread, the supervisor, a logging
# handler, a database pool) stays held forever in the child: a worker can hang on its first use.
# So when the main script would be imported again, the workers are forked, but not from the
# scheduler's busy process: from a *fork helper*, forked once when the executor starts, which
# is single-threaded for the rest of its life and forks each worker in turn, with no other
# thread to hold a lock. Why then: in a script, start() comes after the task functions are
# defined and before any task runs, with at most the scheduler's idle loop thread besides the
# caller's; at construction the script would not have defined its functions yet (workers see
# the program as it was when the helper forked), and at a worker's first start the loop, the
# supervisor and the watchdog are busy. What a thread could still hold at that one fork is
# dealt with in the helper (stdout/stderr get new stream objects, asyncio's running loop is
# forgotten; Python itself resets the import and logging locks). An executor added to a
# running scheduler forks its helper then, the best moment left. We cannot tell whether a
# script has its main guard before it is imported, so guarded scripts get the helper as well
# (and start workers in milliseconds rather than re-importing the script in each).
# macOS can fork, but its system frameworks are not fork-safe (which is why CPython spawns
# there): it spawns, like every platform without fork. Python 3.14 defaults to forkserver
# on Linux; the choice here does not depend on the default.
#
# Where spawning would import the script again and it starts a pool while imported, the worker
# stops at once (exit status MAIN_REIMPORTED_EXIT, with a message naming the guard) and the
# pool fails its runs with that message instead of trying again and again.


def can_fork() -> bool:
    """Whether workers can be forked here: a POSIX ``fork``, and not macOS."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def reimported_main() -> str | None:
    """The file of the main module if ``spawn`` would import it again in each worker.

    That is a script run by path (``python app.py``, a console script) or a module run with
    ``-m`` other than a package's ``__main__``; not an interactive session or ``python -c``.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        # As multiprocessing.spawn does: a package's __main__ is never run again.
        return None if name == "__main__" or name.endswith(".__main__") else str(path)
    return str(path)


def choose_start_method(requested: Any = None) -> str:
    """How the process pool starts workers: ``requested`` (a start method name or context)
    when given, else :data:`FORK_HELPER` or ``"spawn"`` as explained above."""
    if requested is not None:
        method: str = requested if isinstance(requested, str) else requested.get_start_method()
        return method
    return FORK_HELPER if reimported_main() is not None and can_fork() else "spawn"


def _refuse_to_start_while_bootstrapping(alias: str) -> None:
    """In a process multiprocessing is still setting up (it is importing the main script again,
    for spawn or forkserver), starting a pool is the missing main guard at work: every worker
    would do the same. Say so and end this process at once, before it starts anything else;
    exiting rather than raising, because the scheduler may already run non-daemon threads that
    would keep it alive."""
    # While spawn imports the script again, it runs as ``__mp_main__``; ``__main__`` is not it.
    main = getattr(sys.modules.get("__mp_main__"), "__file__", None) or "the main script"
    where = ""
    for frame, lineno in traceback.walk_stack(None):
        if frame.f_code.co_filename == main:
            where = f" (line {lineno})"
            break
    message = (
        f"asyncz: process {os.getpid()} was started by multiprocessing and, while importing "
        f"{main} again, reached the start of the process pool {alias!r}{where}. A worker "
        f"started with spawn or forkserver imports the main script: keep the code that starts "
        f"the scheduler under `{GUARD}`. This process stops here.\n"
    )
    try:
        sys.stderr.write(message)
        sys.stderr.flush()
    finally:
        os._exit(MAIN_REIMPORTED_EXIT)


# File descriptors of the parent's side of every pool (its ends of worker pipes, sentinels,
# the fork helper's socket). A fork helper closes them all: otherwise a pipe it inherited would
# stay open, and a worker of another pool would not see its parent go away. Changed only under
# the GIL, one set operation at a time, so a fork never copies it half-changed.
_PARENT_ONLY: set[int] = set()


def _close_fd(fd: int) -> None:
    _PARENT_ONLY.discard(fd)  # before closing: the number may be reused right after
    try:
        os.close(fd)
    except OSError:
        pass


def _close_conn(conn: multiprocessing.connection.Connection) -> None:
    if not conn.closed:
        _PARENT_ONLY.discard(conn.fileno())
        conn.close()


def _cpu_ticks(pid: int | None) -> int | None:
    """The CPU time ``pid`` has used, in clock ticks (Linux /proc); None where unknown."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


class _Forked:
    """A worker forked by the fork helper, seen from the parent (the few methods of
    :class:`multiprocessing.Process` the supervisor uses)."""

    __slots__ = ("exitcode", "exited", "helper", "pid", "sentinel", "token")

    def __init__(self, helper: _ForkHelper, token: int, sentinel: int) -> None:
        self.helper = helper
        self.token = token
        #: closed by the worker's exit (it holds the only write end)
        self.sentinel = sentinel
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.exited = False

    def kill(self) -> None:
        self.helper.kill(self)

    def join(self, timeout: float | None = None) -> None:
        self.helper.wait_exit(self, timeout)

    def is_alive(self) -> bool:
        return not self.exited

    def release(self) -> None:
        if self.sentinel >= 0:
            _close_fd(self.sentinel)
            self.sentinel = -1


class _ForkHelper:
    """The parent's side of the fork helper (see "choosing how workers start" above)."""

    def __init__(self, supervisor: _Supervisor) -> None:
        # SOCK_SEQPACKET keeps messages whole, each with the descriptors sent along.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        _PARENT_ONLY.add(ours.fileno())
        self.process = multiprocessing.get_context("fork").Process(
            target=fork_helper_main,
            args=(
                theirs,
                _PARENT_ONLY,
                supervisor.initializer,
                supervisor.initargs,
                supervisor.heartbeat,
            ),
            name=f"asyncz-{supervisor.executor.alias}-fork-helper",
            daemon=True,
        )
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about any fork while other threads run; this one is
                # deliberate, and the helper runs only our code (see the comment above).
                warnings.filterwarnings(
                    "ignore",
                    message=r".*multi-threaded, use of fork\(\)",
                    category=DeprecationWarning,
                )
                self.process.start()
        except BaseException:
            _PARENT_ONLY.discard(ours.fileno())
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.alive = True
        self.send_lock = threading.Lock()
        self.tokens = itertools.count(1)
        self.children: dict[int, _Forked] = {}

    def _send(self, data: bytes, fds: Sequence[int] = ()) -> None:
        deadline = time.monotonic() + 5.0
        with self.send_lock:
            while True:
                try:
                    if fds:
                        socket.send_fds(self.sock, [data], list(fds))
                    else:
                        self.sock.send(data)
                    return
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            "the process pool's fork helper does not answer"
                        ) from None
                    multiprocessing.connection.wait([self.sock], min(left, 0.05))

    def fork(self, log_level: int) -> tuple[_Forked, multiprocessing.connection.Connection]:
        """Have the helper fork a worker; returns it and the parent's end of its pipe."""
        if not self.alive:
            raise OSError("the process pool's fork helper has ended")
        parent_conn, child_conn = multiprocessing.Pipe(duplex=True)
        sentinel, sentinel_writer = os.pipe()
        child_fds = (child_conn.fileno(), sentinel_writer)
        _PARENT_ONLY.update((parent_conn.fileno(), sentinel, *child_fds))
        token = next(self.tokens)
        child = _Forked(self, token, sentinel)
        try:
            self._send(pickle.dumps(("fork", token, _log_level()), _PICKLE), child_fds)
        except BaseException:
            child.release()
            _close_conn(parent_conn)
            raise
        finally:
            _close_conn(child_conn)
            _close_fd(sentinel_writer)
        self.children[token] = child
        return child, parent_conn

    def kill(self, child: _Forked) -> None:
        # The helper kills only a worker it has not reaped, so the pid cannot be another's.
        try:
            self._send(pickle.dumps(("kill", child.token), _PICKLE))
            return
        except (OSError, TimeoutError):
            pass
        if child.pid is not None and not child.exited:
            try:
                os.kill(child.pid, signal.SIGKILL)  # the helper is gone; the worker is orphaned
            except OSError:
                pass

    def read(self) -> bool:
        """Handle what the helper has sent; False once it has ended."""
        while self.alive:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                # Its workers live on, orphaned, until their pipes close; their exit statuses
                # are lost, and killing one falls back to its pid.
                self.alive = False
                self.children.clear()
                return False
            message = pickle.loads(data)
            child = self.children.get(message[1])
            if child is None:
                continue
            if message[0] == "started":
                child.pid = message[2]
            elif message[0] == "exited":
                child.exitcode = message[2]
                child.exited = True
                del self.children[message[1]]
        return False

    def wait_exit(self, child: _Forked, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.read() and not child.exited:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            multiprocessing.connection.wait([self.sock], left)

    def close(self) -> None:
        """End the helper (it kills any worker it still has) and wait for it, briefly."""
        self.alive = False
        _PARENT_ONLY.discard(self.sock.fileno())
        self.sock.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)


def _log_level() -> int:
    return logging.getLogger().getEffectiveLevel()


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
        "unresponsive",
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
        self.unresponsive = False


class _Worker:
    __slots__ = (
        "conn",
        "cpu",
        "done",
        "failure",
        "heard",
        "job",
        "job_id",
        "killed",
        "last_duration",
        "pid",
        "process",
        "queued",
        "ready",
        "retiring",
        "sentinel",
        "spawned_at",
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
        self.spawned_at = time.perf_counter()
        #: when the worker last showed it was alive (a heartbeat, a log record, CPU time used)
        self.heard = 0.0
        #: the run and CPU time of the last look at a silent worker
        self.cpu: tuple[_Submission, int] | None = None
        self.killed = False
        #: why the supervisor killed it before it was ready
        self.failure = ""


class _Supervisor:
    """Owns the worker processes of one start of the executor; one thread runs it."""

    def __init__(self, executor: ProcessPoolExecutor, context: Any, method: str) -> None:
        self.executor = executor
        self.context = context
        self.method = method
        self.max_workers = executor.max_workers
        options = executor.pool_kwargs
        self.initializer = options.get("initializer")
        self.initargs = tuple(options.get("initargs", ()))
        self.max_tasks_per_child: int | None = options.get("max_tasks_per_child")
        self.start_timeout = executor.start_timeout
        self.answer_timeout = executor.answer_timeout
        # Five heartbeats, and five looks at the workers, per timeout: a late heartbeat or a
        # late look cannot make a worker seem silent, or a silent one go unnoticed for long.
        self.heartbeat = None if self.answer_timeout is None else self.answer_timeout / 5
        shortest = min(self.start_timeout, self.answer_timeout or self.start_timeout)
        self.tick = min(1.0, shortest / 5)
        #: when to look at the workers next (_NEVER while none is starting or holds a run)
        self.next_check = _NEVER
        main = reimported_main()
        #: the main script each worker imports again, if it does (spawn, forkserver)
        self.reimported = main if method in ("spawn", "forkserver") else None
        #: set once workers are known to be unable to start: every run then fails with it
        self.cannot_start: WorkerProcessDied | None = None
        self.lock = threading.Lock()
        self.pending: collections.deque[_Submission] = collections.deque()
        self.workers: list[_Worker] = []
        self.stopping = False
        self.closed = False
        #: the submission being started, taken from ``pending`` and not yet on a worker: if the
        #: supervisor fails there, closing reports it instead of losing it (and its count)
        self.in_hand: _Submission | None = None
        self.job_ids = itertools.count(1)
        self.refs: dict[int, tuple[Any, tuple[str, tuple[Any, ...], dict[str, Any]]]] = {}
        # First of all, while this thread is the only one the executor has started.
        self.helper = _ForkHelper(self) if method == FORK_HELPER else None
        # Touched by the supervisor thread only: it registers and unregisters the workers.
        self.selector = selectors.DefaultSelector()
        self.wake_reader, self.wake_writer = os.pipe()
        _PARENT_ONLY.update((self.wake_reader, self.wake_writer))
        # Guards the write end: once closed, its number may belong to another file.
        self.wake_lock = threading.Lock()
        os.set_blocking(self.wake_reader, False)
        os.set_blocking(self.wake_writer, False)
        self.selector.register(self.wake_reader, selectors.EVENT_READ, None)
        if self.helper is not None:
            self.selector.register(self.helper.sock, selectors.EVENT_READ, ("helper", None))
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
            closed = self.closed
            if not closed:
                self.pending.append(job)
        if closed:
            # The supervisor has ended (it failed): nobody would ever start these runs.
            executor.not_run([(task, run_times)], "the process pool stopped")
            return
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
        self._kill(worker)

    def _kill(self, worker: _Worker) -> None:
        worker.killed = True
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
                timeout = None
                if self.next_check != _NEVER:
                    now = time.perf_counter()
                    if now >= self.next_check:
                        # Again in a tick if a worker is starting or holds a run.
                        watch = self._check_workers(now)
                        self.next_check = now + self.tick if watch else _NEVER
                    if self.next_check != _NEVER:
                        timeout = self.next_check - now
                for key, _ in self.selector.select(timeout):
                    if key.data is None:
                        self._drain_wake_pipe()
                        continue
                    kind, worker = key.data
                    if kind == "helper":
                        self._read_helper()
                        continue
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

    def _read_helper(self) -> None:
        helper = self.helper
        if helper is not None and not helper.read():
            self._forget_helper(helper)
            helper.process.join(1)
            self.executor.logger.warning(
                "The fork helper of process pool %r ended (%s); its workers carry on",
                self.executor.alias,
                _describe_exit(helper.process.exitcode),
            )

    def _check_workers(self, now: float) -> bool:
        """Kill a worker that has not started within ``start_timeout``, or that holds a run
        and has shown no sign of life (heartbeat, log record, CPU time) for ``answer_timeout``:
        such a worker would otherwise hold its run, and ``shutdown(wait=True)``, for ever."""
        watch = False
        for worker in list(self.workers):
            if worker.killed or worker.retiring:
                continue
            if not worker.ready:
                watch = True
                if now - worker.spawned_at > self.start_timeout:
                    worker.failure = f"it was not ready within {self.start_timeout:g} s"
                    self.executor.logger.error(
                        "Worker process %s of process pool %r was not ready within %g s "
                        "(start_timeout); it is killed%s",
                        worker.process.pid or "",
                        self.executor.alias,
                        self.start_timeout,
                        self._reimport_hint(),
                    )
                    self._kill(worker)
                continue
            job = worker.job
            limit = self.answer_timeout
            if job is None or limit is None or job.start == 0.0:
                continue
            watch = True
            heard = max(job.start, worker.heard)
            assert self.heartbeat is not None
            if now - heard <= 2 * self.heartbeat:
                continue
            # No heartbeat lately: a task holding the GIL in C code still uses CPU time.
            cpu = _cpu_ticks(worker.pid)
            if cpu is not None:
                seen = worker.cpu
                if seen is not None and seen[0] is job and seen[1] != cpu:
                    worker.heard = heard = now
                worker.cpu = (job, cpu)
            if now - heard <= limit:
                continue
            with self.lock:
                if worker.job is not job:
                    continue
                job.unresponsive = True
            self.executor.logger.error(
                "Worker process %s of process pool %r, running run %s of task %r, has shown "
                "no sign of life for %g s (answer_timeout); it is killed",
                worker.pid,
                self.executor.alias,
                job.run_id,
                job.task.name,
                limit,
            )
            self._kill(worker)
        return watch

    def _reimport_hint(self) -> str:
        if self.reimported is None:
            return ""
        return (
            f"; each worker imports the main script {self.reimported} again ({self.method}): "
            f"is the code that starts the scheduler under `{GUARD}`?"
        )

    def _spawn(self) -> None:
        try:
            if self.helper is not None:
                if not self.helper.alive:
                    self._new_helper()
                process, parent_conn = self.helper.fork(_log_level())
            else:
                process, parent_conn = self._start_process()
        except Exception as exc:
            error = WorkerProcessDied(
                f"a worker process could not be started: {exc!r}{self._reimport_hint()}"
            )
            self.executor.logger.error("%s", error)
            self._fail_pending(error, everything=self.stopping)
            return
        worker = _Worker(process, parent_conn)
        self.next_check = min(self.next_check, worker.spawned_at + self.tick)
        self.selector.register(parent_conn, selectors.EVENT_READ, ("conn", worker))
        self.selector.register(worker.sentinel, selectors.EVENT_READ, ("sentinel", worker))
        with self.lock:
            self.workers.append(worker)

    def _start_process(self) -> tuple[Any, multiprocessing.connection.Connection]:
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        _PARENT_ONLY.add(parent_conn.fileno())
        process = self.context.Process(
            target=worker_main,
            args=(child_conn, _log_level(), self.initializer, self.initargs, self.heartbeat),
            name=f"asyncz-{self.executor.alias}-worker",
            # Daemonic, so an interpreter exit without shutdown() does not wait on workers.
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            _close_conn(parent_conn)
            raise
        finally:
            child_conn.close()
        return process, parent_conn

    def _forget_helper(self, helper: _ForkHelper) -> None:
        # Its end may have been found closed while waiting for a worker's exit, not here.
        try:
            self.selector.unregister(helper.sock)
        except (KeyError, ValueError):
            pass

    def _new_helper(self) -> None:
        # Forked now from a process running other threads: the hazard the helper exists to
        # avoid, accepted only here, because the alternative is a pool that can no longer start
        # workers.
        assert self.helper is not None
        self._forget_helper(self.helper)
        self.helper.close()
        self.executor.logger.warning(
            "Process pool %r forks a new fork helper while other threads run", self.executor.alias
        )
        self.helper = _ForkHelper(self)
        self.selector.register(self.helper.sock, selectors.EVENT_READ, ("helper", None))

    def _dispatch(self) -> None:
        """Hand pending runs to ready idle workers, starting workers as needed."""
        if self.cannot_start is not None:
            self._fail_pending(self.cannot_start, everything=True)
            return
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
                self.in_hand = job
                self._start_run(job, worker)
                self.in_hand = None

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
        if self.next_check == _NEVER:
            self.next_check = job.start + self.tick  # a worker to watch again
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
        if kind == "done":
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
        elif kind == "log":
            worker.heard = time.perf_counter()
            record = logging.makeLogRecord(message[1])
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        elif kind == "alive":
            worker.heard = time.perf_counter()
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
        _close_conn(worker.conn)
        _release(worker.process)
        pid = worker.pid or worker.process.pid
        if job is not None:
            if job.timed_out:
                what = "its worker process was killed"
                exc: BaseException = TimeoutError(timeout_message(job.task, job.run_id, what))
            elif job.unresponsive:
                exc = WorkerProcessDied(
                    f"the worker process (pid {pid}) running run {job.run_id} of task "
                    f"{job.task.name!r} showed no sign of life (no heartbeat, no CPU time) for "
                    f"{self.answer_timeout:g} s, so it was killed; a new worker takes its place",
                    exitcode,
                )
            else:
                exc = WorkerProcessDied(
                    f"the worker process (pid {pid}) running run {job.run_id} of task "
                    f"{job.task.name!r} died with {_describe_exit(exitcode)}; a new worker "
                    "takes its place",
                    exitcode,
                )
            self._finish_run(worker, job, error=exc, formatted=f"{type(exc).__name__}: {exc}\n")
        elif not worker.ready and not worker.retiring:
            self._failed_start(worker, exitcode)

    def _failed_start(self, worker: _Worker, exitcode: int | None) -> None:
        """A worker died before it was ready: fail one waiting run, so that a worker that can
        never start (a failing initializer, an unimportable main module) cannot spin; all of
        them when shutting down, which must not wait for attempt after attempt; and all of them
        from now on when the worker stopped because it imported a script without main guard."""
        if exitcode == MAIN_REIMPORTED_EXIT and self.reimported is not None:
            self.cannot_start = WorkerProcessDied(
                f"the process pool cannot start workers: each worker imports the main script "
                f"{self.reimported} again ({self.method}), and that starts a scheduler with a "
                f"process pool again. Keep the code that starts the scheduler under "
                f"`{GUARD}`",
                exitcode,
            )
            self.executor.logger.error("%s", self.cannot_start)
            self._fail_pending(self.cannot_start, everything=True)
            return
        why = worker.failure or f"it ended with {_describe_exit(exitcode)} before it was ready"
        error = WorkerProcessDied(
            f"a worker process could not start: {why}; check the pool's initializer"
            + self._reimport_hint(),
            exitcode,
        )
        self.executor.logger.warning("%s", error)
        self._fail_pending(error, everything=self.stopping)

    def _fail_pending(self, error: BaseException, everything: bool) -> None:
        """Report the next waiting run (or every one) as failed with ``error``, unstarted."""
        formatted = f"{type(error).__name__}: {error}\n"
        while True:
            with self.lock:
                if not self.pending:
                    return
                job = self.pending.popleft()
            job.run_id = new_run_id()
            job.started_at = None
            job.reporter.failed(
                job.run_times[job.index], job.run_id, None, time.perf_counter(), error, formatted
            )
            self._advance(job)
            if not everything:
                return

    def _close(self) -> None:
        with self.lock:
            self.closed = True
            workers, self.workers = list(self.workers), []
            leftover = list(self.pending)
            self.pending.clear()
            in_hand, self.in_hand = self.in_hand, None
            if in_hand is not None and all(
                w.job is not in_hand and all(q is not in_hand for _, q in w.queued) for w in workers
            ):
                leftover.append(in_hand)
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
            _close_conn(worker.conn)
            _release(worker.process)
            # Only when the supervisor itself failed: the run it was on and those sent ahead.
            while worker.job is not None:
                job = self._take_job(worker)
                if job is not None:
                    leftover.append(job)
        if self.helper is not None:
            self.helper.close()
        for job in leftover:
            self.executor.not_run(
                [(job.task, job.run_times[job.index :])], "the process pool stopped"
            )
        self.selector.close()
        _close_fd(self.wake_reader)
        with self.wake_lock:
            _close_fd(self.wake_writer)
            self.wake_writer = -1


_NEVER = float("inf")


def _release(process: Any) -> None:
    if isinstance(process, _Forked):
        process.release()


def _positive(name: str, value: Any, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        valid = "a number of seconds > 0" + (" or None" if none_ok else "")
        raise ValueError(f"{name} must be {valid}, got {value!r}")


class ProcessPoolExecutor(BasePoolExecutor):
    """Runs tasks in worker processes.

    :param max_workers: the most worker processes (default 10), started as runs need them
    :param pool_kwargs: ``mp_context`` (a start method name or a multiprocessing context,
        used as given; by default see :func:`choose_start_method`), ``initializer`` and
        ``initargs`` (run in each worker before its first task; both must pickle when workers
        are spawned), ``max_tasks_per_child`` (replace a worker after this many runs)
    :param cancel_futures: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    :param overwrite_wait: see :class:`~asyncz.executors.pool.BasePoolExecutor`
    :param start_timeout: seconds a new worker has to get ready (import what it needs, run the
        initializer); one that does not is killed and a waiting run fails with
        :class:`WorkerProcessDied` (default 60)
    :param answer_timeout: seconds a worker holding a run may show no sign of life (it sends a
        heartbeat five times as often; a task busy in C code still uses CPU time) before it is
        killed and its run fails with :class:`WorkerProcessDied` (default 60; None: never)

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
        *,
        start_timeout: float = 60.0,
        answer_timeout: float | None = 60.0,
    ) -> None:
        super().__init__(max_workers, pool_kwargs, cancel_futures, overwrite_wait)
        requested = self.pool_kwargs.get("mp_context")
        context = "spawn" if requested is None else requested
        if isinstance(context, str):
            context = multiprocessing.get_context(context)
        if not callable(getattr(context, "Process", None)):
            raise TypeError(
                f"pool_kwargs['mp_context'] must be a start method name or a multiprocessing "
                f"context, got {context!r}"
            )
        self._context = context
        self._requested_context = None if requested is None else context
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
        _positive("start_timeout", start_timeout)
        _positive("answer_timeout", answer_timeout, none_ok=True)
        self.start_timeout = float(start_timeout)
        self.answer_timeout = None if answer_timeout is None else float(answer_timeout)
        #: how workers start: ``"spawn"``, ``"forkserver"``, ``"fork"`` or ``"fork-helper"``
        #: (decided again at each start, from the main module then)
        self.start_method = choose_start_method(self._requested_context)
        self._supervisor: _Supervisor | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            _refuse_to_start_while_bootstrapping(alias)
        super().start(scheduler, alias)
        if self._supervisor is not None:
            self._supervisor.stop(cancel=False)
        self.start_method = choose_start_method(self._requested_context)
        self._supervisor = _Supervisor(self, self._context, self.start_method)

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
