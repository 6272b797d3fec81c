"""An asyncz node: `python fleet_node.py` on each of three hosts. They share one Redis store, so
each fire time of `tick` is sent to the fleet once, by whichever node is alive to send it."""

import asyncio
import os

import fleet_jobs

from asyncz.events import TASK_ERROR, TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler


def report(event):
    what = "executed" if event.code == TASK_EXECUTED else f"failed {event.exception!r}"
    print(
        f"{what} {event.task_id} {event.scheduled_run_time.isoformat()} {event.run_id}", flush=True
    )


async def main():
    scheduler = AsyncIOScheduler(
        stores={
            "default": {
                "type": "redis",
                "url": os.environ.get("FLEET_STORE", "redis://127.0.0.1:6379/0"),
                "key_prefix": os.environ.get("FLEET_PREFIX", "fleet."),
            }
        },
        executors={
            "default": {
                "type": "celery",
                "app": "fleet_celery:app",
                "queue": os.environ.get("FLEET_QUEUE", "asyncz"),
            }
        },
    )
    scheduler.add_listener(report, TASK_EXECUTED | TASK_ERROR)
    scheduler.start()
    scheduler.add_task(fleet_jobs.tick, "interval", seconds=1, id="tick", replace_existing=True)
    try:
        # FLEET_SECONDS bounds a demo (and the test of this page); a real node runs on.
        seconds = float(os.environ.get("FLEET_SECONDS", "inf"))
        await asyncio.sleep(seconds if seconds != float("inf") else 10**9)
    finally:
        await asyncio.to_thread(scheduler.shutdown)


if __name__ == "__main__":
    asyncio.run(main())
