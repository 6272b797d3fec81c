"""A real scheduler running a few tasks for a few seconds, printing what happens.

python examples/quickstart.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import datetime, timedelta, timezone

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED, TaskExecutionEvent
from asyncz.schedulers import AsyncIOScheduler

STARTED = datetime.now(timezone.utc)


def stamp() -> str:
    return f"+{(datetime.now(timezone.utc) - STARTED).total_seconds():5.2f}s"


def heartbeat() -> None:
    print(f"{stamp()}  heartbeat (a plain function, run in the executor's thread pool)")


async def fetch(source: str) -> str:
    await asyncio.sleep(0.1)  # stands in for real I/O
    print(f"{stamp()}  fetched {source!r} (a coroutine, run on the event loop)")
    return f"{source}: ok"


def flaky() -> None:
    raise RuntimeError("this task fails on purpose; the scheduler reports it and carries on")


def report(event: TaskExecutionEvent) -> None:
    late_ms = (
        (event.started_at - event.scheduled_run_time).total_seconds() * 1000
        if event.started_at
        else 0.0
    )
    if event.code == TASK_STARTED:
        print(
            f"{stamp()}  event: run {event.run_id} of {event.task_id} started {late_ms:.1f} ms "
            "after its scheduled time"
        )
    elif event.code == TASK_EXECUTED:
        print(
            f"{stamp()}  event: {event.task_id} returned {event.return_value!r} in "
            f"{event.duration * 1000:.1f} ms"
        )
    elif event.code == TASK_ERROR:
        print(f"{stamp()}  event: {event.task_id} raised {event.exception!r}")


async def main(seconds: float) -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_listener(report, TASK_STARTED | TASK_EXECUTED | TASK_ERROR)
    scheduler.add_task(heartbeat, "interval", seconds=1, id="heartbeat")
    scheduler.add_task(fetch, "interval", seconds=2, args=["weather"], id="fetch-weather")
    scheduler.add_task(flaky, "date", run_at=STARTED + timedelta(seconds=1.5), id="flaky")
    scheduler.add_task(fetch, args=["startup"], id="once-now")  # no trigger: run once, now
    scheduler.start()
    print(f"{stamp()}  scheduler started with {len(scheduler.get_tasks())} tasks:")
    for task in scheduler.get_tasks():
        print(f"           {task}")
    await asyncio.sleep(seconds)
    scheduler.shutdown()
    print(f"{stamp()}  scheduler shut down; tasks left: {[t.id for t in scheduler.get_tasks()]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to run")
    # Task failures are logged with their traceback; keep the demo's output to one line each.
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main(parser.parse_args().seconds))
