import asyncio

import jobs

from asyncz.schedulers import AsyncIOScheduler


async def main():
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()

    # A callable, or its "module:function" reference; the trigger's arguments follow.
    scheduler.add_task(jobs.cleanup, "cron", hour=3, id="cleanup", kwargs={"days": 30})
    scheduler.add_task("jobs:refresh_cache", "interval", minutes=10, args=["eu"], id="cache")

    # Without a callable, add_task is a decorator.
    @scheduler.add_task("interval", hours=1, id="heartbeat", name="hourly heartbeat")
    def heartbeat():
        print("alive")

    task = scheduler.get_task("cleanup")
    print(task.id, task.name, task.trigger, task.max_instances, task.coalesce)

    # Every change is validated first; then all of it is applied, or none.
    scheduler.update_task("cleanup", kwargs={"days": 14}, max_instances=2)
    scheduler.reschedule_task("cache", trigger="interval", minutes=5)
    scheduler.pause_task("heartbeat")  # next_run_time None: paused
    for info in scheduler.get_task_infos(sort_by="id"):
        print(f"{info.id:10} {info.schedule_state.value:9} {info.trigger_alias:9}")

    # The next run times, computed by the real trigger; nothing changes.
    preview = scheduler.preview_task_runs("cleanup", count=2)
    print("cleanup runs at", [t.strftime("%H:%M %Z") for t in preview.run_times])

    # Run now: the schedule stays as it was.
    scheduler.run_task("cleanup")
    await asyncio.sleep(0.2)

    scheduler.resume_task("heartbeat")
    scheduler.delete_task("cache")
    print(sorted(t.id for t in scheduler.get_tasks()))
    scheduler.shutdown()


asyncio.run(main())
