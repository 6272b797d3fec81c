"""Tasks kept in PostgreSQL: they survive a restart of the process, and other processes on
the same database share them (see "Several processes and cluster mode")."""

import asyncio
import os

import sqlalchemy as sa

from asyncz.schedulers import AsyncIOScheduler

DATABASE = os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORES = {"default": {"type": "sqlalchemy", "database": DATABASE, "tablename": "docs_gs"}}


def report(kind):
    print("report:", kind)


def show(scheduler):
    for task in scheduler.get_tasks():
        print(" ", task.id, "next run:", task.next_run_time.strftime("%a %H:%M"))


async def main():
    # The first process: adds the tasks, runs the one-off one, then stops.
    scheduler = AsyncIOScheduler(stores=STORES)
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
    print("first scheduler:")
    show(scheduler)
    scheduler.shutdown()

    # A restart (or another process): a new scheduler on the same table adds nothing and finds
    # the daily task with its next run time; the one-off task ran and is gone.
    restarted = AsyncIOScheduler(stores=STORES)
    restarted.start()
    print("after the restart:")
    show(restarted)
    restarted.shutdown()


def drop_example_tables():
    """Tidy up: the store's table and the three beside it (docs_gs_version, _instances, _runs)."""
    engine = sa.create_engine(DATABASE)
    tables = sa.MetaData()
    tables.reflect(engine, only=lambda name, _: name == "docs_gs" or name.startswith("docs_gs_"))
    tables.drop_all(engine)
    engine.dispose()


try:
    asyncio.run(main())
finally:
    drop_example_tables()
