"""The triggers through the scheduler's API: aliases, keyword arguments, time zones, real runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from asyncz.events import TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler
from asyncz.triggers import (
    AndTrigger,
    CalendarIntervalTrigger,
    CronTrigger,
    OrTrigger,
    SearchHorizonError,
)


def noop() -> None:
    """A task."""


def test_aliases_and_keyword_arguments_through_add_task() -> None:
    scheduler = AsyncIOScheduler(timezone="Asia/Kolkata")
    cron = scheduler.add_task(noop, "cron", hour=9, day_of_week="mon-fri", id="cron")
    assert isinstance(cron.trigger, CronTrigger)
    assert str(cron.trigger) == "cron[day_of_week='mon-fri', hour='9']"
    # the scheduler's zone is given to triggers that take one
    assert cron.trigger.timezone.key == "Asia/Kolkata"  # type: ignore[attr-defined]
    calendar = scheduler.add_task(noop, "calendar_interval", weeks=1, hour=8, id="calendar")
    assert isinstance(calendar.trigger, CalendarIntervalTrigger)
    both = scheduler.add_task(
        noop, "and", triggers=[CronTrigger(hour=9), CronTrigger(minute=0)], id="and"
    )
    assert isinstance(both.trigger, AndTrigger)
    either = scheduler.add_task(noop, "or", triggers=[CronTrigger(hour=9)], id="or")
    assert isinstance(either.trigger, OrTrigger)
    scheduler.add_task(noop, CronTrigger.from_crontab("@daily"), id="crontab")


def test_typos_fail_at_add_task() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    with pytest.raises(TypeError, match="hours"):
        scheduler.add_task(noop, "cron", hours=1)
    with pytest.raises(TypeError, match="minute"):
        scheduler.add_task(noop, "interval", minute=5)
    with pytest.raises(ValueError, match="day_of_week"):
        scheduler.add_task(noop, "cron", day_of_week="fri#3")


def test_never_agreeing_and_fails_at_add_task_on_a_running_scheduler() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.start()
        try:
            with pytest.raises(SearchHorizonError):
                scheduler.add_task(
                    noop,
                    "and",
                    triggers=[CronTrigger(minute=0, second=1), CronTrigger(minute=0, second=2)],
                    max_steps=100,
                )
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_a_cron_task_runs(recorder_factory: Callable[[], Any]) -> None:
    async def main() -> None:
        rec = recorder_factory()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_listener(rec, TASK_EXECUTED)
        scheduler.add_task(noop, "cron", second="*", id="every-second")
        scheduler.start()
        try:
            await rec.wait_for(lambda: len(rec.codes(TASK_EXECUTED)) >= 2, timeout=4)
        finally:
            scheduler.shutdown()
        times = [e.scheduled_run_time for e in rec.codes(TASK_EXECUTED)]
        assert all(t.microsecond == 0 for t in times)

    asyncio.run(main())
