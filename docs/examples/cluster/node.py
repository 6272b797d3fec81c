"""One scheduler process; start as many as you like on the same store.

python node.py [seconds]
"""

import asyncio
import os
import sys

from asyncz.events import TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler

DATABASE = os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLE = os.environ.get("TABLE", "docs_cluster")


def tick():
    pass  # the work; here, nothing


def ran(event):
    print("ran", event.scheduled_run_time.isoformat(), flush=True)


async def main(seconds):
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "sqlalchemy", "database": DATABASE, "tablename": TABLE}},
    )
    scheduler.add_listener(ran, TASK_EXECUTED)
    scheduler.start()
    # Every node adds the task; replace_existing makes that one task, whoever comes first.
    scheduler.add_task(
        tick,
        "interval",
        seconds=0.5,
        start_at="2026-01-01 00:00:00",
        id="tick",
        replace_existing=True,
        timezone="UTC",
    )
    await asyncio.sleep(seconds)
    scheduler.shutdown()


asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60))
