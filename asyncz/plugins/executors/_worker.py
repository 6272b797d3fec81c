"""The child-process side of the ``processpool`` executor: the worker loop and the fork helper.

A module of its own, importing the standard library and two stdlib-only kernel modules and
nothing else, because a worker started with ``spawn`` imports it from scratch: the parent's side
pulls in asyncio, attrs and the engine, which would add ~100 ms to each worker's start (measured
on a 2-core machine: ~115 ms to a ready worker before, ~35 ms after).

The protocol, over one duplex pipe per worker, every message pickled:

* worker -> parent: ``("ready", pid)`` once; ``("log", record_state)`` for each log record;
  ``("alive",)`` every ``heartbeat`` seconds while a job runs; ``("done", job_id, ok,
  value_or_exception, formatted_traceback)`` after each job;
* parent -> worker: ``(job_id, "module:qualname", args, kwargs)`` per job, ``None`` to stop.

Jobs run one at a time, in the order they arrive; the parent may send a job before the previous
one has finished (it then starts as soon as that one is done).

The fork helper (:func:`fork_helper_main`) is a fork of the scheduler's process that forks the
workers in turn; see ``processpool`` for when it is used and why. Its protocol, over a
``SOCK_SEQPACKET`` socket pair, every message pickled:

* parent -> helper: ``("fork", token, log_level)`` carrying two file descriptors (the worker's
  end of its pipe, and the write end of its sentinel pipe); ``("kill", token)``;
* helper -> parent: ``("started", token, pid)``; ``("exited", token, exitcode)`` once the helper
  has reaped the worker (``exitcode`` as :attr:`multiprocessing.Process.exitcode` has it).
"""

from __future__ import annotations

import inspect
import io
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
from collections.abc import Callable, Collection, Sequence
from typing import Any

from asyncz.core.converters import ref_to_obj
from asyncz.core.errors import strip_traceback

__all__ = ["fork_helper_main", "worker_main"]

_PICKLE = pickle.HIGHEST_PROTOCOL
_ALIVE = pickle.dumps(("alive",), _PICKLE)


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


def _run_awaitable(awaitable: Any) -> Any:
    # Imported here: most tasks are plain functions, and asyncio is the costliest import.
    import asyncio

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


def _resolve(ref: str, forked: bool) -> Any:
    try:
        return ref_to_obj(ref)
    except LookupError as exc:
        if not (forked and ref.startswith("__main__:")):
            raise
        main = getattr(sys.modules.get("__main__"), "__file__", None) or "the main script"
        raise type(exc)(
            f"{exc}. The worker processes are forked from a copy of the program made when the "
            f"scheduler started, before {main} defined it: define the function before starting "
            "the scheduler, or in a module of its own"
        ) from None


def worker_main(
    conn: multiprocessing.connection.Connection,
    log_level: int,
    initializer: Callable[..., Any] | None,
    initargs: Sequence[Any],
    heartbeat: float | None = None,
    forked: bool = False,
) -> None:
    """A worker's life: announce readiness, then run one job per message until told to stop.

    With ``heartbeat``, a thread sends ``("alive",)`` every ``heartbeat`` seconds while a job
    runs, so that the parent can tell a long run from a worker that stopped answering.
    """
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
    # A one-item list: the heartbeat thread reads what the loop below writes, with no lock.
    busy = [False]
    if heartbeat:

        def beat(interval: float) -> None:
            while True:
                time.sleep(interval)
                if busy[0]:
                    try:
                        send(_ALIVE)
                    except OSError:
                        return  # the parent is gone

        threading.Thread(
            target=beat, args=(heartbeat,), name="asyncz-heartbeat", daemon=True
        ).start()
    send(pickle.dumps(("ready", os.getpid()), _PICKLE))
    functions: dict[str, Any] = {}
    while True:
        busy[0] = False
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            return
        busy[0] = True
        job_id, ref, args, kwargs = message
        try:
            fn = functions.get(ref)
            if fn is None:
                fn = functions[ref] = _resolve(ref, forked)
            result = fn(*args, **kwargs)
            if result is not None and inspect.isawaitable(result):
                result = _run_awaitable(result)
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


# -- the fork helper ---------------------------------------------------------------------------


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _forget_the_parents_state() -> None:
    """What a fork copies from the scheduler's process that must not act here."""
    # Python-level signal handlers are the parent's (a web server's SIGTERM handler, asyncio's
    # wake-up fd): a signal meant for this process gets the default action instead.
    for sig in signal.valid_signals():
        try:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, RuntimeError, ValueError):
            pass
    signal.set_wakeup_fd(-1)
    # Another thread of the parent may have been writing to stdout or stderr at the fork: the
    # buffer's lock would then stay held here, and the first print() hang. The same
    # descriptors get new stream objects (reading the old ones' settings takes no lock).
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or stream is not getattr(sys, f"__{name}__"):
            continue  # replaced by the program: its business
        try:
            unbuffered = isinstance(stream.buffer, io.RawIOBase)  # python -u
            # Not closed: it lives as long as the process.
            binary = open(stream.fileno(), "wb", buffering=0 if unbuffered else -1, closefd=False)  # noqa: SIM115
            fresh = io.TextIOWrapper(
                binary,
                encoding=stream.encoding,
                errors=stream.errors,
                line_buffering=stream.line_buffering,
                write_through=stream.write_through,
            )
        except (AttributeError, OSError, ValueError):
            continue
        setattr(sys, name, fresh)
        setattr(sys, f"__{name}__", fresh)
    # The thread that forked may be running the scheduler's event loop: asyncio.run() in a
    # worker would then refuse to start (Python 3.12 resets this itself after a fork).
    events = sys.modules.get("asyncio.events")
    if events is not None:
        try:
            events._set_running_loop(None)
            policy = events._event_loop_policy
            local = getattr(policy, "_local", None)
            if local is not None:
                policy._local = type(local)()
        except Exception:
            pass


def _fork_worker(
    closing: Sequence[Any],
    conn_fd: int,
    log_level: int,
    initializer: Callable[..., Any] | None,
    initargs: Sequence[Any],
    heartbeat: float | None,
) -> int:
    _flush_std_streams()  # or the child would write out the helper's buffered output again
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for item in closing:
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        multiprocessing.current_process().name = "asyncz-worker"
        conn = multiprocessing.connection.Connection(conn_fd)
        worker_main(conn, log_level, initializer, initargs, heartbeat, forked=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        # Never return into the helper's loop, nor run the copied program's exit handlers.
        _flush_std_streams()
        os._exit(code)


def fork_helper_main(
    sock: socket.socket,
    parent_only_fds: Collection[int],
    initializer: Callable[..., Any] | None,
    initargs: Sequence[Any],
    heartbeat: float | None,
) -> None:
    """The fork helper's life: fork a worker per request, kill on request, report exits.

    Single-threaded, so each fork copies no lock that another thread holds. It ends when the
    parent closes its end of ``sock`` (or on SIGTERM), killing the workers it still has.
    """
    for fd in list(parent_only_fds):
        try:
            os.close(fd)  # the parent's pipes to other workers: their EOF must not wait on us
        except OSError:
            pass
    _forget_the_parents_state()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_reader, wake_writer = os.pipe()
    os.set_blocking(wake_reader, False)
    os.set_blocking(wake_writer, False)
    signal.set_wakeup_fd(wake_writer)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    sock.setblocking(True)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_reader, selectors.EVENT_READ)
    closing = (selector, sock, wake_reader, wake_writer)
    children: dict[int, int] = {}  # pid -> token

    def tell(message: tuple[Any, ...]) -> None:
        try:
            sock.send(pickle.dumps(message, _PICKLE))
        except OSError:
            pass  # the parent is gone; the loop sees EOF next

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            token = children.pop(pid, None)
            if token is not None:
                tell(("exited", token, os.waitstatus_to_exitcode(status)))

    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is not sock:
                    try:
                        while os.read(wake_reader, 512):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                data, fds, _, _ = socket.recv_fds(sock, 65536, 2)
                if not data:
                    for fd in fds:
                        os.close(fd)
                    return  # the parent closed its end
                message = pickle.loads(data)
                if message[0] == "fork" and len(fds) == 2:
                    _, token, log_level = message
                    conn_fd, sentinel_writer = fds
                    try:
                        pid = _fork_worker(
                            closing, conn_fd, log_level, initializer, initargs, heartbeat
                        )
                    except OSError:
                        pid = 0  # no fork: the parent sees the sentinel close without a start
                    finally:
                        os.close(conn_fd)
                        os.close(sentinel_writer)
                    if pid:
                        children[pid] = token
                        tell(("started", token, pid))
                    else:
                        tell(("exited", token, None))
                elif message[0] == "kill":
                    for pid, token in children.items():
                        if token == message[1]:
                            os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still its
                else:
                    for fd in fds:
                        os.close(fd)
            reap()
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
