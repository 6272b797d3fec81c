"""The child-process side of the ``processpool`` executor.

A module of its own, importing the standard library and two stdlib-only kernel modules and
nothing else, because every worker is started with ``spawn`` and imports it from scratch: the
parent's side pulls in asyncio, attrs and the engine, which would add ~100 ms to each worker's
start (measured on a 2-core machine: ~115 ms to a ready worker before, ~35 ms after).

The protocol, over one duplex pipe per worker, every message pickled:

* worker -> parent: ``("ready", pid)`` once; ``("log", record_state)`` for each log record;
  ``("done", job_id, ok, value_or_exception, formatted_traceback)`` after each job;
* parent -> worker: ``(job_id, "module:qualname", args, kwargs)`` per job, ``None`` to stop.

Jobs run one at a time, in the order they arrive; the parent may send a job before the previous
one has finished (it then starts as soon as that one is done).
"""

from __future__ import annotations

import inspect
import logging
import multiprocessing.connection
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from asyncz.core.converters import ref_to_obj
from asyncz.core.errors import strip_traceback

__all__ = ["worker_main"]

_PICKLE = pickle.HIGHEST_PROTOCOL


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


def worker_main(
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
