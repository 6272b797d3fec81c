"""Precise wake-ups for the asyncio loop: sleeping until a due moment without spinning.

An event loop's own timer fires only as precisely as its selector sleeps: ``epoll`` takes whole
milliseconds, rounded up, and on a busy or virtual machine the wake-up often comes a millisecond
later still. Waking early and spinning until the moment is punctual but burns a core. An
:class:`Alarm` instead wakes the loop once, at a wall-clock moment given in nanoseconds since the
epoch (``time.time_ns()``'s clock, which ``datetime.now()`` reads too):

- :class:`TimerFdAlarm` (Linux): a timer file descriptor on ``CLOCK_REALTIME``, armed for the
  absolute moment and watched by the loop's selector (``add_reader``). The kernel expires it at
  the moment, never before, without the timer slack a sleeping thread gets; no thread, one
  wake-up per moment, and a wall-clock step is followed by the kernel.
- :class:`ThreadAlarm` (other platforms, or a loop without ``add_reader``): a daemon thread waits
  on a condition with a timeout, a high-resolution wait, and hands the moment to the loop with
  ``call_soon_threadsafe``. The thread exists only while a moment is due within ``horizon``
  seconds (and for ``horizon`` seconds after the last one, in case another follows); a farther
  moment is first slept on with the loop's own timer.
- :class:`LoopAlarm`: the loop's own timer (``call_later``), the fallback: late by up to a
  millisecond or two, never early.

Every alarm re-reads the clock before calling back, so nothing fires before its moment, even
when a monotonic sleep and the wall clock disagree. Alarms are armed, cancelled and closed from
the loop's thread only, and call back in it. :func:`make_alarm` picks the best one the platform
and the loop support.

Not here: what is due and when (:mod:`asyncz.core.engine`), the loop that sleeps
(:mod:`asyncz.core.asyncio_scheduler`).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

__all__ = [
    "Alarm",
    "LoopAlarm",
    "ThreadAlarm",
    "TimerFdAlarm",
    "epoch_ns",
    "make_alarm",
    "timerfd_available",
]

NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

Clock = Callable[[], int]


def epoch_ns(moment: datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact: no float rounding)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


class Alarm:
    """One pending moment at a time; armed, cancelled and closed from the loop's thread.

    ``arm(when_ns, callback)`` replaces any earlier arming; ``callback()`` runs in the loop's
    thread once ``clock_ns() >= when_ns``. ``cancel()`` makes a pending callback never run.
    """

    kind: ClassVar[str] = "abstract"

    def arm(self, when_ns: int, callback: Callable[[], object]) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.cancel()


class LoopAlarm(Alarm):
    """The loop's own timer: never early (the clock is checked again), late by up to ~2 ms."""

    kind: ClassVar[str] = "loop"

    def __init__(self, loop: asyncio.AbstractEventLoop, clock_ns: Clock = time.time_ns) -> None:
        self._loop = loop
        self._clock_ns = clock_ns
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0
        self._callback: Callable[[], object] | None = None

    def arm(self, when_ns: int, callback: Callable[[], object]) -> None:
        self.cancel()
        self._when = when_ns
        self._callback = callback
        self._schedule()

    def _schedule(self) -> None:
        delay = (self._when - self._clock_ns()) / NS
        self._handle = self._loop.call_later(max(delay, 0.0), self._expired)

    def _expired(self) -> None:
        self._handle = None
        if self._clock_ns() < self._when:
            # The loop's monotonic clock ran ahead of the wall clock (or it fired a resolution
            # early): wait for the rest.
            self._schedule()
            return
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def cancel(self) -> None:
        self._callback = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


# -- timerfd ---------------------------------------------------------------------------------

_CLOCK_REALTIME = 0
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)
# The C library's time_t (ctypes.c_time_t from Python 3.12; a long on Linux before that).
_c_time_t: Any = getattr(ctypes, "c_time_t", ctypes.c_long)


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", _c_time_t), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class _TimerFdApi:
    """``timerfd_create``/``timerfd_settime``: the os module's (Python 3.13+) or the C library's."""

    def __init__(self) -> None:
        self._os_create = getattr(os, "timerfd_create", None)
        self._os_settime = getattr(os, "timerfd_settime_ns", None)
        if self._os_create is not None and self._os_settime is not None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        self._create = libc.timerfd_create
        self._create.argtypes = [ctypes.c_int, ctypes.c_int]
        self._create.restype = ctypes.c_int
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_ITimerSpec),
            ctypes.c_void_p,
        ]
        self._settime.restype = ctypes.c_int

    def create(self) -> int:
        if self._os_create is not None:
            fd: int = self._os_create(_CLOCK_REALTIME, flags=_TFD_NONBLOCK | _TFD_CLOEXEC)
            return fd
        fd = self._create(_CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    def set(self, fd: int, when_ns: int, spec: _ITimerSpec) -> None:
        """Arm ``fd`` to expire at the absolute wall-clock ``when_ns``; 0 disarms it."""
        if self._os_settime is not None:
            self._os_settime(fd, flags=_TFD_TIMER_ABSTIME if when_ns else 0, initial=when_ns)
            return
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(when_ns, NS)
        if self._settime(fd, _TFD_TIMER_ABSTIME if when_ns else 0, spec, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))


_api: _TimerFdApi | None = None
_api_error: BaseException | None = None


def _timerfd_api() -> _TimerFdApi:
    global _api, _api_error
    if _api is None:
        if _api_error is not None:
            raise OSError("timerfd is not available") from _api_error
        if not sys.platform.startswith("linux"):
            _api_error = OSError(f"no timerfd on {sys.platform}")
            raise _api_error
        try:
            _api = _TimerFdApi()
        except (OSError, AttributeError) as exc:
            _api_error = exc
            raise OSError("timerfd is not available") from exc
    return _api


def timerfd_available() -> bool:
    """Whether this platform has timer file descriptors (Linux)."""
    try:
        _timerfd_api()
    except OSError:
        return False
    return True


class TimerFdAlarm(Alarm):
    """A ``CLOCK_REALTIME`` timer file descriptor watched by the loop's selector (Linux).

    The descriptor stays registered while the alarm lives; disarmed, it never becomes readable,
    so an idle loop is not woken. Raises ``OSError`` where there are no timer descriptors and
    ``NotImplementedError`` for a loop without ``add_reader`` (Windows' proactor loop).
    """

    kind: ClassVar[str] = "timerfd"

    def __init__(self, loop: asyncio.AbstractEventLoop, clock_ns: Clock = time.time_ns) -> None:
        self._api = _timerfd_api()
        self._loop = loop
        self._clock_ns = clock_ns
        self._spec = _ITimerSpec()
        self._callback: Callable[[], object] | None = None
        self._when = 0
        self._fd = self._api.create()
        try:
            loop.add_reader(self._fd, self._readable)
        except BaseException:
            os.close(self._fd)
            raise

    def arm(self, when_ns: int, callback: Callable[[], object]) -> None:
        self._callback = callback
        self._when = when_ns
        # A moment in the past expires at once; 0 would disarm instead.
        self._api.set(self._fd, max(when_ns, 1), self._spec)

    def _readable(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return  # re-armed or cancelled after the selector saw the expiry
        if self._clock_ns() < self._when:
            # Cannot happen with the kernel's clock; a clock injected by a test may disagree.
            self._api.set(self._fd, self._when, self._spec)
            return
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def cancel(self) -> None:
        if self._callback is None:
            return
        self._callback = None
        self._api.set(self._fd, 0, self._spec)  # disarming also drops an unread expiry

    def close(self) -> None:
        if self._fd < 0:
            return
        self._callback = None
        try:
            self._loop.remove_reader(self._fd)
        except Exception:
            pass  # the loop is closed already: it no longer watches anything
        os.close(self._fd)
        self._fd = -1


# -- thread ----------------------------------------------------------------------------------


class ThreadAlarm(Alarm):
    """A timer thread using the OS's high-resolution timed wait, for platforms without timerfd.

    The thread starts when a moment within ``horizon`` seconds is armed and ends after
    ``horizon`` seconds with nothing armed, so an idle scheduler has no thread. A farther moment
    waits on the loop's own timer until it is within the horizon. ``clock_ns`` is the wall clock;
    tests inject one to check that nothing is handed over before its moment.
    """

    kind: ClassVar[str] = "thread"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        horizon: float = 0.25,
        clock_ns: Clock = time.time_ns,
    ) -> None:
        self._loop = loop
        self._horizon = horizon
        self._clock_ns = clock_ns
        self._cond = threading.Condition(threading.Lock())
        # Shared with the thread, under _cond: the moment to hand over, and which arming it is.
        self._deadline: int | None = None
        self._token = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        # Loop-thread only.
        self._callback: Callable[[], object] | None = None
        self._far: asyncio.TimerHandle | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The timer thread, while there is one."""
        return self._thread

    def arm(self, when_ns: int, callback: Callable[[], object]) -> None:
        self.cancel()
        self._callback = callback
        delay = (when_ns - self._clock_ns()) / NS
        if delay > self._horizon:
            # Come back when the moment is half a horizon away: the loop's timer may be late by
            # a few milliseconds, never by that much.
            self._far = self._loop.call_later(delay - self._horizon / 2, self._near, when_ns)
            return
        self._near(when_ns)

    def _near(self, when_ns: int) -> None:
        self._far = None
        with self._cond:
            if self._closed:
                return
            self._token += 1
            self._deadline = when_ns
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="asyncz-timer", daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while not self._closed:
                deadline = self._deadline
                if deadline is None:
                    if not cond.wait(self._horizon) and self._deadline is None:
                        break  # nothing due within the horizon: no thread while idle
                    continue
                remaining = deadline - self._clock_ns()
                if remaining > 0:
                    # Woken early (re-armed, cancelled, or the wait returned before the wall
                    # clock got there): look again.
                    cond.wait(remaining / NS)
                    continue
                self._deadline = None
                try:
                    self._loop.call_soon_threadsafe(self._deliver, self._token)
                except RuntimeError:
                    break  # the loop is closed
            self._thread = None

    def _deliver(self, token: int) -> None:
        with self._cond:
            if token != self._token:
                return  # cancelled or re-armed since
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def cancel(self) -> None:
        self._callback = None
        if self._far is not None:
            self._far.cancel()
            self._far = None
        with self._cond:
            self._token += 1
            self._deadline = None

    def close(self) -> None:
        self.cancel()
        with self._cond:
            self._closed = True
            self._cond.notify()


def make_alarm(loop: asyncio.AbstractEventLoop, kind: str = "auto", horizon: float = 0.25) -> Alarm:
    """The most precise alarm this platform and ``loop`` support, or the ``kind`` asked for
    (``"timerfd"``, ``"thread"``, ``"loop"``; ``"auto"`` tries them in that order)."""
    if kind in ("auto", "timerfd"):
        try:
            return TimerFdAlarm(loop)
        except (OSError, NotImplementedError, RuntimeError):
            if kind == "timerfd":
                raise
    if kind in ("auto", "thread"):
        return ThreadAlarm(loop, horizon)
    if kind == "loop":
        return LoopAlarm(loop)
    raise ValueError(f"unknown alarm kind {kind!r}: use 'auto', 'timerfd', 'thread' or 'loop'")
