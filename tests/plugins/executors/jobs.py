"""Task callables for the executor tests, at module level so a process-pool worker can import
them by reference (``tests.plugins.executors.jobs:<name>``)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from typing import Any


def add(a: int, b: int) -> int:
    return a + b


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def where() -> tuple[int, str, bool]:
    """The process, thread and whether an event loop runs here."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    return os.getpid(), threading.current_thread().name, in_loop


async def async_where() -> tuple[int, str, bool]:
    await asyncio.sleep(0)
    return os.getpid(), threading.current_thread().name, True


class Marker:
    """Something a failing run's frame holds, to check that frames are let go."""


def fails(tag: str = "boom") -> None:
    marker = Marker()  # noqa: F841 - kept alive only by this frame
    raise ValueError(tag)


async def async_fails(tag: str = "boom") -> None:
    marker = Marker()  # noqa: F841
    await asyncio.sleep(0)
    raise ValueError(tag)


def sleeps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


async def async_sleeps(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def logs(name: str, message: str) -> str:
    logging.getLogger(name).warning("%s from pid %d", message, os.getpid())
    return message


def exits(code: int) -> None:
    os._exit(code)


def kills_itself() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def sleeps_then_kills_itself(seconds: float) -> None:
    time.sleep(seconds)
    kills_itself()


def segfaults() -> None:
    import faulthandler

    faulthandler.disable()  # no crash dump on the test output
    faulthandler._sigsegv()  # type: ignore[attr-defined]


def pid() -> int:
    return os.getpid()


def returns_unpicklable() -> Any:
    return threading.Lock()


class AsyncCallable:
    """An object whose ``__call__`` is a coroutine function."""

    async def __call__(self, value: int) -> int:
        await asyncio.sleep(0)
        return value * 10


def hides_coroutine(fn: Any) -> Any:
    """A decorator without functools.wraps: the result looks like a plain function."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def keeps_coroutine(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@keeps_coroutine
async def decorated_async(value: int) -> int:
    await asyncio.sleep(0)
    return value + 100


hidden_async = hides_coroutine(async_add)
