"""The loop's precise alarms (asyncz.core.timing) and how the asyncio scheduler sleeps on them.

Mechanisms, not durations: clocks are injected where the alarm allows it; with the real clock a
test only checks the order of things (a callback never runs before its moment), and waits for
events with a deadline."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import asyncz.core.asyncio_scheduler as asyncio_scheduler
from asyncz.core.timing import (
    Alarm,
    LoopAlarm,
    ThreadAlarm,
    TimerFdAlarm,
    epoch_ns,
    make_alarm,
    timerfd_available,
)
from asyncz.events import TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler

UTC = timezone.utc
MS = 1_000_000

needs_timerfd = pytest.mark.skipif(not timerfd_available(), reason="no timerfd here")


class SteppingClock:
    """A wall clock that moves ``step`` nanoseconds each time it is read."""

    def __init__(self, start: int, step: int) -> None:
        self._values: Iterator[int] = itertools.count(start, step)
        self.reads = 0
        self.last = start

    def __call__(self) -> int:
        self.reads += 1
        self.last = next(self._values)
        return self.last


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)


async def spin_loop(iterations: int = 5) -> None:
    for _ in range(iterations):
        await asyncio.sleep(0)


# -- epoch_ns ---------------------------------------------------------------------------------


def test_epoch_ns_is_exact_for_any_zone() -> None:
    moment = datetime(2026, 12, 3, 10, 0, 0, 123_457, tzinfo=UTC)
    assert epoch_ns(moment) == (1_796_292_000 * 1_000_000 + 123_457) * 1000
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert epoch_ns(plus_two) == epoch_ns(moment)


# -- LoopAlarm --------------------------------------------------------------------------------


def test_loop_alarm_never_calls_back_before_the_wall_clock_moment() -> None:
    async def main() -> None:
        when = 10_000 * MS
        # The loop's timer fires at once (the clock says 10 µs to go), but the wall clock only
        # gets there after a few more reads: the alarm must look again each time.
        clock = SteppingClock(when - 10_000, 2_000)
        seen: list[int] = []
        alarm = LoopAlarm(asyncio.get_running_loop(), clock_ns=clock)
        alarm.arm(when, lambda: seen.append(clock.last))
        await wait_until(lambda: bool(seen))
        assert seen[0] >= when
        assert clock.reads > 2

    asyncio.run(main())


def test_loop_alarm_cancel_and_rearm() -> None:
    async def main() -> None:
        calls: list[str] = []
        alarm = LoopAlarm(asyncio.get_running_loop())
        alarm.arm(0, lambda: calls.append("cancelled"))
        alarm.cancel()
        alarm.arm(0, lambda: calls.append("first"))
        alarm.arm(0, lambda: calls.append("second"))
        await wait_until(lambda: bool(calls))
        await spin_loop()
        assert calls == ["second"]

    asyncio.run(main())


# -- ThreadAlarm ------------------------------------------------------------------------------


def test_thread_alarm_hands_over_no_earlier_than_the_moment() -> None:
    async def main() -> None:
        when = 10_000 * MS
        # Each read moves 20 µs: the thread's timed wait is short, then it must look again.
        clock = SteppingClock(when - 100_000, 20_000)
        seen: list[int] = []
        alarm = ThreadAlarm(asyncio.get_running_loop(), horizon=0.05, clock_ns=clock)
        try:
            alarm.arm(when, lambda: seen.append(clock.last))
            await wait_until(lambda: bool(seen))
        finally:
            alarm.close()
        assert seen[0] >= when

    asyncio.run(main())


def test_thread_alarm_thread_exists_only_near_a_moment() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        horizon = 0.02
        alarm = ThreadAlarm(loop, horizon=horizon)
        try:
            fired = asyncio.Event()
            # Far off: the loop's own timer waits, no thread.
            alarm.arm(time.time_ns() + 3600 * 1000 * MS, fired.set)
            assert alarm.thread is None
            alarm.cancel()
            # Near: a thread hands the moment over, then ends once nothing is armed.
            alarm.arm(time.time_ns() + 1 * MS, fired.set)
            thread = alarm.thread
            assert thread is not None
            await asyncio.wait_for(fired.wait(), 5)
            await loop.run_in_executor(None, thread.join, 5)
            assert not thread.is_alive()
            assert alarm.thread is None
            # And comes back for the next moment.
            fired.clear()
            alarm.arm(time.time_ns() + 1 * MS, fired.set)
            assert alarm.thread is not None
            await asyncio.wait_for(fired.wait(), 5)
        finally:
            alarm.close()

    asyncio.run(main())


def test_thread_alarm_moment_beyond_horizon_comes_back_on_the_loop_timer() -> None:
    async def main() -> None:
        # The clock says the moment is 40 ms away with a 20 ms horizon: the loop's timer first,
        # then the thread.
        start = 10_000 * MS
        ticks = [start]

        def clock() -> int:
            return ticks[0]

        fired = asyncio.Event()
        alarm = ThreadAlarm(asyncio.get_running_loop(), horizon=0.02, clock_ns=clock)
        try:
            alarm.arm(start + 40 * MS, fired.set)
            assert alarm.thread is None
            await wait_until(lambda: alarm.thread is not None)
            assert not fired.is_set()
            ticks[0] = start + 40 * MS
            await asyncio.wait_for(fired.wait(), 5)
        finally:
            alarm.close()

    asyncio.run(main())


def test_thread_alarm_cancelled_moment_is_never_handed_over() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        calls: list[str] = []
        alarm = ThreadAlarm(loop, horizon=0.01)
        try:
            alarm.arm(time.time_ns(), lambda: calls.append("cancelled"))
            thread = alarm.thread
            assert thread is not None
            alarm.cancel()
            await loop.run_in_executor(None, thread.join, 5)
            await spin_loop()
            alarm.arm(time.time_ns(), lambda: calls.append("first"))
            alarm.arm(time.time_ns(), lambda: calls.append("second"))
            await wait_until(lambda: bool(calls))
            await spin_loop()
        finally:
            alarm.close()
        assert calls == ["second"]

    asyncio.run(main())


def test_thread_alarm_close_ends_the_thread() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        alarm = ThreadAlarm(loop, horizon=60.0)
        alarm.arm(time.time_ns() + 30_000 * MS, lambda: None)
        alarm.cancel()
        alarm.arm(time.time_ns() + 10 * MS, lambda: None)
        thread = alarm.thread
        assert thread is not None
        alarm.close()
        await loop.run_in_executor(None, thread.join, 5)
        assert not thread.is_alive()

    asyncio.run(main())


# -- TimerFdAlarm -----------------------------------------------------------------------------


@needs_timerfd
def test_timerfd_alarm_fires_at_or_after_the_moment() -> None:
    async def main() -> None:
        alarm = TimerFdAlarm(asyncio.get_running_loop())
        try:
            seen: list[int] = []
            when = time.time_ns() + 2 * MS
            alarm.arm(when, lambda: seen.append(time.time_ns()))
            await wait_until(lambda: bool(seen))
            assert seen[0] >= when
        finally:
            alarm.close()

    asyncio.run(main())


@needs_timerfd
def test_timerfd_alarm_cancel_drops_an_expiry_not_yet_read() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        alarm = TimerFdAlarm(loop)
        try:
            calls: list[str] = []
            # A moment in the past expires at once; cancelling before the loop reads it must
            # still prevent the callback, and re-arming replaces the callback.
            alarm.arm(1, lambda: calls.append("cancelled"))
            alarm.cancel()
            await spin_loop()
            assert calls == []
            alarm.arm(1, lambda: calls.append("first"))
            alarm.arm(1, lambda: calls.append("second"))
            await wait_until(lambda: bool(calls))
            await spin_loop()
            assert calls == ["second"]
        finally:
            alarm.close()

    asyncio.run(main())


@needs_timerfd
def test_timerfd_alarm_looks_at_its_clock_before_calling_back() -> None:
    async def main() -> None:
        when = time.time_ns() - 1 * MS  # already expired for the kernel
        reads = iter([when - 1, when - 1, when])
        seen: list[bool] = []
        alarm = TimerFdAlarm(asyncio.get_running_loop(), clock_ns=lambda: next(reads))
        try:
            alarm.arm(when, lambda: seen.append(True))
            await wait_until(lambda: bool(seen))
            await spin_loop()
            assert seen == [True]
        finally:
            alarm.close()

    asyncio.run(main())


@needs_timerfd
def test_timerfd_alarm_close_unregisters_the_descriptor() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        alarm = TimerFdAlarm(loop)
        fd = alarm._fd
        alarm.close()
        alarm.close()  # twice is fine
        assert alarm._fd == -1
        assert not loop.remove_reader(fd)

    asyncio.run(main())


def test_make_alarm_kinds() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        expected = TimerFdAlarm if timerfd_available() else ThreadAlarm
        for kind, cls in (
            ("auto", expected),
            ("thread", ThreadAlarm),
            ("loop", LoopAlarm),
        ):
            alarm = make_alarm(loop, kind)
            assert type(alarm) is cls
            alarm.close()
        with pytest.raises(ValueError, match="unknown alarm kind"):
            make_alarm(loop, "spin")

    asyncio.run(main())


# -- the scheduler on its alarm ---------------------------------------------------------------


class RecordingAlarm(Alarm):
    """Delegates to a real alarm and records every moment the scheduler arms."""

    kind = "recording"
    instances: list[RecordingAlarm] = []  # noqa: RUF012

    def __init__(self, inner: Alarm) -> None:
        self.inner = inner
        self.armed: list[int] = []
        self.closed = False
        RecordingAlarm.instances.append(self)

    def arm(self, when_ns: int, callback: Callable[[], object]) -> None:
        self.armed.append(when_ns)
        self.inner.arm(when_ns, callback)

    def cancel(self) -> None:
        self.inner.cancel()

    def close(self) -> None:
        self.closed = True
        self.inner.close()


@pytest.fixture
def recording_alarm(monkeypatch: pytest.MonkeyPatch) -> type[RecordingAlarm]:
    RecordingAlarm.instances = []

    def make(loop: asyncio.AbstractEventLoop, kind: str = "auto", horizon: float = 0.25) -> Alarm:
        return RecordingAlarm(make_alarm(loop, kind, horizon))

    monkeypatch.setattr(asyncio_scheduler, "make_alarm", make)
    return RecordingAlarm


class LoopIterations:
    """Counts event-loop iterations (CPython's private ``_run_once``), to tell a sleep from a
    spin."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        self.supported = hasattr(loop, "_run_once")
        if self.supported:
            inner = loop._run_once  # type: ignore[attr-defined]

            def run_once() -> None:
                self.count += 1
                inner()

            loop._run_once = run_once  # type: ignore[attr-defined]


def test_scheduler_sleeps_on_the_alarm_until_the_moment(
    recording_alarm: type[RecordingAlarm], recorder_factory: Callable[[], Any]
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rec = recorder_factory()
        started: list[int] = []

        async def job() -> None:
            started.append(time.time_ns())

        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_EXECUTED)
        run_at = datetime.now(UTC) + timedelta(seconds=0.3)
        scheduler.add_task(job, "date", run_at=run_at, id="once")
        iterations = LoopIterations(loop)
        scheduler.start()
        try:
            await rec.wait_for(lambda: bool(rec.codes(TASK_EXECUTED)), timeout=5)
        finally:
            scheduler.shutdown()
        await spin_loop()  # the loop task ends on the loop, after shutdown() returns
        (alarm,) = recording_alarm.instances
        assert alarm.closed
        moment = epoch_ns(run_at)
        # Never early, and the alarm was given the moment itself (or a pass's lead before it).
        assert started[0] >= moment
        assert alarm.armed
        assert all(moment - 60 * MS <= when <= moment for when in alarm.armed)
        if iterations.supported:
            # A few iterations per wake-up; spinning until the moment would take thousands.
            assert iterations.count < 100

    asyncio.run(main())


def test_idle_scheduler_arms_nothing_and_has_no_timer_thread(
    recording_alarm: type[RecordingAlarm], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio_scheduler, "ALARM_KIND", "thread")

    async def main() -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        # Beyond the loop's longest sleep: the loop's own timer (a wall-clock check) waits.
        for _ in range(3):
            scheduler.add_task(lambda: None, "interval", hours=1)
        threads_before = {t.name for t in threading.enumerate()}
        scheduler.start()
        try:
            await wait_until(lambda: scheduler._sleep_until is not None)
            (alarm,) = recording_alarm.instances
            assert alarm.armed == []
            assert isinstance(alarm.inner, ThreadAlarm)
            assert alarm.inner.thread is None
            assert "asyncz-timer" not in {t.name for t in threading.enumerate()} - threads_before
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_blocking_store_pass_ahead_of_the_moment_still_runs_at_the_moment(
    recording_alarm: type[RecordingAlarm], recorder_factory: Callable[[], Any]
) -> None:
    """A pass read ahead (a blocking store's lead) sleeps on the alarm until the moment."""

    async def main() -> None:
        rec = recorder_factory()
        started: list[int] = []

        def job() -> None:
            started.append(time.time_ns())

        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_EXECUTED)
        run_at = datetime.now(UTC) + timedelta(seconds=0.3)
        scheduler.add_task(job, "date", run_at=run_at, id="once")
        scheduler.start()
        # As if passes took 40 ms: the pass begins that much before the moment.
        scheduler._io_lead = 0.04
        scheduler._learn_pass_time = lambda seconds: None  # type: ignore[method-assign]
        scheduler.wakeup()
        try:
            await rec.wait_for(lambda: bool(rec.codes(TASK_EXECUTED)), timeout=5)
        finally:
            scheduler.shutdown()
        moment = epoch_ns(run_at)
        assert started[0] >= moment
        (alarm,) = recording_alarm.instances
        # The early wake-up, then the moment itself for the runs.
        assert any(when < moment for when in alarm.armed)
        assert alarm.armed[-1] == moment

    asyncio.run(main())
