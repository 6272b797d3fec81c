"""Changing a task after it was added: every field but the id."""

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
        task.update(name="my-new-task-id", max_instances=5, coalesce=False)
        stored = scheduler.get_task("my-task")
        assert stored is not None
        print(
            f"id={stored.id} name={stored.name} max_instances={stored.max_instances} "
            f"coalesce={stored.coalesce}"
        )
    finally:
        scheduler.shutdown()
    return task


if __name__ == "__main__":
    main()
