"""Rescheduling: a new trigger for a task, given as a trigger alias and its arguments."""

from __future__ import annotations

from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task
from asyncz.triggers import CronTrigger


def check_status() -> None:
    print("checking the status of the system")


def main() -> Task:
    scheduler = AsyncIOScheduler(timezone="UTC")
    task = Task(
        id="my-task",
        fn=check_status,
        name="my-func",
        scheduler=scheduler,
        trigger=CronTrigger(day_of_week="mon,tue,wed,thu,fri,sat,sun", hour=8, minute=1),
        max_instances=3,
        coalesce=True,
    )
    scheduler.start()
    try:
        print("before:", task.trigger, task.next_run_time)
        # The call as the Asyncz documentation writes it: the task id, then the trigger.
        task.reschedule("my-task", trigger="cron", hour=10, minute=5)
        print("after: ", task.trigger, task.next_run_time)
    finally:
        scheduler.shutdown()
    return task


if __name__ == "__main__":
    main()
