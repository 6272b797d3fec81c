"""Two ways to create a task: a Task that adds itself to a scheduler, and a Task handed over."""

from __future__ import annotations

from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task
from asyncz.triggers import CronTrigger


def check_status() -> None:
    print("checking the status of the system")


def main() -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")

    # Given a scheduler, the task adds itself to it (even before the scheduler starts).
    Task(
        id="my-task",
        fn=check_status,
        name="my-func",
        scheduler=scheduler,
        trigger=CronTrigger(day_of_week="mon,tue,wed,thu,fri,sat,sun", hour=8, minute=1),
        max_instances=3,
        coalesce=True,
    )
    scheduler.start()

    # Without one, it is just a description of work until add_task() schedules it.
    task = Task(id="my-task2", fn=check_status, max_instances=1, coalesce=True)
    scheduler.add_task(task, trigger=CronTrigger(day_of_week="mon-fri", hour="8-18", minute=30))

    for each in scheduler.get_tasks():
        print(each)
    return scheduler


if __name__ == "__main__":
    main().shutdown()
