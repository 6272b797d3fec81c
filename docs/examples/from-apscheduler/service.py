"""An APScheduler 3 service, moved to asyncz. The APScheduler lines are in the comments."""

import asyncio
import os
import tempfile

from asyncz.events import TASK_ERROR, TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler


def nightly_export():
    print("exporting")


def on_outcome(event):  # def on_outcome(event): ... event.job_id
    print("outcome of", event.task_id, "error" if event.exception else "ok")


async def main():
    database = os.path.join(tempfile.mkdtemp(), "tasks.db")
    # scheduler = AsyncIOScheduler(
    #     jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
    #     job_defaults={"misfire_grace_time": 30, "coalesce": True},
    #     timezone="Europe/Berlin",
    # )
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "sqlalchemy", "database": f"sqlite:///{database}"}},
        task_defaults={"mistrigger_grace_time": 30, "coalesce": True},
        timezone="Europe/Berlin",
    )
    # scheduler.add_listener(on_outcome, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.add_listener(on_outcome, TASK_EXECUTED | TASK_ERROR)
    # scheduler.add_job(nightly_export, "cron", hour=2, id="export", replace_existing=True)
    scheduler.add_task(nightly_export, "cron", hour=2, id="export", replace_existing=True)
    scheduler.start()
    # scheduler.modify_job("export", max_instances=2)  (APScheduler 3 has no "run now")
    scheduler.update_task("export", max_instances=2)
    scheduler.run_task("export")
    await asyncio.sleep(0.3)
    # print(scheduler.get_job("export").next_run_time)
    print(scheduler.get_task("export").next_run_time.strftime("%H:%M %Z"))
    scheduler.shutdown()


asyncio.run(main())
