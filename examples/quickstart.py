"""A real scheduler running a few tasks for a few seconds on the embedded SQLite store, printing
what happens. Run it twice: the tasks it stored the first time are still there.

    python examples/quickstart.py [--seconds 6] [--database PATH] [--memory]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from datetime import datetime, timedelta, timezone

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED, TaskExecutionEvent
from asyncz.schedulers import NativeAsyncIOScheduler

STARTED = datetime.now(timezone.utc)
DEFAULT_DATABASE = os.path.join(tempfile.gettempdir(), "asyncz-quickstart.sqlite")


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
    if event.code == TASK_STARTED:
        assert event.started_at is not None
        late_ms = (event.started_at - event.scheduled_run_time).total_seconds() * 1000
        print(
            f"{stamp()}  event: run {event.run_id} of {event.task_id} started {late_ms:.1f} ms "
            "after its scheduled time"
        )
    elif event.code == TASK_EXECUTED:
        duration_ms = (event.duration or 0.0) * 1000
        print(
            f"{stamp()}  event: {event.task_id} returned {event.return_value!r} in "
            f"{duration_ms:.1f} ms"
        )
    elif event.code == TASK_ERROR:
        print(f"{stamp()}  event: {event.task_id} raised {event.exception!r}")


async def main(seconds: float, database: str | None) -> None:
    if database is None:
        stores: dict[str, object] = {"default": {"type": "memory"}}
        where = "memory"
    else:
        stores = {"default": {"type": "sqlalchemy", "database": f"sqlite:///{database}"}}
        where = database
    # Native: start() and shutdown() are awaited, so shutting down waits for running work.
    scheduler = NativeAsyncIOScheduler(timezone="UTC", stores=stores)
    scheduler.add_listener(report, TASK_STARTED | TASK_EXECUTED | TASK_ERROR)
    # replace_existing: on a second run the store already has these tasks.
    scheduler.add_task(heartbeat, "interval", seconds=1, id="heartbeat", replace_existing=True)
    scheduler.add_task(
        fetch, "interval", seconds=2, args=["weather"], id="fetch-weather", replace_existing=True
    )
    scheduler.add_task(
        flaky, "date", run_at=STARTED + timedelta(seconds=1.5), id="flaky", replace_existing=True
    )
    scheduler.add_task(fetch, args=["startup"], id="once-now", replace_existing=True)
    await scheduler.start()
    print(f"{stamp()}  scheduler started; store: {where}; tasks:")
    for task in scheduler.get_tasks():
        print(f"           {task.id}: {task}")
    await asyncio.sleep(seconds)
    await scheduler.shutdown()
    print(
        f"{stamp()}  scheduler shut down; tasks kept in the store: "
        f"{sorted(t.id for t in scheduler.get_tasks())}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to run")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="the SQLite file")
    parser.add_argument("--memory", action="store_true", help="use the memory store instead")
    options = parser.parse_args()
    # Task failures are logged with their traceback; keep the demo's output to one line each.
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main(options.seconds, None if options.memory else options.database))
