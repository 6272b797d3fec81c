"""Tasks kept in PostgreSQL: they survive a restart of the process, and other processes on
the same database share them (see "Several processes and cluster mode")."""

import asyncio
import os

from asyncz.schedulers import AsyncIOScheduler

DATABASE = os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def report(kind):
    print("report:", kind)


async def main():
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "sqlalchemy", "database": DATABASE, "tablename": "docs_gs"}}
    )
    scheduler.start()
    # An id makes the task findable again; replace_existing makes a restart harmless.
    scheduler.add_task(
        report,
        "cron",
        crontab="0 6 * * mon-fri",
        args=["daily"],
        id="daily-report",
        replace_existing=True,
    )
    scheduler.add_task(report, "date", args=["now"], id="first-report", replace_existing=True)
    await asyncio.sleep(0.5)
    for task in scheduler.get_tasks():
        print(task.id, "next run:", task.next_run_time and task.next_run_time.strftime("%a %H:%M"))
    scheduler.remove_all_tasks()  # tidy up the example's table
    scheduler.shutdown()


asyncio.run(main())
